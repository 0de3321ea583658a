using System.Globalization;
using PeftLab.Configuration;

namespace PeftLab.Studies.Report;

/// <summary>
/// Thresholds of the finding checks (study.yaml <c>finding_thresholds</c>). Scores are ROUGE-L points (0-100). Each
/// threshold is tested against the 95 % interval of the difference it bounds, not the point difference (see <see cref="Findings"/>).
/// <see cref="Keys"/> documents every key with its default.
/// </summary>
public sealed record FindingThresholds
{
    /// <summary><c>close_to_full_points</c>: a method is close to full finetuning when at most this many points below it.</summary>
    public double CloseToFullPoints { get; init; } = 2.0;
    /// <summary><c>close_to_full</c>: when set, close means at least this fraction of full finetuning's score (replaces the points rule).</summary>
    public double? CloseToFullRatio { get; init; }
    /// <summary><c>lr_sensitivity_points</c>: the learning rate matters when scores across learning rates span at least this much.</summary>
    public double LrSensitivityPoints { get; init; } = 2.0;
    /// <summary><c>capacity_tolerance_points</c>: the largest rank/size counts as best when within this of the best size.</summary>
    public double CapacityTolerancePoints { get; init; } = 0.5;
    /// <summary><c>task_gain_points</c>: more tasks help when the most tasks beat the fewest by at least this much.</summary>
    public double TaskGainPoints { get; init; } = 1.0;
    /// <summary><c>instability_share</c> (alias <c>unstable_lr_fraction</c>): share of diverged or spiking runs that counts as unstable.</summary>
    public double InstabilityShare { get; init; } = 0.2;
    /// <summary><c>seed_std_ratio</c>: off-best settings are unstable when their seed std exceeds this × the best setting's.</summary>
    public double SeedStdRatio { get; init; } = 1.5;
    /// <summary><c>spike_min_count</c>: a run with at least this many loss spikes counts as spiking.</summary>
    public int SpikeMinCount { get; init; } = 1;
    /// <summary><c>memorization_margin_points</c>: LoRA memorises less when its held-out minus test gap is this much below full finetuning's.</summary>
    public double MemorizationMarginPoints { get; init; } = 0.5;
    /// <summary><c>hard_category_gap_points</c>: a method falls short on hard categories when at least this many points below full finetuning.</summary>
    public double HardCategoryGapPoints { get; init; } = 1.0;

    /// <summary>
    /// <c>floor_points</c>: when full finetuning's gain over the untuned base on the hard groups (or hard categories)
    /// reaches at most this (the upper end of its interval; without a baseline, its hard score itself), the benchmarks
    /// are beyond the model and finding (f) is inconclusive rather than decided on a floor.
    /// </summary>
    public double FloorPoints { get; init; } = 1.0;

    /// <summary><c>answer_tolerance_points</c>: the report's recommendation considers the methods whose best score is within this of the top method's.</summary>
    public double AnswerTolerancePoints { get; init; } = 2.0;

    /// <summary>Floor of the best setting's seed std in the <see cref="SeedStdRatio"/> rule, so two identical seeds do not make any spread "unstable".</summary>
    public const double SeedStdFloor = 0.1;

    /// <summary>Category names containing one of these (case-insensitive) are the harder ones of finding (f).</summary>
    public static readonly IReadOnlyList<string> HardCategoryKeywords = ["reason", "long", "generation"];

    /// <summary>
    /// The open-instruction capability groups of finding (f): complex reasoning, coding and long-form generation, where
    /// the reference study saw LoRA and adapters fall short of full finetuning. When a study has them, (f) is judged on
    /// these instead of the SuperNI categories.
    /// </summary>
    public static readonly IReadOnlyList<Training.CapabilityGroup> HardGroups = [Training.CapabilityGroup.Reasoning, Training.CapabilityGroup.Coding, Training.CapabilityGroup.LongForm];

    /// <summary>Every key: name, default, meaning.</summary>
    public static readonly IReadOnlyList<(string Key, string Default, string Meaning)> Keys =
    [
        ("close_to_full_points", "2.0", "max ROUGE-L points below full finetuning that still count as close"),
        ("close_to_full", "unset", "if set: close means >= this fraction of full finetuning's score (replaces close_to_full_points)"),
        ("lr_sensitivity_points", "2.0", "min score span across learning rates for 'the learning rate matters'"),
        ("capacity_tolerance_points", "0.5", "the largest rank/size counts as best when within this of the best one"),
        ("task_gain_points", "1.0", "min gain from the fewest to the most training tasks for 'more tasks are better'"),
        ("instability_share", "0.2", "share of diverged or spiking runs that counts as unstable (alias: unstable_lr_fraction)"),
        ("seed_std_ratio", "1.5", "off-best seed std above this x the best setting's counts as unstable"),
        ("spike_min_count", "1", "loss spikes that make a run 'spiking'"),
        ("memorization_margin_points", "0.5", "LoRA's held-out minus test gap must be this much below full finetuning's"),
        ("hard_category_gap_points", "1.0", "points below full finetuning on hard categories that count as falling short"),
        ("floor_points", "1.0", "finding (f) is inconclusive when full finetuning's gain over the untuned base on the hard score is at most this (upper end of its interval): a floor, the benchmarks are beyond the model"),
        ("answer_tolerance_points", "2.0", "the recommendation picks, among methods within this many points of the top method (overlapping intervals), the most parameter-efficient"),
    ];

    /// <summary>Binds a key → value map; unknown keys and bad values are errors naming the key and <paramref name="source"/>.</summary>
    public static FindingThresholds FromMap(IReadOnlyDictionary<string, double> map, string source = "finding_thresholds")
    {
        var t = new FindingThresholds();
        foreach (var (key, value) in map)
        {
            if (!double.IsFinite(value) || value < 0) throw new FormatException($"{source}: {key} must be a non-negative number, got {value}");
            t = key switch
            {
                "close_to_full_points" => t with { CloseToFullPoints = value },
                "close_to_full" => value is > 0 and <= 1.5 ? t with { CloseToFullRatio = value }
                    : throw new FormatException($"{source}: close_to_full is a fraction of full finetuning's score (e.g. 0.95), got {value}"),
                "lr_sensitivity_points" => t with { LrSensitivityPoints = value },
                "capacity_tolerance_points" => t with { CapacityTolerancePoints = value },
                "task_gain_points" => t with { TaskGainPoints = value },
                "floor_points" => t with { FloorPoints = value },
                "instability_share" or "unstable_lr_fraction" => value <= 1 ? t with { InstabilityShare = value }
                    : throw new FormatException($"{source}: {key} is a share between 0 and 1, got {value}"),
                "seed_std_ratio" => t with { SeedStdRatio = value },
                "spike_min_count" => value == Math.Floor(value) && value >= 1 ? t with { SpikeMinCount = (int)value }
                    : throw new FormatException($"{source}: spike_min_count must be a whole number >= 1, got {value}"),
                "memorization_margin_points" => t with { MemorizationMarginPoints = value },
                "hard_category_gap_points" => t with { HardCategoryGapPoints = value },
                "answer_tolerance_points" => t with { AnswerTolerancePoints = value },
                _ => throw new FormatException($"{source}: unknown finding threshold '{key}'; known: {string.Join(", ", Keys.Select(k => k.Key))}, unstable_lr_fraction"),
            };
        }
        return t;
    }

    /// <summary>The values in effect, for the report.</summary>
    public IReadOnlyList<(string Key, string Value, string Meaning)> Describe() => Keys.Select(k => (k.Key, k.Key switch
    {
        "close_to_full_points" => Fmt.Num(CloseToFullPoints),
        "close_to_full" => CloseToFullRatio is double r ? Fmt.Num(r) : "unset",
        "lr_sensitivity_points" => Fmt.Num(LrSensitivityPoints),
        "capacity_tolerance_points" => Fmt.Num(CapacityTolerancePoints),
        "task_gain_points" => Fmt.Num(TaskGainPoints),
        "instability_share" => Fmt.Num(InstabilityShare),
        "seed_std_ratio" => Fmt.Num(SeedStdRatio),
        "spike_min_count" => SpikeMinCount.ToString(CultureInfo.InvariantCulture),
        "memorization_margin_points" => Fmt.Num(MemorizationMarginPoints),
        "hard_category_gap_points" => Fmt.Num(HardCategoryGapPoints),
        "answer_tolerance_points" => Fmt.Num(AnswerTolerancePoints),
        _ => "?",
    }, k.Meaning)).ToArray();
}

/// <summary>What the report reads from the study's <c>study.yaml</c>: its name, the analyses to show and the finding thresholds.</summary>
/// <param name="Name">Study name, or null when not given.</param>
/// <param name="Analyses">Analysis ids in the order to show; empty means all.</param>
/// <param name="Thresholds">Finding thresholds (defaults for keys not given).</param>
public sealed record StudyReportSpec(string? Name, IReadOnlyList<string> Analyses, FindingThresholds Thresholds)
{
    /// <summary>No study.yaml: every analysis, default thresholds.</summary>
    public static StudyReportSpec Default { get; } = new(null, [], new FindingThresholds());

    /// <summary>Reads <paramref name="path"/> if it exists (other keys of the study spec are ignored), else <see cref="Default"/>.</summary>
    /// <exception cref="ConfigException">Invalid YAML, or a bad <c>name</c>, <c>analyses</c> or <c>finding_thresholds</c> (the error names file and line).</exception>
    public static StudyReportSpec Load(string path)
    {
        if (!File.Exists(path)) return Default;
        var root = ConfigNode.Load(path);
        if (root is not ConfigMapping map) throw Error("", "the study spec must be a mapping", root.Position);
        string? name = map["name"] switch
        {
            null => null,
            ConfigScalar s => s.Value,
            var other => throw Error("name", $"expected a text, got {other.Describe()}", other.Position),
        };
        var analyses = new List<string>();
        switch (map["analyses"])
        {
            case null:
            case ConfigScalar { IsNull: true }:
                break;
            case ConfigScalar s:
                analyses.Add(CheckAnalysis(s));
                break;
            case ConfigSequence seq:
                foreach (var item in seq.Items)
                    analyses.Add(item is ConfigScalar { Value: not null } sc ? CheckAnalysis(sc) : throw Error("analyses", $"expected analysis names, got {item.Describe()}", item.Position));
                break;
            case var other:
                throw Error("analyses", $"expected a list of analysis names, got {other.Describe()}", other.Position);
        }
        var thresholds = new Dictionary<string, double>(StringComparer.Ordinal);
        var thresholdsNode = map["finding_thresholds"];
        if (thresholdsNode is ConfigMapping tm)
        {
            foreach (var e in tm.Entries)
            {
                if (e.Value is not ConfigScalar { Value: not null } v || !double.TryParse(v.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                    throw Error($"finding_thresholds.{e.Key}", $"expected a number, got {e.Value.Describe()}", e.Value.Position);
                thresholds[e.Key] = d;
            }
        }
        else if (thresholdsNode is not null and not ConfigScalar { IsNull: true })
            throw Error("finding_thresholds", $"expected a mapping of threshold → number, got {thresholdsNode.Describe()}", thresholdsNode.Position);
        try
        {
            return new StudyReportSpec(name, analyses, FindingThresholds.FromMap(thresholds));
        }
        catch (FormatException e)
        {
            throw Error("finding_thresholds", e.Message, thresholdsNode?.Position);
        }
    }

    private static string CheckAnalysis(ConfigScalar s) =>
        Report.Analyses.Ids.Contains(s.Value!) ? s.Value!
            : throw Error("analyses", $"unknown analysis '{s.Value}'; known: {string.Join(", ", Report.Analyses.Ids)}", s.Position);

    private static ConfigException Error(string key, string message, SourcePosition? at) => new([new ConfigError(key, message, at)]);
}
