using Xunit.Abstractions;
using PeftLab.Evaluation.Code;

namespace PeftLab.Tests.Evaluation.Code;

/// <summary>
/// The code sandbox contains what a generated program may try, each as a failed run with its reason, and the
/// machine is fine afterwards (a normal program still runs, nothing was written outside, the run stayed within its limits).
/// </summary>
public sealed class PythonSandboxTests(ITestOutputHelper output)
{
    private static readonly SandboxLimits Tight = new() { CpuSeconds = 2, WallSeconds = 6, MemoryBytes = 512L << 20, Processes = 32, OutputBytes = 256 << 10 };

    private static PythonSandbox Sandbox() => new(Tight);

    [Fact]
    public void ThisMachineHasAWorkingSandbox()
    {
        var probe = PythonSandbox.Probe();
        Assert.True(probe.Available, probe.Isolation);
        Assert.NotNull(probe.Python);
    }

    [Fact]
    public void PassingAndFailingProgramsAreTold()
    {
        var sandbox = Sandbox();
        var pass = sandbox.Run("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n");
        Assert.Equal(SandboxOutcome.Passed, pass.Outcome);
        Assert.Contains("ok", pass.Output);
        var fail = sandbox.Run("def add(a, b):\n    return a * b\n\nassert add(2, 3) == 5, 'add is wrong'\n");
        Assert.Equal(SandboxOutcome.Failed, fail.Outcome);
        Assert.Equal("AssertionError: add is wrong", fail.Reason);
        var syntax = sandbox.Run("def f(:\n");
        Assert.Equal(SandboxOutcome.Failed, syntax.Outcome);
        Assert.StartsWith("SyntaxError", syntax.Reason);
    }

    [Fact]
    public void AnInfiniteLoopStopsAtTheCpuLimit()
    {
        var run = Sandbox().Run("while True:\n    pass\n");
        Assert.Equal(SandboxOutcome.CpuLimit, run.Outcome);
        Assert.Contains("CPU-time limit of 2 s", run.Reason);
        Assert.InRange(run.Seconds, 1.5, Tight.WallSeconds + 2);
    }

    [Fact]
    public void ASleepingProgramStopsAtTheWallLimit()
    {
        var run = new PythonSandbox(Tight with { WallSeconds = 1.5 }).Run("import time\ntime.sleep(60)\n");
        Assert.Equal(SandboxOutcome.WallLimit, run.Outcome);
        Assert.InRange(run.Seconds, 1.4, 5);
    }

    /// <summary>A fork bomb whose processes carry their own name (prctl PR_SET_NAME), so the test can see that none outlives the run.</summary>
    [Fact]
    public void AForkBombIsContained()
    {
        var sandbox = Sandbox();
        var run = sandbox.Run("import ctypes, os\nctypes.CDLL(None).prctl(15, b'pl-forkbomb', 0, 0, 0)\nwhile True:\n    os.fork()\n");
        output.WriteLine($"fork bomb: {run.Outcome} '{run.Reason}' after {run.Seconds:F2} s");
        Assert.True(run.Outcome is SandboxOutcome.Failed or SandboxOutcome.CpuLimit or SandboxOutcome.WallLimit, run.Reason);
        Assert.True(run.Seconds < Tight.WallSeconds + 3, $"{run.Seconds} s");
        Thread.Sleep(200);
        Assert.DoesNotContain(System.Diagnostics.Process.GetProcesses(), p => p.ProcessName == "pl-forkbomb");
        Assert.Equal(SandboxOutcome.Passed, sandbox.Run("print(1)\n").Outcome);       // the machine still runs programs
    }

    [Fact]
    public void ATenGibibyteAllocationFailsInsideTheProgram()
    {
        var run = Sandbox().Run("x = bytearray(10 * 1024 ** 3)\nprint(len(x))\n");
        Assert.Equal(SandboxOutcome.Failed, run.Outcome);
        Assert.Equal("MemoryError", run.Reason);
    }

    [Fact]
    public void ANetworkConnectionFails()
    {
        var run = Sandbox().Run("import socket\nsocket.create_connection(('93.184.216.34', 80), timeout=3)\n");
        Assert.Equal(SandboxOutcome.Failed, run.Outcome);
        Assert.Contains("Network is unreachable", run.Reason);
        var local = Sandbox().Run("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=3)\n");
        Assert.Equal(SandboxOutcome.Failed, local.Outcome);
    }

    [Fact]
    public void WritingOutsideItsFolderFails_InsideItWorks()
    {
        var target = Path.Combine(Path.GetTempPath(), "peftlab-escape-" + Guid.NewGuid().ToString("N"));
        var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), "peftlab-escape-" + Guid.NewGuid().ToString("N"));
        var sandbox = Sandbox();
        var run = sandbox.Run($"open('{target}', 'w').write('x')\n");
        Assert.Equal(SandboxOutcome.Failed, run.Outcome);
        Assert.Matches("Read-only file system|Permission denied", run.Reason);
        Assert.False(File.Exists(target));
        var viaParent = sandbox.Run($"open('../{Path.GetFileName(target)}', 'w').write('x')\n");
        Assert.Equal(SandboxOutcome.Failed, viaParent.Outcome);
        Assert.False(File.Exists(target));
        var intoHome = sandbox.Run($"open('{home}', 'w').write('x')\n");
        Assert.Equal(SandboxOutcome.Failed, intoHome.Outcome);
        Assert.False(File.Exists(home));
        Assert.Equal(SandboxOutcome.Passed, sandbox.Run("open('mine.txt', 'w').write('x' * 1000)\nassert open('mine.txt').read() == 'x' * 1000\n").Outcome);
    }

    [Fact]
    public void PrintingAGibibyteStopsAtTheOutputCap()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = Sandbox().Run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n");
        Assert.Equal(SandboxOutcome.OutputLimit, run.Outcome);
        Assert.Contains("more than 262,144 bytes", run.Reason);
        Assert.True(run.Output.Length <= 64 << 10);
        Assert.True(clock.Elapsed.TotalSeconds < 5, $"{clock.Elapsed.TotalSeconds} s");
    }

    [Fact]
    public void TheEnvironmentIsEmptied()
    {
        Environment.SetEnvironmentVariable("PEFTLAB_SECRET_FOR_TEST", "leaked");
        var run = Sandbox().Run("import os\nassert 'PEFTLAB_SECRET_FOR_TEST' not in os.environ, 'environment leaked'\nprint(os.environ['HOME'] == os.getcwd())\n");
        Assert.Equal(SandboxOutcome.Passed, run.Outcome);
        Assert.Contains("True", run.Output);
    }

    [Fact]
    public void WithoutAWorkingSandboxItRefusesAndSaysWhy_UnsafeExecuteOverrides()
    {
        var broken = PythonSandbox.ProbeWith(Tight, unshare: "/nonexistent/unshare");
        Assert.False(broken.Available);
        Assert.Contains("/nonexistent/unshare", broken.Isolation);
        var e = Assert.Throws<InvalidOperationException>(() => new PythonSandbox(Tight, probe: broken));
        Assert.Contains("cannot execute generated code safely here", e.Message);
        Assert.Contains("--unsafe-execute", e.Message);
        var unsafeRun = new PythonSandbox(Tight, unsafeExecute: true, probe: broken);
        Assert.StartsWith("UNSANDBOXED", unsafeRun.Isolation);
        Assert.Equal(SandboxOutcome.Passed, unsafeRun.Run("assert 1 + 1 == 2\n").Outcome);
    }

    [Fact]
    public void ManyProgramsRunInOrder()
    {
        var runs = Sandbox().RunAll(Enumerable.Range(0, 6).Select(i => $"assert {i} % 2 == 0\n").ToArray());
        Assert.Equal([true, false, true, false, true, false], runs.Select(r => r.Passed));
    }
}
