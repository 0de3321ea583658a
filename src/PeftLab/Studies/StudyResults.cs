using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Schema;
using PeftLab.Evaluation;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>Export formats of <c>study results</c>.</summary>
public enum ResultsFormat
{
    /// <summary>Comma-separated values with a header row.</summary>
    Csv,
    /// <summary>One JSON object per line.</summary>
    Jsonl,
    /// <summary>Apache Parquet (one row group).</summary>
    Parquet,
}

/// <summary>The kind of a results column.</summary>
public enum ColumnKind
{
    /// <summary>Text.</summary>
    String,
    /// <summary>64-bit integer.</summary>
    Integer,
    /// <summary>64-bit float.</summary>
    Number,
    /// <summary>true/false.</summary>
    Boolean,
}

/// <summary>One column of the results table.</summary>
public sealed record ResultsColumn(string Name, ColumnKind Kind);

/// <summary>
/// One row per trial with every axis value and the flattened result.json: status, steps, scores, test and held-out
/// ROUGE-L / exact match, per-category test scores (<c>test_cat_&lt;category&gt;</c>, the category's primary metric),
/// spikes, learning speed and cost. Cells are string, long, double, bool or null.
/// </summary>
public sealed class StudyResults
{
    private StudyResults(IReadOnlyList<ResultsColumn> columns, IReadOnlyList<IReadOnlyDictionary<string, object?>> rows)
    {
        Columns = columns;
        Rows = rows;
    }

    /// <summary>Columns in order.</summary>
    public IReadOnlyList<ResultsColumn> Columns { get; }
    /// <summary>Rows in trial order (column name → cell).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object?>> Rows { get; }

    /// <summary>Fixed result columns after the axes (per-category columns follow them), with their kinds and cells.</summary>
    private static readonly (string Column, ColumnKind Kind, Func<RunResult, object?> Cell)[] Fields =
    [
        ("status", ColumnKind.String, r => RunStatuses.Name(r.Status)), ("reason", ColumnKind.String, r => r.Reason),
        ("diverged_at_step", ColumnKind.Integer, r => (long?)r.DivergedAtStep),
        ("steps", ColumnKind.Integer, r => (long?)r.Steps), ("tokens", ColumnKind.Integer, r => r.Tokens), ("best_step", ColumnKind.Integer, r => (long?)r.BestStep),
        ("best_metric", ColumnKind.String, r => r.BestMetric?.ToString()), ("best_score", ColumnKind.Number, r => r.BestScore), ("final_loss", ColumnKind.Number, r => r.FinalLoss),
        ("test_rougeL", ColumnKind.Number, r => r.Test?.RougeL), ("test_exact_match", ColumnKind.Number, r => r.Test?.ExactMatch),
        ("test_count", ColumnKind.Integer, r => (long?)r.Test?.Count), ("test_missing", ColumnKind.Integer, r => (long?)r.Test?.Missing),
        ("heldout_rougeL", ColumnKind.Number, r => r.Heldout?.RougeL), ("heldout_exact_match", ColumnKind.Number, r => r.Heldout?.ExactMatch),
        ("heldout_count", ColumnKind.Integer, r => (long?)r.Heldout?.Count), ("heldout_missing", ColumnKind.Integer, r => (long?)r.Heldout?.Missing),
        ("spikes_count", ColumnKind.Integer, r => (long?)r.Spikes?.Count),
        ("steps_to_50pct", ColumnKind.Integer, r => (long?)r.LearningSpeed?.StepsTo50), ("steps_to_80pct", ColumnKind.Integer, r => (long?)r.LearningSpeed?.StepsTo80),
        ("steps_to_95pct", ColumnKind.Integer, r => (long?)r.LearningSpeed?.StepsTo95), ("learning_auc", ColumnKind.Number, r => r.LearningSpeed?.Auc),
        ("trainable_params", ColumnKind.Integer, r => r.Cost?.TrainableParams), ("total_params", ColumnKind.Integer, r => r.Cost?.TotalParams),
        ("optimizer_state_bytes", ColumnKind.Integer, r => r.Cost?.OptimizerStateBytes), ("peak_rss_mib", ColumnKind.Number, r => r.Cost?.PeakRssMib),
        ("wall_s", ColumnKind.Number, r => r.Cost?.WallSeconds), ("tokens_per_s", ColumnKind.Number, r => r.Cost?.TokensPerSecond),
        ("checkpoint_bytes", ColumnKind.Integer, r => r.Cost?.CheckpointBytes),
        ("dtype", ColumnKind.String, r => r.Cost?.Dtype is { } d ? PeftLab.Configuration.ConfigEnums.Name(d) : null),
    ];

    /// <summary>Reads the study folder into rows.</summary>
    public static StudyResults Collect(StudyStore store)
    {
        var (_, axisNames, plan) = store.ReadPlan();
        var statuses = store.ObserveAll(plan);
        var rows = new List<Dictionary<string, object?>>();
        var categories = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var s in statuses)
        {
            var row = new Dictionary<string, object?>
            {
                ["index"] = (long)s.Entry.Index, ["id"] = s.Entry.Id, ["state"] = s.View.ToString().ToLowerInvariant(),
                ["error"] = s.View == TrialView.Failed ? s.Record?.Error : null,
            };
            foreach (var axis in axisNames) row[axis] = s.Entry.Axis(axis)?.Value is JsonNode v ? Cell(v) : null;
            foreach (var (column, _, cell) in Fields) row[column] = s.Result is null ? null : cell(s.Result);
            foreach (var (cat, scores) in s.Result?.Test?.PerCategory ?? new Dictionary<string, CategoryScore>())
            {
                var name = "test_cat_" + Slug(cat);
                categories.Add(name);
                row[name] = scores.Primary;
            }
            rows.Add(row);
        }
        var names = new List<string> { "index", "id", "state", "error" };
        names.AddRange(axisNames.Where(a => !names.Contains(a)));
        names.AddRange(Fields.Select(f => f.Column).Where(c => !names.Contains(c)));
        names.AddRange(categories.Where(c => !names.Contains(c)));
        var fixedKinds = Fields.ToDictionary(f => f.Column, f => f.Kind);
        foreach (var c in categories) fixedKinds[c] = ColumnKind.Number;
        fixedKinds["index"] = ColumnKind.Integer;
        var columns = names.Select(n => new ResultsColumn(n, fixedKinds.TryGetValue(n, out var k) ? k : KindOf(rows.Select(r => r.GetValueOrDefault(n))))).ToArray();
        var normalised = rows.Select(r => (IReadOnlyDictionary<string, object?>)columns.ToDictionary(c => c.Name, c => Coerce(r.GetValueOrDefault(c.Name), c.Kind))).ToArray();
        return new StudyResults(columns, normalised);
    }

    /// <summary>"String Transformation" → "string_transformation".</summary>
    public static string Slug(string s)
    {
        var sb = new StringBuilder();
        foreach (var c in s.ToLowerInvariant())
            sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        var slug = sb.ToString();
        while (slug.Contains("__", StringComparison.Ordinal)) slug = slug.Replace("__", "_", StringComparison.Ordinal);
        return slug.Trim('_');
    }

    private static object? Cell(JsonNode? n)
    {
        if (n is not JsonValue v) return n?.ToJsonString();
        return v.GetValueKind() switch
        {
            System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
            System.Text.Json.JsonValueKind.True => true,
            System.Text.Json.JsonValueKind.False => false,
            System.Text.Json.JsonValueKind.Number => Number(v.ToJsonString()),
            _ => null,
        };
    }

    /// <summary>Integers written without a fraction or exponent stay integers; everything else is a double.</summary>
    private static object Number(string raw) =>
        raw.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? (object)l
            : (object)double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static ColumnKind KindOf(IEnumerable<object?> values)
    {
        var present = values.Where(v => v is not null).ToArray();
        if (present.Length == 0) return ColumnKind.String;
        if (present.All(v => v is bool)) return ColumnKind.Boolean;
        if (present.All(v => v is long)) return ColumnKind.Integer;
        if (present.All(v => v is long or double)) return ColumnKind.Number;
        return ColumnKind.String;
    }

    private static object? Coerce(object? v, ColumnKind kind) => v is null ? null : kind switch
    {
        ColumnKind.Number when v is long or double => Convert.ToDouble(v, CultureInfo.InvariantCulture),
        ColumnKind.Integer when v is double d && d == Math.Floor(d) && Math.Abs(d) < 9e15 => (long)d,
        ColumnKind.Integer or ColumnKind.Number or ColumnKind.Boolean when v is not (long or double or bool) => null,   // a value of another type: no cell rather than a wrong one
        ColumnKind.String when v is not string => Text(v),
        _ => v,
    };

    private static string Text(object? v) => v switch
    {
        null => "",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>Writes CSV (RFC 4180 quoting; empty cell for null).</summary>
    public void WriteCsv(TextWriter w)
    {
        static string Quote(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
        w.Write(string.Join(',', Columns.Select(c => Quote(c.Name))) + "\n");
        foreach (var r in Rows) w.Write(string.Join(',', Columns.Select(c => Quote(Text(r[c.Name])))) + "\n");
    }

    /// <summary>Writes one JSON object per row.</summary>
    public void WriteJsonl(TextWriter w)
    {
        foreach (var r in Rows)
        {
            var o = new JsonObject();
            foreach (var c in Columns)
                o[c.Name] = r[c.Name] switch
                {
                    null => null,
                    string s => JsonValue.Create(s),
                    long l => JsonValue.Create(l),
                    double d => double.IsFinite(d) ? JsonValue.Create(d) : null,
                    bool b => JsonValue.Create(b),
                    var x => JsonValue.Create(Text(x)),
                };
            w.Write(o.ToJsonString() + "\n");
        }
    }

    /// <summary>Writes a Parquet file (nullable columns: string, int64, double, boolean).</summary>
    public async Task WriteParquetAsync(Stream stream)
    {
        var fields = Columns.Select(c => c.Kind switch
        {
            ColumnKind.Integer => (DataField)new DataField<long?>(c.Name),
            ColumnKind.Number => new DataField<double?>(c.Name),
            ColumnKind.Boolean => new DataField<bool?>(c.Name),
            _ => new DataField<string>(c.Name, nullable: true),
        }).ToArray();
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream);
        using var group = writer.CreateRowGroup();
        for (int i = 0; i < Columns.Count; i++)
        {
            var name = Columns[i].Name;
            switch (Columns[i].Kind)
            {
                case ColumnKind.Integer:
                    await group.WriteAsync(fields[i], new ReadOnlyMemory<long?>(Rows.Select(r => (long?)r[name]).ToArray()));
                    break;
                case ColumnKind.Number:
                    await group.WriteAsync(fields[i], new ReadOnlyMemory<double?>(Rows.Select(r => (double?)r[name]).ToArray()));
                    break;
                case ColumnKind.Boolean:
                    await group.WriteAsync(fields[i], new ReadOnlyMemory<bool?>(Rows.Select(r => (bool?)r[name]).ToArray()));
                    break;
                default:
                    await group.WriteAsync(fields[i], Rows.Select(r => (string?)r[name]).ToArray()!);
                    break;
            }
        }
    }

    /// <summary>Writes <paramref name="format"/> to <paramref name="path"/> atomically.</summary>
    public void Save(ResultsFormat format, string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
                Write(format, fs);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes <paramref name="format"/> to a stream.</summary>
    public void Write(ResultsFormat format, Stream stream)
    {
        if (format == ResultsFormat.Parquet)
        {
            WriteParquetAsync(stream).GetAwaiter().GetResult();
            return;
        }
        using var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
        if (format == ResultsFormat.Csv) WriteCsv(w);
        else WriteJsonl(w);
    }
}
