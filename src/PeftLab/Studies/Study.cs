using System.Text.RegularExpressions;
using PeftLab.Configuration;

namespace PeftLab.Studies;

/// <summary>
/// A loaded, validated study: spec, resolved base config, expanded trials and the study folder. Every problem is
/// reported (as <see cref="ConfigException"/>, by key path and file line) before anything is trained or written.
/// </summary>
public sealed partial class Study
{
    private static readonly Regex NamePattern = new("^[A-Za-z0-9._-]+$", RegexOptions.Compiled);

    private Study(StudySpec spec, string source, IReadOnlyList<string> overrides, string outputDir, ConfigMapping resolved, IReadOnlyList<string> axisNames, IReadOnlyList<Trial> trials, string? syntheticData)
    {
        Overrides = overrides;
        Spec = spec;
        Source = source;
        OutputDir = outputDir;
        Resolved = resolved;
        AxisNames = axisNames;
        Trials = trials;
        SyntheticDataPath = syntheticData;
        Store = new StudyStore(outputDir);
    }

    /// <summary>The bound spec (overrides applied).</summary>
    public StudySpec Spec { get; }
    /// <summary>The YAML file it was loaded from.</summary>
    public string Source { get; }
    /// <summary>The <c>key=value</c> overrides it was loaded with.</summary>
    public IReadOnlyList<string> Overrides { get; }
    /// <summary>Absolute study folder.</summary>
    public string OutputDir { get; }
    /// <summary>The study as written to the study folder's study.yaml: overrides applied, base config inlined, output absolute.</summary>
    public ConfigMapping Resolved { get; }
    /// <summary>Axis names present, in trial order.</summary>
    public IReadOnlyList<string> AxisNames { get; }
    /// <summary>The trials, in index order.</summary>
    public IReadOnlyList<Trial> Trials { get; }
    /// <summary>The materialised synthetic suite, when the study uses it.</summary>
    public string? SyntheticDataPath { get; }
    /// <summary>The study folder.</summary>
    public StudyStore Store { get; }

    /// <summary>
    /// Loads the study again from the same file and overrides: in a two-stage study (<see cref="StudySpec.Confirm"/>)
    /// the confirmation trials appear once the first stage's results are in the study folder.
    /// </summary>
    public Study Reload() => Load(Source, Overrides);

    /// <summary>The first-stage trials still to be decided before the confirmation stage can be planned (0 when it has been, or there is none).</summary>
    public int AwaitingConfirmation { get; private init; }

    /// <summary>The plan entries of <see cref="Trials"/>.</summary>
    public IReadOnlyList<PlanEntry> Plan => Trials.Select(t => t.Entry).ToArray();

    /// <summary>
    /// Loads a study file. Overrides are <c>key=value</c>: <c>base.KEY=V</c> sets a base training key; a study key
    /// (<c>output=</c>, <c>axes.lr=[...]</c>, <c>executor.workers=4</c>) sets it; an axis name (<c>model=PATH</c>,
    /// <c>seed=[1,2]</c>) replaces that axis; any other key is a base training key (<c>data.path=...</c>).
    /// </summary>
    /// <exception cref="ConfigException">Every problem of the spec, or the first trial whose config does not bind.</exception>
    public static Study Load(string path, IEnumerable<string>? overrides = null)
    {
        var overrideList = (overrides ?? []).ToArray();
        overrides = overrideList;
        StudyBinding.Register();
        var node = ConfigNode.Load(path);
        if (node is not ConfigMapping root)
            throw new ConfigException([new ConfigError("", $"a study file must be a mapping, got {node.Describe()}", node.Position)]);
        var (studyOverrides, baseOverrides) = SplitOverrides(overrides ?? []);
        root = (ConfigMapping)ConfigOverrides.Apply(root, studyOverrides);
        var spec = BindSpec(root);

        var errors = new List<ConfigError>();
        var baseNode = ResolveBase(spec, root, path, errors);
        if (errors.Count == 0) baseNode = ConfigOverrides.Apply(baseNode, baseOverrides);
        ValidateSpec(spec, root, baseNode as ConfigMapping, errors);
        var resolvedBase = baseNode;
        string? synthetic = null;
        if (errors.Count == 0 && spec.SyntheticSuite is { } suite)
        {
            if (NodeAt(baseNode, "data.path") is ConfigScalar { IsNull: false } given)
                errors.Add(new ConfigError("synthetic_suite", $"the study trains on the synthetic suite but base data.path is also set ('{given.Value}', {given.Position.Brief}); remove one (override with synthetic_suite=null to use data.path)", At(root, "synthetic_suite")));
            else if (!suite.Options.KeepsTestTasks)
                errors.Add(new ConfigError("synthetic_suite.categories", $"[{string.Join(", ", suite.Categories.Select(c => ConfigEnums.Name(c)))}] keep no test task whose primitives all occur in the kept train tasks, so nothing would measure unseen tasks; add categories (e.g. list_operations, which trains most list primitives)", At(root, "synthetic_suite.categories") ?? At(root, "synthetic_suite")));
            else
            {
                synthetic = SyntheticData.Ensure(suite);
                baseNode = ConfigTree.Set(baseNode, "data.path", new ConfigScalar(synthetic, true, At(root, "synthetic_suite") ?? SourcePosition.CommandLine));
                baseNode = ConfigTree.Set(baseNode, "data.kind", new ConfigScalar("superni", false, At(root, "synthetic_suite") ?? SourcePosition.CommandLine));
            }
        }
        if (errors.Count == 0 && spec.SyntheticHarness is { } harness)
        {
            if (NodeAt(baseNode, "eval.open_instruction") is { } given and not ConfigScalar { IsNull: true })
                errors.Add(new ConfigError("synthetic_harness", $"the study scores the synthetic open-instruction stand-ins but base eval.open_instruction is also set ({given.Position.Brief}); remove one", At(root, "synthetic_harness")));
            else
            {
                var (dir, tasks) = SyntheticData.EnsureHarness(harness);
                if (harness.MixturePerTask > 0)
                {
                    if (spec.SyntheticSuite is not null)
                        errors.Add(new ConfigError("synthetic_harness.mixture_per_task", "trains on the stand-ins' mixture, so synthetic_suite cannot also give the training data; remove one (synthetic_suite=null)", At(root, "synthetic_harness")));
                    else if (NodeAt(baseNode, "data.path") is ConfigScalar { IsNull: false } dataPath)
                        errors.Add(new ConfigError("synthetic_harness.mixture_per_task", $"trains on the stand-ins' mixture but base data.path is also set ('{dataPath.Value}', {dataPath.Position.Brief}); remove one", At(root, "synthetic_harness")));
                    var at = At(root, "synthetic_harness") ?? SourcePosition.CommandLine;
                    baseNode = ConfigTree.Set(baseNode, "data.kind", new ConfigScalar("chat", false, at));
                    baseNode = ConfigTree.Set(baseNode, "data.path", new ConfigScalar(Path.Combine(dir, Synthetic.HarnessSuite.MixtureFile), true, at));
                    baseNode = ConfigTree.Set(baseNode, "data.chat_template", new ConfigScalar("tulu", false, at));
                }
                var yaml = $"judge: {System.Text.Json.JsonSerializer.Serialize(harness.Judge)}\napply_chat_template: {(harness.MixturePerTask > 0 ? "true" : "false")}\ntasks:\n" + string.Concat(tasks.Select(t =>
                    $"  - task: {System.Text.Json.JsonSerializer.Serialize(Path.Combine(dir, t.Name + ".yaml"))}\n    group: {ConfigEnums.Name(t.Group)}\n"));
                baseNode = ConfigTree.Set(baseNode, "eval.open_instruction", ConfigNode.Parse(yaml, "synthetic_harness"));
            }
        }
        if (errors.Count > 0) throw new ConfigException(errors);

        var output = Path.GetFullPath(spec.Output);
        var axisNames = AxisOrder(spec);
        var trials = Expand(spec, root, (ConfigMapping)baseNode, output, synthetic);
        int awaiting = 0;
        if (spec.Confirm is { Seeds.Count: > 0 } confirm)
            (trials, awaiting) = AddConfirmTrials(spec, confirm, trials, new StudyStore(output), synthetic);
        // study.yaml keeps the base before the synthetic suite's data path: the suite is re-materialised on load
        var resolved = ConfigTree.Without(root, "base_config");
        resolved = resolved.With("base", resolvedBase, resolved.Find("base")?.KeyPosition ?? root.Position)
            .With("output", new ConfigScalar(output, true, At(root, "output") ?? root.Position), resolved.Find("output")?.KeyPosition ?? root.Position);
        return new Study(spec with { Output = output }, path, overrideList, output, resolved, axisNames, trials, synthetic) { AwaitingConfirmation = awaiting };
    }

    /// <summary>
    /// Binds only the spec (study keys and overrides; no base config, no expansion, no file checks): for readers of a
    /// finished study, e.g. its analyses and thresholds or its output folder, on a machine without its data.
    /// </summary>
    /// <exception cref="ConfigException">The file is missing, not a mapping, or does not bind.</exception>
    public static StudySpec ReadSpec(string path, IEnumerable<string>? overrides = null)
    {
        StudyBinding.Register();
        var node = ConfigNode.Load(path);
        if (node is not ConfigMapping root)
            throw new ConfigException([new ConfigError("", $"a study file must be a mapping, got {node.Describe()}", node.Position)]);
        var (studyOverrides, _) = SplitOverrides(overrides ?? []);
        return BindSpec((ConfigMapping)ConfigOverrides.Apply(root, studyOverrides));
    }

    /// <summary>The resolved study as YAML (what study.yaml in the study folder holds).</summary>
    public string ResolvedYaml() => ConfigWriter.ToYaml(Resolved);

    /// <summary>The trial with index <paramref name="index"/>, with an error naming the valid range.</summary>
    public Trial TrialAt(int index) => index >= 0 && index < Trials.Count ? Trials[index]
        : throw new ArgumentException($"--index {index} is out of range: study '{Spec.Name}' has {Trials.Count} trials (0-{Trials.Count - 1})");
}
