using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Studies;

namespace PeftLab.Tests.Studies;

/// <summary>The job-array script and the sbatch calls, checked with a stand-in sbatch (the real one: <see cref="SlurmExecutorTests"/>).</summary>
[Collection("study processes")]
public sealed class SlurmScriptTests
{
    private static string Bash(string script, IDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        return stdout;
    }

    [Fact]
    public void LargeStudiesBecomeSeveralArraysAndEveryTaskFindsItsTrial()
    {
        var dir = TestPaths.NewTempDir("slurm-script");
        var study = Study.Load(StudyFixtures.Write(dir, Path.Combine(dir, "out"), """
            axes: {method: [lora, ia3, bitfit], lr: [1.0e-3]}
            executor:
              slurm: {partition: gpu, gpus_per_task: 1, time: "01:00:00", extra_args: [--mem=8G], setup: [echo setting up]}
            """, name: "arrays"));
        // trial 1 is finished already: only 0 and 2 are submitted
        Directory.CreateDirectory(study.Store.TrialDir(study.Trials[1].Id));
        File.WriteAllText(study.Store.ResultJson(study.Trials[1].Id), """{"status": "completed"}""");

        var calls = Path.Combine(dir, "calls.txt");
        var fake = Path.Combine(dir, "sbatch");
        File.WriteAllText(fake, $"#!/bin/bash\necho \"$@\" >> {calls}\necho $((100 + $(wc -l < {calls})))\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var launcher = new WorkerLauncher("/opt/dot net/dotnet", ["/opt/peft lab/PeftLab.Cli.dll"]);
        var submission = SlurmExecutor.Submit(study, new SlurmSubmitOptions { Launcher = launcher, Sbatch = fake, MaxArrayTasks = 1, CpusPerTask = 4 });

        Assert.Equal([0, 2], submission.Trials);
        Assert.Equal([new SlurmJob("101", 0, 1), new SlurmJob("102", 1, 1)], submission.Jobs);
        var lines = File.ReadAllLines(calls);
        Assert.Equal($"--parsable --array=0-0 --export=ALL,PEFTLAB_ARRAY_OFFSET=0 {submission.Script}", lines[0]);
        Assert.Equal($"--parsable --array=0-0 --export=ALL,PEFTLAB_ARRAY_OFFSET=1 {submission.Script}", lines[1]);
        var jobs = File.ReadAllLines(Path.Combine(study.Store.SlurmDir, "jobs.jsonl")).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(["101", "102"], jobs.Select(j => j["job_id"]!.GetValue<string>()));

        var script = File.ReadAllText(submission.Script);
        foreach (var line in new[] { "#SBATCH --job-name=peftlab-arrays", "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=4", "#SBATCH --gpus-per-task=1",
                     "#SBATCH --time=01:00:00", "#SBATCH --mem=8G", $"#SBATCH --chdir={Environment.CurrentDirectory}", "echo setting up" })
            Assert.Contains(line + "\n", script);
        // each (job offset, array task) resolves to its trial, with absolute, quoted launcher paths
        var dry = script.Replace("exec '", "echo '");
        foreach (var (offset, trial) in new[] { ("0", study.Trials[0]), ("1", study.Trials[2]) })
        {
            var command = Bash(dry, new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "0", ["PEFTLAB_ARRAY_OFFSET"] = offset });
            Assert.Equal($"/opt/dot net/dotnet /opt/peft lab/PeftLab.Cli.dll study run-trial {study.Store.StudyYaml} --index {trial.Index} --id {trial.Id} --threads 4", command.Trim().Split('\n')[^1]);
        }

        // nothing left: no sbatch call at all
        foreach (var t in study.Trials)
        {
            Directory.CreateDirectory(study.Store.TrialDir(t.Id));
            File.WriteAllText(study.Store.ResultJson(t.Id), """{"status": "completed"}""");
        }
        Assert.Empty(SlurmExecutor.Submit(study, new SlurmSubmitOptions { Launcher = launcher, Sbatch = fake }).Jobs);
        Assert.Equal(2, File.ReadAllLines(calls).Length);
    }
}
