using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftLab.Evaluation;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Tests.Training;

/// <summary>result.json through <see cref="RunResult"/>: the files of earlier runs read and write back unchanged, bad files are clear errors, and nothing else reads the file's keys.</summary>
public sealed class RunResultTests
{
    /// <summary>
    /// result.json files written by the trainer before <see cref="RunResult"/> existed (commit df0b6e0): <c>peftlab train</c>
    /// on the SuperNI subset (nano preset, LoRA and prefix tuning with generation and the final evaluation, full
    /// finetuning at lr 1e4 until it diverged) and <c>peftlab pretrain</c> on a small text corpus.
    /// </summary>
    private static string Fixture(string name) => Path.Combine(TestPaths.RepoRoot, "tests", "PeftLab.Tests", "Training", "RunResultFixtures", name);

    [Theory]
    [InlineData("lora-completed.json")]
    [InlineData("prefix-tuning-completed-with-warning.json")]
    [InlineData("full-diverged.json")]
    [InlineData("pretrain-completed.json")]
    public void FilesOfEarlierRunsReadAndWriteBackByteForByte(string name)
    {
        var path = Fixture(name);
        Assert.Equal(File.ReadAllText(path), RunResult.Read(path).ToJsonString());
    }

    [Fact]
    public void FilesOfEarlierRunsReadIntoTheirValues()
    {
        var lora = RunResult.Read(Fixture("lora-completed.json"));
        Assert.Equal(RunStatus.Completed, lora.Status);
        Assert.Equal(PeftMethodKind.Lora, lora.Method);
        Assert.Equal((6, 1134L, 2), (lora.Steps!.Value, lora.Tokens!.Value, lora.BestStep!.Value));
        Assert.Equal((BestMetric.RougeL, 0.0, 6.307697677612305), (lora.BestMetric!.Value, lora.BestScore!.Value, lora.FinalLoss!.Value));
        Assert.Equal((1.4286, 0.0, 14, 0), (lora.Test!.RougeL, lora.Test.ExactMatch, lora.Test.Count, lora.Test.Missing));
        Assert.Equal(20, lora.Test.PerTask["task393_plausible_result_generation"].RougeL);
        Assert.Equal(PrimaryMetric.ExactMatch, lora.Test.PerCategory["cause_effect_classification"].PrimaryMetric);
        Assert.NotNull(lora.Heldout);
        Assert.Equal(new LearningSpeed(null, null, null, 0), lora.LearningSpeed);
        Assert.Equal(0, lora.Spikes!.Count);
        Assert.Equal(new RunCost
        {
            TrainableParams = 3072, TotalParams = 107760, OptimizerStateBytes = 24576, PeakRssMib = 231.3125, WallSeconds = 0.800866,
            TokensPerSecond = 1415.967215489233, CheckpointBytes = 13798,
        }, lora.Cost);
        Assert.Empty(lora.Warnings);

        var diverged = RunResult.Read(Fixture("full-diverged.json"));
        Assert.Equal((RunStatus.Diverged, "gradient norm is NaN", 2), (diverged.Status, diverged.Reason, diverged.DivergedAtStep!.Value));
        Assert.Equal(PeftMethodKind.Full, diverged.Method);
        Assert.Null(diverged.BestStep);       // diverged before its first evaluation
        Assert.Null(diverged.BestScore);
        Assert.Null(diverged.LearningSpeed);  // validated by loss only: learning_speed is {}
        Assert.Null(diverged.Test);

        var prefix = RunResult.Read(Fixture("prefix-tuning-completed-with-warning.json"));
        Assert.Equal(PeftMethodKind.PrefixTuning, prefix.Method);   // written "prefixtuning"
        Assert.StartsWith("59 training task(s) have fewer than 200 instances", Assert.Single(prefix.Warnings));

        var pretrain = RunResult.Read(Fixture("pretrain-completed.json"));
        Assert.Equal((BestMetric.Loss, -5.713088747054812), (pretrain.BestMetric!.Value, pretrain.BestScore!.Value));
        Assert.Null(pretrain.Test);
    }

    [Fact]
    public void TheTrainerReturnsWhatItWritesWithEveryKeyInOrder()
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Trainer.Run(TrainConfigLoader.Load(null, [.. MiniTasks.FastRun(data, run), "method.name=lora", "train.max_steps=4", "eval.final=true",
            "data.test_instances_per_task=2"]));
        var file = new RunFiles(run).Result;
        var text = File.ReadAllText(file);
        Assert.Equal(text, result.ToJsonString());
        Assert.Equal(text, RunResult.Read(file).ToJsonString());
        var keys = JsonNode.Parse(text)!.AsObject().Select(kv => kv.Key).ToArray();
        Assert.Equal(RunResult.Keys.Where(keys.Contains), keys);   // in the record's order
        Assert.Equal(RunResult.Keys.Count - 3, keys.Length);       // all but the two of a diverged run and open_instruction (none configured)
        Assert.NotNull(result.Test);
        Assert.NotNull(result.Heldout);
        Assert.NotNull(result.LearningSpeed);
    }

    /// <summary>A file written by hand, as tests and tools write them: integers for scores, the canonical method name, characters JSON escapes.</summary>
    private const string HandWritten = """
        {"status": "diverged", "reason": "loss above 4x its running minimum (1.2) for 3 steps: \"<&>\" \u00d7",  "diverged_at_step": 9,
         "method": "prefix_tuning", "steps": 9, "tokens": 3000, "best_step": 8, "best_metric": "RougeL", "best_score": 41.5, "final_loss": null,
         "test": {"exact_match": 20, "rougeL": 40.5, "count": 8, "missing": 1, "per_task": {"task1": {"exact_match": 20, "rougeL": 40.5, "count": 8}},
                  "per_category": {"Counting, \"quoted\"": {"exact_match": 50, "rougeL": 50, "primary_metric": "exact_match", "primary": 50, "count": 4}}},
         "spikes": {"count": 2, "steps": [3, 9]}, "learning_speed": {"steps_to_50pct": 4, "steps_to_80pct": 8, "steps_to_95pct": null, "auc": 30.5},
         "cost": {"trainable_params": 100000, "total_params": 100000, "optimizer_state_bytes": 800000, "peak_rss_mib": 512.5, "wall_s": 3.5, "tokens_per_s": 857.1, "checkpoint_bytes": 4096, "dtype": "bfloat16"},
         "warnings": ["checkpoint step-00000004 is damaged: passed over"], "written_by": "a future version"}
        """;

    [Fact]
    public void AHandWrittenFileReadsBackTheSameAfterWriting()
    {
        var first = RunResult.Parse(HandWritten, "hand-written");
        var again = RunResult.Parse(first.ToJsonString(), "rewritten");
        Assert.Equal(first.ToJsonString(), again.ToJsonString());
        Assert.Equal("loss above 4x its running minimum (1.2) for 3 steps: \"<&>\" ×", again.Reason);
        Assert.Equal(PeftMethodKind.PrefixTuning, again.Method);
        Assert.Equal([3, 9], again.Spikes!.Steps);
        Assert.Equal(new LearningSpeed(4, 8, null, 30.5), again.LearningSpeed);
        Assert.Null(again.FinalLoss);
        Assert.Equal(50, again.Test!.PerCategory["Counting, \"quoted\""].Primary);
        Assert.Equal(857.1, again.Cost!.TokensPerSecond);
        Assert.Equal(ComputeDtype.Bfloat16, again.Cost.Dtype);
        var numbers = again.NumericFields();
        Assert.Equal((41.5, 40.5, 2.0, 100000.0), (numbers["best_score"], numbers["test.rougeL"], numbers["spikes.count"], numbers["cost.trainable_params"]));
        Assert.DoesNotContain(numbers.Keys, k => k.Contains("per_task"));
        Assert.DoesNotContain(numbers.Keys, k => k.StartsWith("final_loss", StringComparison.Ordinal));   // null: unknown, not a number
    }

    [Fact]
    public void FieldsAFileLeavesOutReadAsNull()
    {
        var r = RunResult.Parse("""{"status": "diverged", "reason": "loss is NaN"}""", "x");
        Assert.Equal((RunStatus.Diverged, "loss is NaN"), (r.Status, r.Reason));
        Assert.Null(r.DivergedAtStep);
        Assert.Null(r.Test);
        Assert.Null(r.Method);
        Assert.Null(r.Cost);
        Assert.Null(r.LearningSpeed);
        Assert.Empty(r.Warnings);
    }

    [Fact]
    public void AnInterruptedRunsResultHoldsOnlyItsStatus_AFinishedOneEveryField()
    {
        Assert.Equal("""{"status":"interrupted"}""", new RunResult { Status = RunStatus.Interrupted }.ToJson().ToJsonString());
        var finished = new RunResult { Status = RunStatus.Completed }.ToJson();
        var optional = RunResult.Keys.Where(k => !finished.ContainsKey(k)).ToArray();
        Assert.Equal(5, optional.Length);   // reason, diverged_at_step, test, heldout, open_instruction: written when there is one
        Assert.Empty(RunResult.Parse(finished.ToJsonString(), "x").NumericFields());
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "{ \"status\": ", "invalid JSON" },
        { "[1]", "expected a JSON object" },
        { "{}", "'status' is missing" },
        { "{\"status\": \"running\"}", "'status' is 'running', not one of completed, diverged, interrupted" },
        { "{\"status\": \"Completed\"}", "'status' is 'Completed'" },
        { "{\"status\": \"completed\", \"status\": \"diverged\"}", "invalid JSON" },
        { "{\"status\": \"completed\", \"steps\": \"6\"}", "'steps' must be an integer, not \"6\"" },
        { "{\"status\": \"completed\", \"steps\": 6.5}", "'steps' must be a 32-bit integer, not 6.5" },
        { "{\"status\": \"completed\", \"method\": \"lorra\"}", "'method' is 'lorra'" },
        { "{\"status\": \"completed\", \"best_metric\": \"rougeL\"}", "'best_metric' is 'rougeL', not one of RougeL, ExactMatch, Loss" },
        { "{\"status\": \"completed\", \"spikes\": {\"count\": 2, \"steps\": [3]}}", "'spikes.count' is 2, but 1 spike steps are listed" },
        { "{\"status\": \"completed\", \"spikes\": {\"count\": 1, \"steps\": [\"3\"]}}", "'spikes.steps[0]' must be an integer" },
        { "{\"status\": \"completed\", \"learning_speed\": {\"steps_to_50pct\": 3}}", "'learning_speed.auc' is missing" },
        { "{\"status\": \"completed\", \"cost\": {\"trainable_params\": 1, \"total_params\": 2, \"optimizer_state_bytes\": 8, \"peak_rss_mib\": 1.5, \"wall_s\": \"fast\"}}", "'cost.wall_s' must be a number, not \"fast\"" },
        { "{\"status\": \"completed\", \"cost\": {\"trainable_params\": 1}}", "'cost.total_params' is missing" },
        { "{\"status\": \"completed\", \"cost\": {\"trainable_params\": 1, \"total_params\": 2, \"optimizer_state_bytes\": 8, \"peak_rss_mib\": 1.5, \"wall_s\": 1, \"tokens_per_s\": 1, \"checkpoint_bytes\": 0, \"dtype\": \"auto\"}}",
            "'cost.dtype' is 'auto', not one of float32, bfloat16" },
        { "{\"status\": \"completed\", \"cost\": {\"trainable_params\": 1, \"total_params\": 2, \"optimizer_state_bytes\": 8, \"peak_rss_mib\": 1.5, \"wall_s\": 1, \"tokens_per_s\": 1, \"checkpoint_bytes\": 0, \"dtype\": \"BFloat16\"}}",
            "'cost.dtype' is 'BFloat16'" },
        { "{\"status\": \"completed\", \"warnings\": [\"ok\", 3]}", "'warnings[1]' must be a string, not 3" },
        { "{\"status\": \"completed\", \"test\": [] }", "'test' must be an object" },
        { "{\"status\": \"completed\", \"test\": {\"exact_match\": 1, \"rougeL\": 2, \"per_task\": {}, \"missing\": 0, \"count\": 1}}", "'test.per_category' is missing" },
        { "{\"status\": \"completed\", \"test\": {\"exact_match\": 1, \"rougeL\": 2, \"per_task\": {}, \"per_category\": {\"x\": {\"exact_match\": 1, \"rougeL\": 2, \"primary_metric\": \"rougeL\", \"primary\": 1, \"count\": 1}}, \"missing\": 0, \"count\": 1}}",
            "'test.per_category.x.primary' is 1, but its rougeL score is 2" },
        { "{\"status\": \"completed\", \"heldout\": {\"exact_match\": 1, \"rougeL\": 2, \"per_task\": {\"t\": {\"exact_match\": 1, \"rougeL\": 2}}, \"per_category\": {}, \"missing\": 0, \"count\": 1}}",
            "'heldout.per_task.t.count' is missing" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedFilesAreErrorsNamingTheFileAndTheField(string json, string expected)
    {
        var path = Path.Combine(TestPaths.NewTempDir("run-result"), "result.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<InvalidDataException>(() => RunResult.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    // --- nobody else reads result.json's keys --------------------------------------------------------------

    /// <summary>
    /// Reads by string literal of a result.json key: an indexer (<c>x["test"]</c>, <c>x?["test"]</c>; an assignment
    /// <c>x["test"] = …</c> is a write) or a JSON lookup method (<c>GetProperty("test")</c>, <c>ContainsKey("test")</c>, …).
    /// Top-level keys suffice: a nested field can only be reached through one.
    /// </summary>
    private static Regex KeyReads(IEnumerable<string> keys)
    {
        var alternatives = string.Join('|', keys.Select(Regex.Escape));
        return new Regex($@"(?<=[\w\)\]!?])\s*\[\s*""(?<key>{alternatives})""\s*\](?!\s*=(?![=>]))|\b(?:GetProperty|TryGetProperty|TryGetPropertyValue|ContainsKey)\(\s*""(?<key>{alternatives})""",
            RegexOptions.CultureInvariant);
    }

    /// <summary>
    /// Reads of other formats whose keys are named like result.json's, each as the code text ending in the key (the
    /// receiver says which format it reads). Anything else the scan finds is a result.json read bypassing the record.
    /// </summary>
    private static readonly (string File, string Read, string Format)[] OtherFormats =
    [
        ("src/PeftLab/Training/Trainer.cs", "json[\"tokens\"]", "a checkpoint's state.json"),
        ("src/PeftLab/Training/Trainer.cs", "json[\"best_step\"]", "a checkpoint's state.json"),
        ("src/PeftLab/Training/Trainer.cs", "json[\"best_score\"]", "a checkpoint's state.json"),
        ("src/PeftLab/Training/Trainer.cs", "e[\"tokens\"]", "an eval record of metrics.jsonl"),
        ("src/PeftLab/Studies/Report/ReportData.cs", "o[\"tokens\"]", "an eval record of metrics.jsonl"),
        ("src/PeftLab/Studies/Study.Validation.cs", "baseNode?[\"method\"]", "the training config's method section"),
        ("src/PeftLab/Studies/Study.Expansion.cs", "baseNode[\"method\"]", "the training config's method section"),
        ("tests/PeftLab.Tests/Configuration/ConfigWriterTests.cs", "root.GetProperty(\"method\"", "a config written as JSON"),
        ("tests/PeftLab.Tests/Cli/DescribeTests.cs", "o[\"method\"]", "a row of `peftlab describe --json`"),
        ("tests/PeftLab.Tests/Studies/Report/FakeStudy.cs", "axes[\"method\"]", "a trial's axes"),
        ("tests/PeftLab.Tests/Studies/StudyStoreTests.cs", "done[\"method\"]", "a row of `study results`"),
        ("tests/PeftLab.Tests/Studies/StudyStoreTests.cs", "done[\"steps\"]", "a row of `study results`"),
        ("tests/PeftLab.Tests/Studies/StudyStoreTests.cs", "diverged[\"diverged_at_step\"]", "a row of `study results`"),
        ("tests/PeftLab.Tests/Studies/StudyStoreTests.cs", "failed[\"status\"]", "a row of `study results`"),
        ("tests/PeftLab.Tests/Studies/StudyCliTests.cs", "rows[0][\"steps\"]", "a row of `study results --format jsonl`"),
        ("tests/PeftLab.Tests/Real/RealWeightsTests.cs", "r[\"method\"]", "a row of `study results --format jsonl`"),
    ];

    private static IEnumerable<string> SourceFiles() =>
        new[] { "src", "tests" }.SelectMany(d => Directory.EnumerateFiles(Path.Combine(TestPaths.RepoRoot, d), "*.cs", SearchOption.AllDirectories))
            .Where(f => !Path.GetRelativePath(TestPaths.RepoRoot, f).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal);

    [Fact]
    public void NoResultJsonKeyIsReadByStringLiteralOutsideTheRecord()
    {
        var reads = KeyReads(RunResult.Keys);
        var problems = new List<string>();
        var seen = new HashSet<(string, string)>();
        int scanned = 0;
        foreach (var file in SourceFiles())
        {
            var rel = Path.GetRelativePath(TestPaths.RepoRoot, file).Replace(Path.DirectorySeparatorChar, '/');
            if (rel is "src/PeftLab/Training/RunResult.cs" or "tests/PeftLab.Tests/Training/RunResultTests.cs") continue;   // the record, and this scan's own examples
            scanned++;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
                foreach (Match m in reads.Matches(lines[i]))
                {
                    var upToKey = lines[i][..(m.Index + m.Length)];
                    var other = OtherFormats.FirstOrDefault(x => x.File == rel && upToKey.EndsWith(x.Read, StringComparison.Ordinal));
                    if (other.File is not null) seen.Add((other.File, other.Read));
                    else problems.Add($"{rel}:{i + 1}: reads result.json's '{m.Groups["key"].Value}' by string literal ({m.Value.Trim()}); read it through RunResult");
                }
        }
        Assert.True(scanned > 100, $"only {scanned} source files found under {TestPaths.RepoRoot}");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        var stale = OtherFormats.Where(x => !seen.Contains((x.File, x.Read))).Select(x => $"{x.File}: {x.Read}").ToArray();
        Assert.True(stale.Length == 0, "listed reads of other formats that no longer occur (remove them from the list): " + string.Join(", ", stale));
    }

    [Theory]
    [InlineData("var score = result[\"test\"]![\"rougeL\"];", "test")]
    [InlineData("if (s.Result?[\"status\"] is JsonValue v) return;", "status")]
    [InlineData("bool done = o[ \"steps\" ] == null;", "steps")]
    [InlineData("var c = element.GetProperty(\"cost\");", "cost")]
    [InlineData("if (result.ContainsKey(\"reason\")) Console.WriteLine();", "reason")]
    public void TheScanFindsLiteralReads(string line, string key) => Assert.Equal(key, KeyReads(RunResult.Keys).Match(line).Groups["key"].Value);

    [Theory]
    [InlineData("var o = new JsonObject { [\"status\"] = \"completed\" };")]   // writes
    [InlineData("o[\"steps\"] = 3;")]
    [InlineData("var s = o[RunStatuses.Key];")]
    [InlineData("var t = row[\"test_rougeL\"];")]                             // another key that starts like one
    [InlineData("var text = \"\"\"{\"status\": \"completed\"}\"\"\";")]
    [InlineData("Assert.Equal([\"method\"], study.AxisNames);")]                   // a collection expression, not an indexer
    public void TheScanLeavesOtherCodeAlone(string line) => Assert.False(KeyReads(RunResult.Keys).IsMatch(line), line);
}
