using PeftLab.Runtime;
using Spectre.Console.Cli;
using TorchSharp;

namespace PeftLab.Cli.Commands;

/// <summary><c>peftlab doctor</c>: how libtorch was loaded, threads, device.</summary>
public sealed class DoctorCommand : Command<CommonSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, CommonSettings settings, CancellationToken cancellationToken)
    {
        settings.ApplyRuntime();
        Console.WriteLine($"native runtime: {NativeLoader.Report}");
        Console.WriteLine($"allocator: {AllocatorTuning.Report}");
        Console.WriteLine($"threads: {torch.get_num_threads()}");
        Console.WriteLine($"device: {TorchRuntime.Device}");
        Console.WriteLine($"cache: {NativeLoader.CacheRoot()}");
        return 0;
    }
}
