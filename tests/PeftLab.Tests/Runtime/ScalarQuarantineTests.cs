using System.Diagnostics;
using System.Reflection;
using PeftLab.Runtime;
using TorchSharp;

namespace PeftLab.Tests.Runtime;

/// <summary>
/// The scalar quarantine (Runtime/Native/scalar_quarantine.c): TorchSharp's Scalar frees go through it, a disposed
/// Scalar stays readable for two seconds and is freed after, the shipped binary is the build of the shipped source,
/// and the race it guards against does not happen beside an allocating thread.
/// </summary>
public sealed class ScalarQuarantineTests
{
    private static readonly Type NativeMethods =
        typeof(torch).Assembly.GetType("TorchSharp.PInvoke.NativeMethods", throwOnError: true)!;

    private static nint HandleOf(Scalar s) =>
        (nint)typeof(Scalar).GetProperty("Handle", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(s)!;

    private static T Native<T>(string name, nint handle) =>
        (T)NativeMethods.GetMethod(name, BindingFlags.Static | BindingFlags.NonPublic)!.Invoke(null, [handle])!;

    [Fact]
    public void TorchSharpsScalarFreesGoThroughTheQuarantine()
    {
        Assert.True(ScalarQuarantine.Active, ScalarQuarantine.Report);
        ulong before = ScalarQuarantine.TotalParked;
        for (int i = 0; i < 10; i++) i.ToScalar().Dispose();
        Assert.True(ScalarQuarantine.TotalParked >= before + 10, $"{ScalarQuarantine.TotalParked - before} of 10 disposals reached the quarantine");
    }

    [Fact]
    public void ADisposedScalarStaysReadableAndIsFreedAfterTwoSeconds()
    {
        Assert.True(ScalarQuarantine.Active, ScalarQuarantine.Report);
        var scalars = Enumerable.Range(0, 1000).Select(i => (3.25 + i).ToScalar()).ToList();
        var handles = scalars.Select(HandleOf).ToList();
        ulong freedBefore = ScalarQuarantine.TotalParked - ScalarQuarantine.Parked;
        foreach (var s in scalars) s.Dispose();

        // What libtorch would read from a Scalar the finalizer released mid-call: still the same value and type.
        for (int i = 0; i < handles.Count; i++)
        {
            Assert.Equal((byte)torch.ScalarType.Float64, Native<byte>("THSTorch_scalar_type", handles[i]));
            Assert.Equal(3.25 + i, Native<double>("THSTorch_scalar_to_float64", handles[i]));
        }

        Thread.Sleep(TimeSpan.FromSeconds(2.2));
        1.ToScalar().Dispose(); // the next disposal frees everything parked for two seconds or more
        ulong freed = ScalarQuarantine.TotalParked - ScalarQuarantine.Parked - freedBefore;
        Assert.True(freed >= 1000, $"only {freed} Scalars were freed 2.2 s after 1000 were disposed");
    }

    [Fact]
    public void ScalarOperationsBesideAnAllocatingThreadNeverFail()
    {
        // Without the quarantine this probe fails a few times per 10 s on these machines (docs/guarantees.md).
        var r = ScalarRaceProbe.Run(TimeSpan.FromSeconds(5));
        Assert.True(r.Operations > 10_000, $"only {r.Operations} operations ran");
        Assert.True(r.Failures == 0, $"{r.Failures} of {r.Operations} scalar operations failed: {r.FirstFailure}");
    }

    [Fact]
    public void TheShippedBinaryIsTheBuildOfTheShippedSource()
    {
        string native = Path.Combine(TestPaths.RepoRoot, "src", "PeftLab", "Runtime", "Native");
        string builtWith = File.ReadAllText(Path.Combine(native, "linux-x64", "BUILT_WITH")).Trim();
        string gcc = Run("gcc", "--version").Split('\n')[0].Trim();
        Assert.True(gcc == builtWith, $"this test needs the gcc that built the shipped binary ({builtWith}); found {gcc}");
        string output = Path.Combine(Path.GetTempPath(), $"quarantine-{Guid.NewGuid():N}.so");
        try
        {
            Run("bash", $"{Path.Combine(native, "build.sh")} {output}");
            Assert.Equal(File.ReadAllBytes(Path.Combine(native, "linux-x64", ScalarQuarantine.FileName)), File.ReadAllBytes(output));
        }
        finally { File.Delete(output); }
    }

    private static string Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args} failed ({p.ExitCode}): {stderr}");
        return stdout;
    }
}
