using System.Diagnostics;
using System.Text.RegularExpressions;
using PeftLab.Studies;

namespace PeftLab.Tests.Studies;

/// <summary>
/// <c>peftlab study submit --executor slurm</c> against a real Slurm: tests/slurm/start-slurm.sh starts a single-node
/// one on this host (.ci/run calls it before the tests).
/// </summary>
[Collection("study processes")]
public sealed class SlurmExecutorTests
{
    private static readonly string SetupLog = Path.Combine(Path.GetTempPath(), "peftlab-start-slurm.log");

    private static string SetupHint =>
        " Run tests/slurm/start-slurm.sh as root (it installs Debian's slurm-wlm and munge and starts munged, slurmctld and slurmd; .ci/run calls it)."
        + (File.Exists(SetupLog) ? $"\nLast setup log ({SetupLog}):\n{File.ReadAllText(SetupLog)}" : "");

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(30))) { p.Kill(); return (-1, $"{file} timed out"); }
            return (p.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"{file}: {e.Message}");
        }
    }

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, name)));

    [Fact]
    public void ASubmittedStudyRunsAsAJobArrayAndStatusReadsTheSharedFolder()
    {
        if (!OnPath("sinfo")) Assert.Fail("sinfo is not on PATH: Slurm is not installed here." + SetupHint);
        var (code, nodes) = Run("sinfo", "-h", "-o", "%T");
        if (code != 0 || !Regex.IsMatch(nodes, @"^(idle|mix|alloc)", RegexOptions.Multiline))
            Assert.Fail($"Slurm does not answer with a usable node (sinfo exit {code}: {nodes.Trim()})." + SetupHint);

        var dir = TestPaths.NewTempDir("study-slurm");
        var output = Path.Combine(dir, "out");
        var file = StudyFixtures.Write(dir, output, "axes: {method: [lora, ia3], lr: [3.0e-3]}", StudyFixtures.Base(StudyFixtures.Data, maxSteps: 8), name: "slurm-test");
        var submit = CliRunner.Ok("study", "submit", file, "--executor", "slurm", "--cpus-per-task", "1", "--time", "00:10:00");
        var job = Regex.Match(submit, @"submitted job (\d+): 2 trial\(s\)");
        Assert.True(job.Success, submit);
        var jobId = job.Groups[1].Value;

        var store = new StudyStore(output);
        var script = File.ReadAllText(Path.Combine(store.SlurmDir, "submit.sh"));
        Assert.Contains("#SBATCH --array=0-1", script);
        Assert.Contains(Path.Combine(AppContext.BaseDirectory, "PeftLab.Cli.dll"), script);
        Assert.Contains("run-trial", script);

        var (_, _, plan) = store.ReadPlan();
        var sw = Stopwatch.StartNew();
        while (store.ObserveAll(plan).Count(s => s.View == TrialView.Done) < 2)
        {
            var statuses = store.ObserveAll(plan);
            if (sw.Elapsed > TimeSpan.FromMinutes(4) || statuses.Any(s => s.View == TrialView.Failed))
            {
                var logs = Directory.GetFiles(store.SlurmDir, "*.out").Select(f => $"--- {f}\n{File.ReadAllText(f)}");
                Assert.Fail($"job {jobId} did not finish both trials in {sw.Elapsed:mm\\:ss} ({string.Join(", ", statuses.Select(s => s.View))})\n"
                    + $"squeue: {Run("squeue", "-j", jobId).Output}\n{string.Join("\n", logs)}");
            }
            Thread.Sleep(500);
        }

        var status = CliRunner.Ok("study", "status", output);
        Assert.Contains("2 done, 0 diverged, 0 failed, 0 running, 0 interrupted, 0 pending", status);
        foreach (var entry in plan)
        {
            Assert.Equal($"{jobId}_{entry.Index}", store.ReadTrial(entry.Id)!.SlurmJob);
            Assert.Equal(8, StudyFixtures.StepLosses(store.TrialDir(entry.Id)).Length);
        }
        // everything is finished: a new submission has nothing to do
        Assert.Contains("nothing to submit", CliRunner.Ok("study", "submit", file, "--executor", "slurm"));
    }
}
