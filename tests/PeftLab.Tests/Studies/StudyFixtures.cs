using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Training;

namespace PeftLab.Tests.Studies;

/// <summary>Study files over <see cref="MiniTasks"/> and the nano preset, small enough to train in a second or two per trial.</summary>
internal static class StudyFixtures
{
    private static readonly Lazy<string> SharedData = new(() => MiniTasks.Write());

    /// <summary>One MiniTasks folder shared by the study tests (read-only after creation).</summary>
    public static string Data => SharedData.Value;

    /// <summary>The base training config (YAML flow mappings) for nano on MiniTasks.</summary>
    public static string Base(string data, int maxSteps = 12, bool generate = false, int checkpointEvery = 2) => $$"""
        base:
          model: {preset: nano}
          data: {path: {{data}}, max_source_tokens: 40, max_target_tokens: 12, max_length: 64, train_instances_per_task: 8, held_out_instances_per_task: 4, validation_tasks: 1, validation_instances_per_task: 4, test_instances_per_task: 4}
          train: {batch_size: 4, threads: 1, max_steps: {{maxSteps}}}
          optim: {lr: 3.0e-3}
          eval: {evals_per_run: 2, max_new_tokens: 6, final: false, generate: {{(generate ? "true" : "false")}}, max_validation_instances: 4}
          schedule: {warmup_steps: 1}
          checkpoint: {every_steps: {{checkpointEvery}}}
        """;

    /// <summary>
    /// Writes a study file (name, output, base, then <paramref name="rest"/>) and returns its path. Without a
    /// <c>baseline:</c> key in <paramref name="rest"/> the study has no untuned-baseline trial, so the tests of the
    /// matrix count only the axes' trials.
    /// </summary>
    public static string Write(string dir, string output, string rest, string? baseYaml = null, string name = "mini")
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "study.yaml");
        var baseline = rest.Contains("baseline:", StringComparison.Ordinal) ? "" : "baseline: false\n";
        File.WriteAllText(path, $"name: {name}\noutput: {output}\n{baseline}{baseYaml ?? Base(Data)}\n{rest}\n");
        return path;
    }

    /// <summary>Step losses of a run folder.</summary>
    public static double[] StepLosses(string runDir) =>
        RunFiles.ReadMetrics(Path.Combine(runDir, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step")
            .Select(r => r["loss"]!.GetValue<double>()).ToArray();

    /// <summary>Starts the CLI without waiting (stdout and stderr collected).</summary>
    public static (Process Process, System.Text.StringBuilder Output) Start(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "PeftLab.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        var output = new System.Text.StringBuilder();
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return (p, output);
    }

    /// <summary>The trial folders of a study folder.</summary>
    public static string[] TrialDirs(string studyDir) => Directory.GetDirectories(Path.Combine(studyDir, "trials")).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Parses a JSON file.</summary>
    public static JsonObject Json(string path) => (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
}

/// <summary>
/// The study tests run one at a time, after the parallel tests: several time real training, kills and signals, and
/// keeping them out of the parallel phase leaves the timing of the other in-process training tests as it was.
/// </summary>
[CollectionDefinition("study processes", DisableParallelization = true)]
public sealed class StudyProcessCollection;
