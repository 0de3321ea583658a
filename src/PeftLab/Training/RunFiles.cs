using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftLab.Training;

/// <summary>The files of one run folder; one place that knows their names.</summary>
public sealed class RunFiles(string dir)
{
    /// <summary>The run folder.</summary>
    public string Dir { get; } = dir;
    /// <summary>Resolved config.</summary>
    public string Config => Path.Combine(Dir, "config.yaml");
    /// <summary>Per-step and per-evaluation metrics, one JSON object per line.</summary>
    public string Metrics => Path.Combine(Dir, "metrics.jsonl");
    /// <summary>Final result (written atomically, last).</summary>
    public string Result => Path.Combine(Dir, "result.json");
    /// <summary>Resumable checkpoints.</summary>
    public string Checkpoints => Path.Combine(Dir, "checkpoints");
    /// <summary>Pointer to the newest complete checkpoint.</summary>
    public string Latest => Path.Combine(Checkpoints, "latest");
    /// <summary>Best weights (adapter folder, or a full checkpoint for full finetuning).</summary>
    public string Best => Path.Combine(Dir, "best");
    /// <summary>
    /// The trainable tensors of the best step as the attached modules hold them (restored for the final evaluation;
    /// the best adapter folder may hold them converted, e.g. PiSSA's rank-2r file or AdaLoRA's pruned ranks).
    /// </summary>
    public string BestTrainable => Path.Combine(Checkpoints, "best-trainable.safetensors");
    /// <summary>Predictions and scores of the final evaluation.</summary>
    public string Eval => Path.Combine(Dir, "eval");
    /// <summary>TensorBoard event files.</summary>
    public string TensorBoard => Path.Combine(Dir, "tb");
    /// <summary>Held (exclusively) by the process training into this folder.</summary>
    public string Lock => Path.Combine(Dir, ".train.lock");   // a study holds the trial folder's .lock itself
    /// <summary>Base model created from a preset.</summary>
    public string BaseModel => Path.Combine(Dir, "base");

    /// <summary>Reads all metric records (skipping a torn last line).</summary>
    public static IReadOnlyList<JsonObject> ReadMetrics(string path)
    {
        if (!File.Exists(path)) return [];
        var result = new List<JsonObject>();
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { if (JsonNode.Parse(line) is JsonObject o) result.Add(o); }
            catch (JsonException) { } // a line torn by a kill; everything after a checkpoint is rewritten on resume anyway
        }
        return result;
    }
}

/// <summary>Appends JSON lines, flushed per line so a killed run keeps what it wrote.</summary>
public sealed class MetricsWriter : IDisposable
{
    private readonly StreamWriter writer;

    /// <summary>Opens for append; when <paramref name="keepThroughStep"/> is set, earlier records after that step are dropped first (resume).</summary>
    public MetricsWriter(string path, int? keepThroughStep = null)
    {
        if (keepThroughStep is int keep && File.Exists(path))
        {
            var kept = RunFiles.ReadMetrics(path).Where(o => (o["step"]?.GetValue<int>() ?? 0) <= keep);
            Runtime.AtomicFile.WriteAllText(path, string.Concat(kept.Select(o => o.ToJsonString() + "\n")));
        }
        writer = new StreamWriter(path, append: true) { AutoFlush = true };
    }

    /// <summary>Writes one record.</summary>
    public void Write(JsonObject record) => writer.WriteLine(record.ToJsonString());

    /// <inheritdoc/>
    public void Dispose() => writer.Dispose();
}
