using System.ComponentModel;
using PeftLab.Configuration;
using PeftLab.Runtime;
using Spectre.Console.Cli;
using TorchSharp;

namespace PeftLab.Cli.Commands;

/// <summary>Options of <c>peftlab doctor</c>.</summary>
public sealed class DoctorSettings : CommonSettings
{
    /// <summary>Seconds to run the scalar race probe for; 0 (the default) skips it.</summary>
    [CommandOption("--scalar-race <SECONDS>")]
    [Description("Also run the scalar race probe for this many seconds: scalar tensor operations beside an allocating thread, counting the ones libtorch rejects (0 with the scalar quarantine on)")]
    [ConfigRange(0, 3600)]
    public double ScalarRace { get; init; }
}

/// <summary><c>peftlab doctor</c>: how libtorch was loaded, the scalar quarantine, threads, device.</summary>
public sealed class DoctorCommand : Command<DoctorSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, DoctorSettings settings, CancellationToken cancellationToken)
    {
        settings.ApplyRuntime();
        Console.WriteLine($"native runtime: {NativeLoader.Report}");
        Console.WriteLine($"scalar quarantine: {ScalarQuarantine.Report}");
        Console.WriteLine($"allocator: {AllocatorTuning.Report}");
        Console.WriteLine($"threads: {torch.get_num_threads()}");
        Console.WriteLine($"device: {TorchRuntime.Device}");
        Console.WriteLine($"cache: {NativeLoader.CacheRoot()}");
        Console.WriteLine($"precision: {HostPrecision.Report}");
        Console.WriteLine($"batch-1 decoding: {Models.StreamedGemv.Report}");
        var sandbox = Evaluation.Code.PythonSandbox.Probe();
        Console.WriteLine(sandbox.Available ? $"code sandbox: {sandbox.Python} in {sandbox.Isolation}"
            : $"code sandbox: NOT AVAILABLE ({sandbox.Isolation}); pass_at_k tasks are refused without --unsafe-execute");
        if (settings.ScalarRace <= 0) return 0;
        var r = ScalarRaceProbe.Run(TimeSpan.FromSeconds(settings.ScalarRace));
        Console.WriteLine($"scalar race probe: {r.Failures} of {r.Operations} operations failed in {r.Seconds:F1} s" +
                          (r.FirstFailure is null ? "" : $" (first: {r.FirstFailure})"));
        return r.Failures == 0 ? 0 : 1;
    }
}
