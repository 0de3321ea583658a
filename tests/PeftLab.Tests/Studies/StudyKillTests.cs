using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Studies;
using PeftLab.Training;

namespace PeftLab.Tests.Studies;

/// <summary>
/// A study SIGKILLed at random moments (seeded) and restarted until done ends with exactly one result per trial, and
/// the same step losses and results as an uninterrupted run.
/// </summary>
[Collection("study processes")]
public sealed class StudyKillTests
{
    private const int Steps = 24;

    private static string[] Volatile { get; } = ["wall_s", "tokens_per_s", "peak_rss_mib"];

    /// <summary>A JSON tree without wall-clock and throughput fields.</summary>
    private static JsonNode? Stable(JsonNode? n) => n switch
    {
        JsonObject o => new JsonObject(o.Where(kv => !Volatile.Contains(kv.Key)).Select(kv => KeyValuePair.Create(kv.Key, Stable(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Stable).ToArray()),
        _ => n?.DeepClone(),
    };

    private static string[] MetricLines(string runDir) =>
        RunFiles.ReadMetrics(Path.Combine(runDir, "metrics.jsonl")).Select(r => Stable(r)!.ToJsonString()).ToArray();

    [Fact]
    public void KilledAtRandomMomentsAndRestartedItEqualsAnUninterruptedRun()
    {
        var dir = TestPaths.NewTempDir("study-kill");
        var output = Path.Combine(dir, "out");
        var file = StudyFixtures.Write(dir, output, """
            axes:
              method: [lora, full, prompt_tuning]
            method_overrides:
              lora: {method.dropout: 0.1}
              prompt_tuning: {method.num_virtual_tokens: 4}
            """, StudyFixtures.Base(StudyFixtures.Data, maxSteps: Steps, checkpointEvery: 2));
        var study = Study.Load(file);
        Assert.Equal(3, study.Trials.Count);

        // the uninterrupted reference: the same command into another folder (ids do not depend on the folder)
        var referenceDir = Path.Combine(dir, "reference");
        CliRunner.Ok("study", "run", file, $"output={referenceDir}", "--workers", "2", "--threads-per-worker", "1");
        var reference = Study.Load(file, [$"output={referenceDir}"]);
        Assert.Equal(study.Trials.Select(t => t.Id), reference.Trials.Select(t => t.Id));

        var rng = new Random(20240501);
        var sw = Stopwatch.StartNew();
        int launches = 0, kills = 0;
        var log = new System.Text.StringBuilder();
        while (true)
        {
            Assert.True(launches < 12, $"the study did not finish after {launches} launches:\n{log}");
            launches++;
            var (p, outputLog) = StudyFixtures.Start("study", "run", file, "--workers", "2", "--threads-per-worker", "1");
            if (kills < 4)
            {
                // kill a random number of steps further on (while training), or at a random early moment (start-up, resume)
                int remaining = Steps * study.Trials.Count - TotalSteps(study);
                bool early = remaining < 4 || rng.Next(4) == 0;
                int target = TotalSteps(study) + rng.Next(1, Math.Max(2, remaining / 2));
                var until = sw.Elapsed + TimeSpan.FromMilliseconds(rng.Next(100, 1500));
                while (!p.HasExited && (early ? sw.Elapsed < until : TotalSteps(study) < target) && sw.Elapsed < TimeSpan.FromSeconds(100)) Thread.Sleep(5);
                if (!p.HasExited)
                {
                    // alternately the executor alone (its orphaned workers notice and stop) and the whole tree (a crash)
                    bool tree = kills % 2 == 0;
                    p.Kill(entireProcessTree: tree);
                    kills++;
                    log.AppendLine($"launch {launches}: SIGKILL {(tree ? "tree" : "executor")} at {TotalSteps(study)} steps ({(early ? "early" : $"target {target}")})");
                }
            }
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(120)), $"study run hung:\n{log}\n{outputLog}");
            p.WaitForExit();
            lock (outputLog) log.AppendLine(outputLog.ToString());
            if (p.ExitCode == 0 && study.Trials.All(t => File.Exists(study.Store.ResultJson(t.Id)))) break;
        }
        Assert.True(kills >= 3, $"only {kills} kills happened:\n{log}");

        foreach (var t in study.Trials)
        {
            var trialDir = study.Store.TrialDir(t.Id);
            var refDir = reference.Store.TrialDir(t.Id);
            void Check(bool ok, string what) => Assert.True(ok, $"trial {t.Index} ({t.Entry.Describe()}): {what}\n{log}");
            Check(Directory.GetFiles(trialDir, "result.json*", SearchOption.AllDirectories).Length == 1, "not exactly one result.json");
            Check(Directory.GetFiles(trialDir, ".*.tmp").Length == 0, "temp files left: " + string.Join(", ", Directory.GetFiles(trialDir, ".*.tmp")));
            Check(study.Store.ReadTrial(t.Id)!.State == TrialState.Done, $"trial.json state {study.Store.ReadTrial(t.Id)!.State}");
            var (expected, actual) = (StudyFixtures.StepLosses(refDir), StudyFixtures.StepLosses(trialDir));
            Check(expected.SequenceEqual(actual), $"step losses differ (bit-identical expected):\n  reference {string.Join(", ", expected)}\n  killed    {string.Join(", ", actual)}");
            var steps = RunFiles.ReadMetrics(Path.Combine(trialDir, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["step"]!.GetValue<int>()).ToArray();
            Check(steps.SequenceEqual(Enumerable.Range(1, Steps)), $"step records {string.Join(",", steps)}");
            var (refLines, lines) = (MetricLines(refDir), MetricLines(trialDir));
            Check(refLines.SequenceEqual(lines), $"metrics differ:\n  reference {string.Join("\n    ", refLines)}\n  killed    {string.Join("\n    ", lines)}");
            var (refResult, result) = (Stable(StudyFixtures.Json(Path.Combine(refDir, "result.json")))!.ToJsonString(), Stable(StudyFixtures.Json(Path.Combine(trialDir, "result.json")))!.ToJsonString());
            Check(refResult == result, $"result.json differs:\n  reference {refResult}\n  killed    {result}");
        }
        Assert.True(study.Trials.Any(t => study.Store.ReadTrial(t.Id)!.Attempts > 1), $"no trial was ever resumed:\n{log}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), $"took {sw.Elapsed}\n{log}");
    }

    /// <summary>Steps recorded by all trials together.</summary>
    private static int TotalSteps(Study study) =>
        study.Trials.Sum(t => LocalExecutor.LastStep(Path.Combine(t.Config.Output, "metrics.jsonl")).Step ?? 0);
}
