using PeftLab.Configuration;
using PeftLab.Evaluation.Harness;
using PeftLab.Synthetic;
using PeftLab.Tests.Real;
using PeftLab.Training;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>The open-instruction arm of a run's final evaluation: benchmarks scored on the best weights, written per benchmark, in result.json, and refused early.</summary>
public sealed class OpenInstructionTests
{
    private static readonly Lazy<string> Data = new(() => StoryTasks.Write());

    private static (string Config, string Harness) Setup(string name, string judge = "base", string? extraTask = null)
    {
        var dir = TestPaths.NewTempDir(name);
        var harness = Path.Combine(dir, "harness");
        var written = HarnessSuite.Write(harness, 3, 4);
        var tasks = string.Concat(written.Select(w => $"      - task: {Path.Combine(harness, w.Name + ".yaml")}\n        group: {ConfigEnums.Name(w.Group)}\n"));
        if (extraTask is not null) tasks += $"      - task: {extraTask}\n        group: reasoning\n";
        var config = Path.Combine(dir, "train.yaml");
        File.WriteAllText(config, $"eval:\n  open_instruction:\n    limit: 4\n    judge: {judge}\n    tasks:\n{tasks}");
        return (config, harness);
    }

    [Fact]
    public void TheFinalEvaluationScoresEveryBenchmarkAndRecordsIt()
    {
        var (config, _) = Setup("open-run");
        var output = Path.Combine(Path.GetDirectoryName(config)!, "run");
        var result = Trainer.Run(TrainConfigLoader.Load(config, [.. StoryTasks.Run(Data.Value, output, "lora", 2)]));
        Assert.Equal(RunStatus.Completed, result.Status);
        var open = result.OpenInstruction!;
        Assert.Equal(["synth_mc", "synth_arith", "synth_qa", "synth_cloze", "synth_code", "synth_open"], open.Select(o => o.Task));
        Assert.Equal(["acc", "exact_match,strict-match", "f1,answer", "acc", "pass@1,create_test", "win_rate,answer"], open.Select(o => o.Metric));
        Assert.All(open, o => Assert.True(o.Documents == 4 && o.Lower <= o.Value && o.Value <= o.Upper && o.Value is >= 0 and <= 1, o.ToString()));
        foreach (var o in open)
        {
            var dir = Path.Combine(output, "eval", OpenInstructionEval.FolderName, o.Task);
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
            Assert.Equal((ConfigEnums.Name(o.Group), o.Metric), ((string)json["group"]!, (string)json["primary"]!));
            Assert.Equal(4, File.ReadAllLines(Path.Combine(dir, "samples.jsonl")).Length);
        }
        // result.json keeps them, and reads back to the same record
        var back = RunResult.Read(Path.Combine(output, "result.json"));
        Assert.Equal(open, back.OpenInstruction!);
        Assert.Equal(File.ReadAllText(Path.Combine(output, "result.json")), back.ToJsonString());
    }

    [Fact]
    public void ProblemsAreFoundBeforeTraining()
    {
        var (noJudge, _) = Setup("open-nojudge", judge: "null");
        var output = Path.Combine(Path.GetDirectoryName(noJudge)!, "run");
        var e = Assert.Throws<ArgumentException>(() => Trainer.Run(TrainConfigLoader.Load(noJudge, [.. StoryTasks.Run(Data.Value, output, "lora", 50)])));
        Assert.Contains("eval.open_instruction.judge: benchmark synth_open scores win_rate and needs a judge", e.Message);
        Assert.False(File.Exists(Path.Combine(output, "metrics.jsonl")), "nothing trained");
        var (missing, _) = Setup("open-missing", extraTask: "/nonexistent/gsm8k.yaml");
        var bad = Assert.Throws<ConfigException>(() => TrainConfigLoader.Load(missing, [.. StoryTasks.Run(Data.Value, output, "lora", 50)]));
        Assert.Contains("eval.open_instruction.tasks.6.task", bad.Message);
        Assert.Contains("'/nonexistent/gsm8k.yaml' does not exist", bad.Message);
        var (badGroup, _) = Setup("open-group");
        File.WriteAllText(badGroup, File.ReadAllText(badGroup).Replace("group: coding", "group: poetry"));
        var g = Assert.Throws<ConfigException>(() => TrainConfigLoader.Load(badGroup, [.. StoryTasks.Run(Data.Value, output, "lora", 50)]));
        Assert.Contains("poetry", g.Message);
    }
}
