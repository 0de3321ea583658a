using System.Diagnostics;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Schema;
using PeftLab.Studies;

namespace PeftLab.Tests.Studies;

[Collection("study processes")]
public sealed class StudyStoreTests
{
    private static Study NewStudy(string rest = "axes: {method: [full, lora], lr: [1.0e-3], lora_r: [4]}")
    {
        var dir = TestPaths.NewTempDir("study-store");
        var study = Study.Load(StudyFixtures.Write(dir, Path.Combine(dir, "out"), rest));
        study.Store.Initialise(study);
        return study;
    }

    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public void ObserveChecksRecordedStatesAgainstFilesAndProcesses()
    {
        var study = NewStudy();
        var store = study.Store;
        var entry = study.Trials[0].Entry;
        var id = entry.Id;
        Assert.Equal(TrialView.Pending, store.Observe(entry).View);

        var record = new TrialRecord { Id = id, Index = 0, Axes = entry.AxesJson(), State = TrialState.Running, Pid = DeadPid(), Host = Environment.MachineName };
        store.WriteTrial(record);
        Assert.Equal(TrialView.Interrupted, store.Observe(entry).View);   // "running" but its process is gone

        using (var claim = store.TryLock(id))
        {
            Assert.NotNull(claim);
            Assert.Null(store.TryLock(id));                                // exclusive
            Assert.Equal(TrialView.Running, store.Observe(entry).View);
        }
        using (var again = store.TryLock(id)) Assert.NotNull(again);   // released with its holder

        store.WriteTrial(record with { State = TrialState.Running, Pid = Environment.ProcessId, PidStartMs = StudyStore.CurrentProcessStartMs() });
        Assert.Equal(TrialView.Running, store.Observe(entry).View);       // recorded live worker on this host (no lock file needed)

        store.WriteTrial(record with { State = TrialState.Failed, Error = "boom" });
        var failed = store.Observe(entry);
        Assert.Equal(TrialView.Failed, failed.View);
        Assert.Equal("boom", failed.Record!.Error);

        store.WriteTrial(record with { State = TrialState.Pending });
        Directory.CreateDirectory(Path.Combine(store.TrialDir(id), "checkpoints"));
        File.WriteAllText(Path.Combine(store.TrialDir(id), "checkpoints", "latest"), "step-00000002");
        Assert.Equal(TrialView.Interrupted, store.Observe(entry).View);

        File.WriteAllText(store.ResultJson(id), """{"status": "diverged", "reason": "loss is NaN"}""");
        Assert.Equal(TrialView.Diverged, store.Observe(entry).View);
        File.WriteAllText(store.ResultJson(id), """{"status": "completed"}""");
        Assert.Equal(TrialView.Done, store.Observe(entry).View);           // result.json decides, whatever trial.json says
    }

    [Fact]
    public void TrialRecordsRoundTrip()
    {
        var r = new TrialRecord
        {
            Id = "0123456789ab", Index = 7, Axes = new JsonObject { ["method"] = "lora", ["lr"] = 1e-4, ["task_count"] = null },
            State = TrialState.Diverged, Error = "x", Attempts = 3, Pid = 42, PidStartMs = 123, Host = "h", SlurmJob = "9_1",
            StartedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), InterruptedAtStep = 5,
            Progress = new TrialProgress("train", 5, 10, 1.5, 100, 2.5),
        };
        var back = TrialRecord.FromJson(r.ToJson());
        Assert.Equal(r.ToJson().ToJsonString(), back.ToJson().ToJsonString());
        Assert.Equal("diverged", r.ToJson()["state"]!.GetValue<string>());
    }

    /// <summary>A study folder with a done, a diverged and a failed trial, written by hand.</summary>
    private static StudyStore FabricatedResults()
    {
        var study = NewStudy("axes: {method: [full, lora, ia3], lr: [1.0e-3], lora_r: [4], task_count: [null]}");
        var store = study.Store;
        var (done, diverged, failed) = (study.Trials[0], study.Trials[1], study.Trials[2]);
        Directory.CreateDirectory(store.TrialDir(done.Id));
        File.WriteAllText(store.ResultJson(done.Id), """
            {"status": "completed", "method": "full", "steps": 12, "tokens": 3000, "best_step": 12, "best_metric": "RougeL", "best_score": 41.5,
             "final_loss": 1.25,
             "test": {"exact_match": 20, "rougeL": 40.5, "count": 8, "missing": 0, "per_task": {},
                      "per_category": {"String Transformation": {"exact_match": 20, "rougeL": 40.5, "primary_metric": "rougeL", "primary": 40.5, "count": 4},
                                       "Counting, \"quoted\"": {"exact_match": 50, "rougeL": 50, "primary_metric": "exact_match", "primary": 50, "count": 4}}},
             "heldout": {"exact_match": 30, "rougeL": 55.25, "count": 6, "missing": 0, "per_task": {}, "per_category": {}},
             "spikes": {"count": 2, "steps": [3, 9]}, "learning_speed": {"steps_to_50pct": 4, "steps_to_80pct": 8, "steps_to_95pct": null, "auc": 30.5},
             "cost": {"trainable_params": 100000, "total_params": 100000, "optimizer_state_bytes": 800000, "peak_rss_mib": 512.5, "wall_s": 3.5, "tokens_per_s": 857.1, "checkpoint_bytes": 4096},
             "warnings": []}
            """);
        store.WriteTrial(new TrialRecord { Id = done.Id, Index = 0, Axes = done.Entry.AxesJson(), State = TrialState.Done });
        Directory.CreateDirectory(store.TrialDir(diverged.Id));
        File.WriteAllText(store.ResultJson(diverged.Id), """{"status": "diverged", "reason": "loss is NaN", "diverged_at_step": 3, "method": "lora", "steps": 3, "spikes": {"count": 0, "steps": []}}""");
        store.WriteTrial(new TrialRecord { Id = failed.Id, Index = 2, Axes = failed.Entry.AxesJson(), State = TrialState.Failed, Error = "ArgumentException: bad, really" });
        return store;
    }

    [Fact]
    public void ResultsFlattenEveryTrialWithAxesAndMetrics()
    {
        var results = StudyResults.Collect(FabricatedResults());
        Assert.Equal(3, results.Rows.Count);
        var names = results.Columns.Select(c => c.Name).ToArray();
        foreach (var c in new[] { "index", "id", "state", "error", "method", "lora_r", "lr", "task_count", "status", "steps", "best_score", "test_rougeL", "test_exact_match",
                     "heldout_rougeL", "heldout_exact_match", "spikes_count", "steps_to_50pct", "learning_auc", "trainable_params", "wall_s", "tokens_per_s",
                     "test_cat_string_transformation", "test_cat_counting_quoted" })
            Assert.Contains(c, names);
        var (done, diverged, failed) = (results.Rows[0], results.Rows[1], results.Rows[2]);
        Assert.Equal(("done", "full", 40.5, 50.0), ((string)done["state"]!, (string)done["method"]!, (double)done["test_rougeL"]!, (double)done["test_cat_counting_quoted"]!));
        Assert.Null(done["lora_r"]);                     // a knob axis of another method
        Assert.Null(done["task_count"]);                 // null: all tasks
        Assert.Equal(12L, done["steps"]);
        Assert.Equal(("diverged", 4L, 3L), ((string)diverged["state"]!, (long)diverged["lora_r"]!, (long)diverged["diverged_at_step"]!));
        Assert.Equal(("failed", "ArgumentException: bad, really"), ((string)failed["state"]!, (string)failed["error"]!));
        Assert.Null(failed["status"]);
    }

    [Fact]
    public void CsvReadsBackWithPythonsCsvModule()
    {
        var store = FabricatedResults();
        var csv = Path.Combine(store.Dir, "results.csv");
        StudyResults.Collect(store).Save(ResultsFormat.Csv, csv);
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import csv, json, sys; rows = list(csv.DictReader(open(sys.argv[1], newline=''))); print(json.dumps(rows))");
        psi.ArgumentList.Add(csv);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        var rows = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(3, rows.Count);
        Assert.Equal("40.5", rows[0]!["test_rougeL"]!.GetValue<string>());
        Assert.Equal("50", rows[0]!["test_cat_counting_quoted"]!.GetValue<string>());
        Assert.Equal("", rows[0]!["lora_r"]!.GetValue<string>());
        Assert.Equal("ArgumentException: bad, really", rows[2]!["error"]!.GetValue<string>());
        Assert.Equal("0.001", rows[1]!["lr"]!.GetValue<string>());
    }

    [Fact]
    public async Task JsonlAndParquetCarryTheSameRows()
    {
        var store = FabricatedResults();
        var results = StudyResults.Collect(store);
        var jsonl = Path.Combine(store.Dir, "results.jsonl");
        results.Save(ResultsFormat.Jsonl, jsonl);
        var lines = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        Assert.Equal(3, lines.Length);
        Assert.Equal(40.5, lines[0]["test_rougeL"]!.GetValue<double>());
        Assert.Null(lines[0]["lora_r"]);
        Assert.Equal(results.Columns.Count, lines[0].Count);

        var parquet = Path.Combine(store.Dir, "results.parquet");
        results.Save(ResultsFormat.Parquet, parquet);
        await using var fs = File.OpenRead(parquet);
        await using var reader = await ParquetReader.CreateAsync(fs);
        Assert.Equal(1, reader.RowGroupCount);
        var fields = reader.Schema.GetDataFields();
        Assert.Equal(results.Columns.Select(c => c.Name), fields.Select(f => f.Name));
        using var group = reader.OpenRowGroupReader(0);
        Assert.Equal(3, group.RowCount);
        var rouge = new double?[3];
        await group.ReadAsync<double>(fields.First(f => f.Name == "test_rougeL"), rouge.AsMemory());
        Assert.Equal([40.5, null, null], rouge);
        var steps = new long?[3];
        await group.ReadAsync<long>(fields.First(f => f.Name == "steps"), steps.AsMemory());
        Assert.Equal([12L, 3L, null], steps);
        var states = new string?[3];
        await group.ReadAsync(fields.First(f => f.Name == "state"), states.AsMemory());
        Assert.Equal(["done", "diverged", "failed"], states.Select(x => x ?? "<null>"));
        var methods = new string?[3];
        await group.ReadAsync(fields.First(f => f.Name == "method"), methods.AsMemory());
        Assert.Equal(["full", "lora", "ia3"], methods.Select(x => x ?? "<null>"));
    }
}
