using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>The axis names of a study spec.</summary>
public static class StudyAxisNames
{
    /// <summary>Method axis.</summary>
    public const string Method = "method";
    /// <summary>Learning-rate axis.</summary>
    public const string Lr = "lr";
    /// <summary>Base model axis.</summary>
    public const string Model = "model";
    /// <summary>Task count axis.</summary>
    public const string TaskCount = "task_count";
    /// <summary>Seed axis.</summary>
    public const string Seed = "seed";
    /// <summary>The key holding generic axes.</summary>
    public const string Overrides = "overrides";
    /// <summary>Method-axis value of the untuned-baseline trials (the base model evaluated with zero training steps).</summary>
    public const string Untuned = "untuned";

    /// <summary>Knob axis → (the method it applies to, the training key it sets): each registered method's capacity knob, in registry order.</summary>
    public static IReadOnlyDictionary<string, (string Method, string Key)> Knobs { get; } =
        PeftRegistry.CapacityKnobs.ToDictionary(k => k.Knob.Axis, k => (k.Method.Name, k.Knob.ConfigKey));

    /// <summary>The knob axis names (lora_r, adapter_size, ...), in registry order.</summary>
    public static IReadOnlyList<string> KnobAxes { get; } = PeftRegistry.CapacityKnobs.Select(k => k.Knob.Axis).ToArray();

    /// <summary>Typed axes in the order trials list them: the method, its knob, then the shared axes (generic axes follow in the order written).</summary>
    public static IReadOnlyList<string> Ordered { get; } = [Method, .. KnobAxes, Lr, Model, TaskCount, Seed];
}

/// <summary>One axis value of a trial (JSON scalar; null for <c>task_count</c> "all").</summary>
/// <param name="Name">Axis name (a typed axis, or a training key path for generic axes).</param>
/// <param name="Value">The value; never attached to a JSON parent (clone before adding).</param>
public sealed record AxisSetting(string Name, JsonNode? Value)
{
    /// <summary>Short text for tables ("all" for a null task count).</summary>
    public string Display => Value switch
    {
        null => Name == StudyAxisNames.TaskCount ? "all" : "null",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<double>(out var d) => d.ToString("G6", CultureInfo.InvariantCulture),
        _ => Value.ToJsonString(),
    };
}

/// <summary>A trial as listed in plan.json: its index, id and axis values.</summary>
public sealed record PlanEntry(int Index, string Id, IReadOnlyList<AxisSetting> Axes)
{
    /// <summary>The axes as a fresh JSON object (plan.json, trial.json).</summary>
    public JsonObject AxesJson()
    {
        var o = new JsonObject();
        foreach (var a in Axes) o[a.Name] = a.Value?.DeepClone();
        return o;
    }

    /// <summary>"method=lora lora_r=8 lr=0.0001".</summary>
    public string Describe() => string.Join(" ", Axes.Select(a => $"{a.Name}={a.Display}"));

    /// <summary>An axis value, or null when the trial has no such axis.</summary>
    public AxisSetting? Axis(string name) => Axes.FirstOrDefault(a => a.Name == name);
}

/// <summary>An expanded trial: its plan entry and resolved training config (whose output is the trial folder).</summary>
public sealed record Trial(PlanEntry Entry, TrainConfig Config)
{
    /// <summary>Index in the plan.</summary>
    public int Index => Entry.Index;
    /// <summary>Id (first 12 hex digits of the SHA-256 of the config YAML with output blanked).</summary>
    public string Id => Entry.Id;
}

/// <summary>
/// A loaded, validated study: spec, resolved base config, expanded trials and the study folder. Every problem is
/// reported (as <see cref="ConfigException"/>, by key path and file line) before anything is trained or written.
/// </summary>
public sealed class Study
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
            else
            {
                synthetic = SyntheticData.Ensure(suite);
                baseNode = ConfigTree.Set(baseNode, "data.path", new ConfigScalar(synthetic, true, At(root, "synthetic_suite") ?? SourcePosition.CommandLine));
                baseNode = ConfigTree.Set(baseNode, "data.kind", new ConfigScalar("superni", false, At(root, "synthetic_suite") ?? SourcePosition.CommandLine));
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

    // --- overrides -----------------------------------------------------------------------------------

    private static readonly HashSet<string> StudyKeys = ConfigSchema.PropsOf(typeof(StudySpec)).Select(p => p.Key).ToHashSet();
    private static readonly HashSet<string> AxisKeys = ConfigSchema.KeysOf(typeof(StudyAxes)).ToHashSet();

    /// <summary>Routes each override to the study spec or to the base training config.</summary>
    internal static (List<string> Study, List<string> Base) SplitOverrides(IEnumerable<string> overrides)
    {
        var study = new List<string>();
        var baseList = new List<string>();
        foreach (var o in overrides)
        {
            int eq = o.IndexOf('=');
            if (eq < 0) throw new ConfigException([new ConfigError("", $"override '{o}' must look like key.path=value", SourcePosition.CommandLine)]);
            var key = o[..eq].Trim();
            var first = key.Split('.')[0];
            if (first == "base" && key.Length > 5) baseList.Add(o.TrimStart()[5..]);
            else if (StudyKeys.Contains(first)) study.Add(o);
            else if (AxisKeys.Contains(key)) study.Add("axes." + o.TrimStart());
            else baseList.Add(o);
        }
        return (study, baseList);
    }

    // --- binding and validation ----------------------------------------------------------------------

    private static StudySpec BindSpec(ConfigMapping root)
    {
        try
        {
            return ConfigBinder.Bind<StudySpec>(root);
        }
        catch (ConfigException e)
        {
            // the binder says "unknown key"; under axes that is an unknown axis
            throw new ConfigException(e.Errors.Select(x => x.Path.StartsWith("axes.", StringComparison.Ordinal) && x.Path.Count(c => c == '.') == 1
                    && x.Message.StartsWith("unknown key", StringComparison.Ordinal)
                ? x with { Message = UnknownAxis(x.Path["axes.".Length..]) }
                : x).ToArray());
        }
    }

    private static string UnknownAxis(string given)
    {
        var hint = ConfigSchema.DidYouMean(given, AxisKeys);
        if (hint.Length == 0 && AxisKeys.FirstOrDefault(k => given.StartsWith(k, StringComparison.Ordinal) || k.StartsWith(given, StringComparison.Ordinal)) is { } prefix)
            hint = $" (did you mean '{prefix}'?)";
        return $"unknown axis{hint}; known axes: {string.Join(", ", ConfigSchema.KeysOf(typeof(StudyAxes)))} (overrides: {{key.path: [values]}} varies any training key)";
    }

    private static ConfigNode ResolveBase(StudySpec spec, ConfigMapping root, string studyPath, List<ConfigError> errors)
    {
        ConfigNode node = new ConfigMapping([], At(root, "base") ?? root.Position);
        if (spec.BaseConfig is { } file)
        {
            var full = Path.IsPathRooted(file) ? file : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(studyPath))!, file);
            if (!File.Exists(full))
            {
                errors.Add(new ConfigError("base_config", $"file '{full}' does not exist", At(root, "base_config")));
                return node;
            }
            node = ConfigNode.Load(full);
            if (node is ConfigScalar { IsNull: true }) node = new ConfigMapping([], node.Position);
            if (node is not ConfigMapping)
            {
                errors.Add(new ConfigError("base_config", $"'{full}' must hold a mapping (a training config), got {node.Describe()}", At(root, "base_config")));
                return node;
            }
        }
        if (spec.Base is { } inline)
        {
            if (inline is ConfigMapping m) node = ConfigTree.Merge((ConfigMapping)node, m);
            else if (inline is not ConfigScalar { IsNull: true })
                errors.Add(new ConfigError("base", $"expected a mapping in the training config's schema (as for peftlab train), got {inline.Describe()}", inline.Position));
        }
        return node;
    }

    private static void ValidateSpec(StudySpec spec, ConfigMapping root, ConfigMapping? baseNode, List<ConfigError> errors)
    {
        void Error(string path, string message) => errors.Add(new ConfigError(path, message, At(root, path)));
        if (string.IsNullOrWhiteSpace(spec.Name)) Error("name", "required: a name for the study (letters, digits, '.', '_', '-')");
        else if (!NamePattern.IsMatch(spec.Name)) Error("name", $"'{spec.Name}' may contain only letters, digits, '.', '_' and '-'");
        if (string.IsNullOrWhiteSpace(spec.Output)) Error("output", "required: the study folder (e.g. runs/my-study)");
        else if (OutputProblem(spec.Output) is { } problem) Error("output", problem);

        var a = spec.Axes;
        CheckAxis(errors, root, StudyAxisNames.Method, a.Method?.Select(m => (object?)m).ToList(), v => CanonicalMethod((string)v!) ?? (string)v!);
        if (a.Method is not null)
            for (int i = 0; i < a.Method.Count; i++)
                if (CanonicalMethod(a.Method[i]) is null)
                    errors.Add(new ConfigError($"axes.method.{i}", $"unknown method '{a.Method[i]}'{ConfigSchema.DidYouMean(a.Method[i], PeftRegistry.ConfigTypes.Keys)}; known: {string.Join(", ", PeftRegistry.ConfigTypes.Keys)}", At(root, "axes.method", i)));
        CheckAxis(errors, root, StudyAxisNames.Lr, a.Lr?.Select(v => (object?)v).ToList(), v => v);
        foreach (var axis in StudyAxisNames.KnobAxes)
            CheckAxis(errors, root, axis, KnobValues(a, axis)?.Select(v => (object?)v).ToList(), v => v);
        CheckAxis(errors, root, StudyAxisNames.Model, a.Model?.Select(v => (object?)v).ToList(), v => v);
        CheckAxis(errors, root, StudyAxisNames.TaskCount, a.TaskCount?.Select(v => (object?)v).ToList(), v => v ?? "all");
        CheckAxis(errors, root, StudyAxisNames.Seed, a.Seed?.Select(v => (object?)v).ToList(), v => v);

        // a knob axis needs its method among the trials' methods
        var methods = MethodsOf(spec, baseNode);
        foreach (var (axis, (method, _)) in StudyAxisNames.Knobs)
        {
            if (KnobValues(a, axis) is null || methods.Contains(method)) continue;
            Error($"axes.{axis}", a.Method is null
                ? $"applies only to method {method}, but the study has no method axis and its base method is {methods[0]} (add method: [{method}, ...] or remove {axis})"
                : $"applies only to method {method}, which is not on the method axis ({string.Join(", ", a.Method)})");
        }

        if (a.Overrides is { } generic)
        {
            var typedKeys = new Dictionary<string, string>
            {
                ["method.name"] = StudyAxisNames.Method, ["optim.lr"] = StudyAxisNames.Lr, ["data.task_count"] = StudyAxisNames.TaskCount,
                ["train.seed"] = StudyAxisNames.Seed, ["model.preset"] = StudyAxisNames.Model, ["model.path"] = StudyAxisNames.Model,
            };
            foreach (var (axis, (_, key)) in StudyAxisNames.Knobs) typedKeys.TryAdd(key, axis);
            foreach (var (key, values) in generic)
            {
                var path = $"axes.overrides.{key}";
                if (key.Length == 0 || key.Split('.').Any(s => s.Length == 0)) errors.Add(new ConfigError(path, "must be a training key path such as optim.weight_decay", At(root, "axes.overrides")));
                else if (key is "output" || key.StartsWith("output.", StringComparison.Ordinal)) errors.Add(new ConfigError(path, "the study sets each trial's output folder; this key cannot be an axis", At(root, "axes.overrides")));
                else if (typedKeys.TryGetValue(key, out var typed)) errors.Add(new ConfigError(path, $"use the {typed} axis for {key}", At(root, "axes.overrides")));
                if (values.Count == 0) errors.Add(new ConfigError(path, "empty axis: give at least one value (or remove the axis)", At(root, "axes.overrides")));
                var seen = new Dictionary<string, int>();
                for (int i = 0; i < values.Count; i++)
                {
                    var text = ConfigWriter.ToJson(values[i]);
                    if (seen.TryGetValue(text, out var first))
                        errors.Add(new ConfigError(path, $"duplicate value {text} (items {first} and {i})", values[i].Position));
                    else seen[text] = i;
                }
            }
        }

        foreach (var (method, axes) in spec.MethodAxes)
        {
            var at = $"method_axes.{method}";
            if (CanonicalMethod(method) is not { } canonical || canonical != method)
                Error(at, CanonicalMethod(method) is { } c ? $"write the method as '{c}'"
                    : $"unknown method '{method}'{ConfigSchema.DidYouMean(method, PeftRegistry.ConfigTypes.Keys)}; known: {string.Join(", ", PeftRegistry.ConfigTypes.Keys)}");
            else if (!methods.Contains(method))
                Error(at, $"method {method} is not among the study's methods ({string.Join(", ", methods)})");
            if (axes.Method is not null) Error($"{at}.method", "the method is chosen by the method axis; method_axes gives the other axes per method");
            foreach (var (axis, (owner, _)) in StudyAxisNames.Knobs)
                if (KnobValues(axes, axis) is not null && owner != method)
                    Error($"{at}.{axis}", $"applies only to method {owner}, not to {method}");
            foreach (var (axis, values) in new (string, IReadOnlyList<object?>?)[]
                     {
                         (StudyAxisNames.Lr, axes.Lr?.Select(v => (object?)v).ToList()), (StudyAxisNames.Seed, axes.Seed?.Select(v => (object?)v).ToList()),
                         (StudyAxisNames.TaskCount, axes.TaskCount?.Select(v => (object?)v).ToList()), (StudyAxisNames.Model, axes.Model?.Select(v => (object?)v).ToList()),
                     })
                if (values is { Count: 0 }) Error($"{at}.{axis}", "empty axis: give at least one value (or remove the axis)");
        }
        if (spec.Confirm is { } confirmSpec)
        {
            if (confirmSpec.Seeds.Count == 0) Error("confirm.seeds", "give at least one seed to re-run each method's best setting with (or remove confirm)");
            if (confirmSpec.Seeds.Distinct().Count() != confirmSpec.Seeds.Count) Error("confirm.seeds", "each seed may appear once");
        }

        foreach (var (method, settings) in spec.MethodOverrides)
        {
            if (CanonicalMethod(method) is not { } canonical || canonical != method)
                Error($"method_overrides.{method}", CanonicalMethod(method) is { } c
                    ? $"write the method as '{c}'"
                    : $"unknown method '{method}'{ConfigSchema.DidYouMean(method, PeftRegistry.ConfigTypes.Keys)}; known: {string.Join(", ", PeftRegistry.ConfigTypes.Keys)}");
            foreach (var key in settings.Keys)
                if (key is "method.name" or "method" or "output")
                    errors.Add(new ConfigError($"method_overrides.{method}.{key}", key == "output" ? "the study sets each trial's output folder" : "the method is chosen by the method axis", settings[key].Position));
        }
    }

    private static void CheckAxis(List<ConfigError> errors, ConfigMapping root, string axis, IReadOnlyList<object?>? values, Func<object?, object?> canonical)
    {
        if (values is null) return;
        var path = $"axes.{axis}";
        if (values.Count == 0)
        {
            errors.Add(new ConfigError(path, "empty axis: give at least one value (or remove the axis)", At(root, path)));
            return;
        }
        for (int i = 0; i < values.Count; i++)
            for (int j = 0; j < i; j++)
                if (Equals(canonical(values[i]), canonical(values[j])))
                {
                    errors.Add(new ConfigError(path, $"duplicate value {Show(values[i])} (items {j} and {i}: each value may appear once)", At(root, path, i)));
                    break;
                }
    }

    private static string Show(object? v) => v switch
    {
        null => "null (all)",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        string s => $"'{s}'",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture)!,
    };

    /// <summary>Null when a study folder can be created and written at <paramref name="output"/>, else why not.</summary>
    internal static string? OutputProblem(string output)
    {
        string full;
        try { full = Path.GetFullPath(output); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return $"'{output}' is not a valid path: {e.Message}"; }
        if (File.Exists(full)) return $"'{full}' is a file, not a folder";
        var existing = full;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) return $"cannot create '{full}': '{existing}' is a file";
            var parent = Path.GetDirectoryName(existing);
            if (parent is null) return $"cannot create '{full}': no existing parent folder";
            existing = parent;
        }
        var probe = Path.Combine(existing, $".peftlab-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return existing == full ? $"folder '{full}' is not writable: {e.Message}" : $"cannot create '{full}': '{existing}' is not writable: {e.Message}";
        }
        finally
        {
            try { if (File.Exists(probe)) File.Delete(probe); } catch (IOException) { }
        }
    }

    // --- expansion -----------------------------------------------------------------------------------

    /// <summary>The canonical name of the method called <paramref name="name"/> or one of its aliases (see <see cref="PeftRegistry.Find"/>), or null.</summary>
    public static string? CanonicalMethod(string name) => PeftRegistry.Find(name)?.Name;

    private static IReadOnlyList<string> MethodsOf(StudySpec spec, ConfigMapping? baseNode)
    {
        if (spec.Axes.Method is { Count: > 0 } m) return m.Select(x => CanonicalMethod(x) ?? x).ToArray();
        return [BaseMethod(baseNode)];
    }

    private static string BaseMethod(ConfigMapping? baseNode) =>
        baseNode?["method"] is ConfigMapping mm && mm["name"] is ConfigScalar { IsNull: false } s && CanonicalMethod(s.Value!) is { } c ? c
            : PeftRegistry.NameOf(new TrainConfig().Method.Kind);

    private static IReadOnlyList<int>? KnobValues(StudyAxes a, string axis) => a.Knobs.GetValueOrDefault(axis);

    private static List<string> AxisOrder(StudySpec spec)
    {
        var all = new[] { spec.Axes }.Concat(spec.MethodAxes.Values).ToArray();
        var names = new List<string> { StudyAxisNames.Method };
        foreach (var n in StudyAxisNames.Ordered.Skip(1))
        {
            bool present = all.Any(a => n switch
            {
                StudyAxisNames.Lr => a.Lr is not null,
                StudyAxisNames.Model => a.Model is not null,
                StudyAxisNames.TaskCount => a.TaskCount is not null,
                StudyAxisNames.Seed => a.Seed is not null || spec.Confirm is not null,
                _ => KnobValues(a, n) is not null,
            });
            if (present) names.Add(n);
        }
        foreach (var a in all)
            if (a.Overrides is not null) names.AddRange(a.Overrides.Keys.Where(k => !names.Contains(k)));
        return names;
    }

    /// <summary>The axes of one method's trials: its <see cref="StudySpec.MethodAxes"/> entry over the shared axes.</summary>
    internal static StudyAxes AxesFor(StudySpec spec, string method)
    {
        var a = spec.Axes;
        if (!spec.MethodAxes.TryGetValue(method, out var m)) return a;
        var knobs = new Dictionary<string, IReadOnlyList<int>?>(a.Knobs);
        foreach (var (axis, values) in m.Knobs)
            if (values is not null) knobs[axis] = values;
        return a with
        {
            Lr = m.Lr ?? a.Lr, Knobs = knobs, Model = m.Model ?? a.Model, TaskCount = m.TaskCount ?? a.TaskCount, Seed = m.Seed ?? a.Seed,
            Overrides = m.Overrides ?? a.Overrides,
        };
    }

    /// <summary>One value of a shared axis: its display form and the training keys it sets.</summary>
    private sealed record AxisValue(string Axis, JsonNode? Json, IReadOnlyList<(string Key, ConfigNode Value)> Sets);

    private static ConfigScalar Plain(string? text, SourcePosition at) => new(text, false, at);
    private static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    private static IReadOnlyList<Trial> Expand(StudySpec spec, ConfigMapping root, ConfigMapping baseNode, string output, string? synthetic)
    {
        SourcePosition P(string path, int i) => At(root, path, i) ?? SourcePosition.CommandLine;
        // where an axis of a method was written: its method_axes entry, else the shared axes
        string Where(string method, string axis, Func<StudyAxes, object?> pick) =>
            spec.MethodAxes.TryGetValue(method, out var m) && pick(m) is not null ? $"method_axes.{method}.{axis}" : $"axes.{axis}";

        List<AxisValue> ModelValues(StudyAxes a, string at) => a.Model is not { } models ? [] : models.Select((v, i) => Training.TrainableModels.PresetNames.Contains(v)
            ? new AxisValue(StudyAxisNames.Model, JsonValue.Create(v), [("model.preset", new ConfigScalar(v, true, P(at, i))), ("model.path", Plain(null, P(at, i)))])
            : new AxisValue(StudyAxisNames.Model, JsonValue.Create(v), [("model.path", new ConfigScalar(v, true, P(at, i))), ("model.preset", Plain(null, P(at, i)))])).ToList();

        List<List<AxisValue>> Shared(string method, StudyAxes a)
        {
            var shared = new List<List<AxisValue>>();
            if (a.Lr is { } lr)
            {
                var at = Where(method, StudyAxisNames.Lr, x => x.Lr);
                shared.Add(lr.Select((v, i) => new AxisValue(StudyAxisNames.Lr, JsonValue.Create(v), [("optim.lr", Plain(Num(v), P(at, i)))])).ToList());
            }
            if (a.Model is not null) shared.Add(ModelValues(a, Where(method, StudyAxisNames.Model, x => x.Model)));
            if (a.TaskCount is { } counts)
            {
                var at = Where(method, StudyAxisNames.TaskCount, x => x.TaskCount);
                shared.Add(counts.Select((v, i) => new AxisValue(StudyAxisNames.TaskCount, v is int c ? JsonValue.Create(c) : null,
                    [("data.task_count", Plain(v?.ToString(CultureInfo.InvariantCulture), P(at, i)))])).ToList());
            }
            if (a.Seed is { } seeds)
            {
                var at = Where(method, StudyAxisNames.Seed, x => x.Seed);
                shared.Add(seeds.Select((v, i) => new AxisValue(StudyAxisNames.Seed, JsonValue.Create(v), [("train.seed", Plain(v.ToString(CultureInfo.InvariantCulture), P(at, i)))])).ToList());
            }
            if (a.Overrides is { } generic)
                foreach (var (key, values) in generic)
                    shared.Add(values.Select(v => new AxisValue(key, JsonNode.Parse(ConfigWriter.ToJson(v)), [(key, v)])).ToList());
            return shared;
        }

        var baseMethod = BaseMethod(baseNode);
        var trials = new List<Trial>();
        var byId = new Dictionary<string, Trial>();
        void Add(ConfigMapping node, List<AxisSetting> axes)
        {
            int index = trials.Count;
            TrainConfig cfg;
            try
            {
                cfg = TrainConfigLoader.Bind(node);
            }
            catch (ConfigException e)
            {
                var where = $"trial {index} ({string.Join(" ", axes.Select(x => $"{x.Name}={x.Display}"))})";
                throw new ConfigException(e.Errors.Select(x => x with
                {
                    Message = $"{x.Message} [in {where}; every trial's training config must bind]",
                }).ToArray());
            }
            var id = TrialId(cfg, synthetic is null ? null : (spec.SyntheticSuite!, synthetic));
            var entry = new PlanEntry(index, id, axes);
            var trial = new Trial(entry, cfg with { Output = Path.Combine(output, StudyStore.TrialsFolder, id) });
            if (byId.TryGetValue(id, out var twin))
                throw new ConfigException([new ConfigError("axes", $"trials {twin.Index} ({twin.Entry.Describe()}) and {index} ({entry.Describe()}) resolve to the same training config (id {id}); remove the value that has no effect", At(root, "axes"))]);
            byId[id] = trial;
            trials.Add(trial);
        }

        // count first, from the axis lengths alone (saturating), so a grid too large to plan is refused before expanding
        // the knob axis of a method (lora_r for lora, ...) when the study varies it, and its shared axes, built once
        KeyValuePair<string, (string Method, string Key)> KnobOf(string method, StudyAxes a) =>
            StudyAxisNames.Knobs.FirstOrDefault(k => k.Value.Method == method && KnobValues(a, k.Key) is not null);
        var sharedAxes = MethodsOf(spec, baseNode).Select(m => (Method: m, Shared: Shared(m, AxesFor(spec, m)))).ToArray();
        double planned = spec.Baseline ? Math.Max(1, spec.Axes.Model?.Count ?? 1) : 0;
        var perMethod = new List<string>();
        foreach (var (method, shared) in sharedAxes)
        {
            var a = AxesFor(spec, method);
            var knobCount = KnobOf(method, a) is { Key: { } k } ? KnobValues(a, k)!.Count : 1;
            double n = shared.Aggregate((double)knobCount, (acc, values) => acc * values.Count);
            planned += n;
            perMethod.Add($"{method} {n:N0}");
        }
        if (planned > spec.MaxTrials)
            throw new ConfigException([new ConfigError("max_trials", $"the axes expand to {planned:N0} trials ({string.Join(", ", perMethod)}), more than max_trials = {spec.MaxTrials:N0}; shorten an axis or raise max_trials (at most 1,000,000)", At(root, "axes") ?? root.Position)]);

        foreach (var (method, shared) in sharedAxes)
        {
            var a = AxesFor(spec, method);
            // the base's method knobs belong to the base's method; another method starts from its own defaults
            ConfigMapping methodBase = baseMethod == method && baseNode["method"] is ConfigMapping
                ? baseNode
                : baseNode.With("method", new ConfigMapping([], At(root, "axes.method") ?? root.Position), baseNode.Find("method")?.KeyPosition ?? root.Position);
            methodBase = (ConfigMapping)ConfigTree.Set(methodBase, "method.name", Plain(method, At(root, "axes.method") ?? root.Position));
            if (spec.MethodOverrides.TryGetValue(method, out var fixedSettings))
                foreach (var (key, value) in fixedSettings) methodBase = (ConfigMapping)ConfigTree.Set(methodBase, key, value);

            var knob = KnobOf(method, a);
            var knobAt = knob.Key is null ? "" : spec.MethodAxes.TryGetValue(method, out var own) && KnobValues(own, knob.Key) is not null ? $"method_axes.{method}.{knob.Key}" : $"axes.{knob.Key}";
            var knobValues = knob.Key is null ? [null] : KnobValues(a, knob.Key)!.Select((v, i) =>
                new AxisValue(knob.Key, JsonValue.Create(v), [(knob.Value.Key, Plain(v.ToString(CultureInfo.InvariantCulture), P(knobAt, i)))])).ToList<AxisValue?>();
            foreach (var kv in knobValues)
                foreach (var combo in Cartesian(shared))
                {
                    var settings = new List<AxisValue>();
                    if (kv is not null) settings.Add(kv);
                    settings.AddRange(combo);
                    var node = methodBase;
                    foreach (var s in settings)
                        foreach (var (key, value) in s.Sets) node = (ConfigMapping)ConfigTree.Set(node, key, value);
                    var axes = new List<AxisSetting> { new(StudyAxisNames.Method, JsonValue.Create(method)) };
                    axes.AddRange(settings.Select(s => new AxisSetting(s.Axis, s.Json)));
                    Add(node, axes);
                }
        }

        // The untuned baseline: each base model evaluated with zero training steps, at the largest task count (so its
        // seen-task held-out instances are those of the comparison context) and the first seed.
        if (spec.Baseline)
        {
            var at = At(root, "baseline") ?? root.Position;
            var plain = baseNode.With("method", new ConfigMapping([], at), baseNode.Find("method")?.KeyPosition ?? root.Position);
            plain = (ConfigMapping)ConfigTree.Set(plain, "method.name", Plain(PeftRegistry.NameOf(Peft.PeftMethodKind.Full), at));
            plain = (ConfigMapping)ConfigTree.Set(plain, "train.max_steps", Plain("0", at));
            var tail = new List<AxisValue>();
            if (spec.Axes.TaskCount is { Count: > 0 } counts)
            {
                var largest = counts.OrderBy(c => c ?? int.MaxValue).Last();
                tail.Add(new AxisValue(StudyAxisNames.TaskCount, largest is int c ? JsonValue.Create(c) : null, [("data.task_count", Plain(largest?.ToString(CultureInfo.InvariantCulture), at))]));
            }
            if (spec.Axes.Seed is { Count: > 0 } seeds)
                plain = (ConfigMapping)ConfigTree.Set(plain, "train.seed", Plain(seeds[0].ToString(CultureInfo.InvariantCulture), at));
            var models = spec.Axes.Model is null ? [null] : ModelValues(spec.Axes, "axes.model").Select(v => (AxisValue?)v).ToList();
            foreach (var model in models)
            {
                var settings = (model is null ? tail : tail.Prepend(model)).ToList();
                var node = plain;
                foreach (var s in settings)
                    foreach (var (key, value) in s.Sets) node = (ConfigMapping)ConfigTree.Set(node, key, value);
                var axes = new List<AxisSetting> { new(StudyAxisNames.Method, JsonValue.Create(StudyAxisNames.Untuned)) };
                axes.AddRange(settings.Select(s => new AxisSetting(s.Axis, s.Json)));
                Add(node, axes);
            }
        }
        return trials;
    }

    /// <summary>
    /// The confirmation stage: for each method and base model, once every first-stage trial at the largest task count
    /// has finished (done, diverged or failed), the one with the highest validation score (<c>best_score</c>; ties to
    /// the earlier trial) is re-run with each confirmation seed it has not run with. Returns the extended trial list and
    /// how many first-stage trials are still unfinished.
    /// </summary>
    private static (IReadOnlyList<Trial> Trials, int Awaiting) AddConfirmTrials(StudySpec spec, ConfirmSpec confirm, IReadOnlyList<Trial> trials, StudyStore store, string? synthetic)
    {
        string? Display(Trial t, string axis) => t.Entry.Axis(axis)?.Display;
        long TaskOrder(Trial t) => t.Entry.Axis(StudyAxisNames.TaskCount) is { } a ? (a.Value is null ? long.MaxValue : a.Value.GetValue<int>()) : 0;
        var all = trials.ToList();
        var ids = trials.Select(t => t.Id).ToHashSet();
        int awaiting = 0;
        var groups = trials.Where(t => Display(t, StudyAxisNames.Method) != StudyAxisNames.Untuned)
            .GroupBy(t => (Method: Display(t, StudyAxisNames.Method), Model: Display(t, StudyAxisNames.Model)));
        foreach (var g in groups)
        {
            var largest = g.Max(TaskOrder);
            var candidates = g.Where(t => TaskOrder(t) == largest).ToArray();
            var observed = candidates.Select(t => (Trial: t, Status: store.Observe(t.Entry))).ToArray();
            int open = observed.Count(o => o.Status.View is not (TrialView.Done or TrialView.Diverged or TrialView.Failed));
            if (open > 0) { awaiting += open; continue; }
            var best = observed.Where(o => o.Status.View == TrialView.Done && o.Status.Result?.BestScore is not null)
                .OrderByDescending(o => o.Status.Result!.BestScore!.Value).ThenBy(o => o.Trial.Index).Select(o => o.Trial).FirstOrDefault();
            if (best is null) continue;
            foreach (var seed in confirm.Seeds)
            {
                if (seed == best.Config.Train.Seed) continue;
                var cfg = best.Config with { Train = best.Config.Train with { Seed = seed } };
                var id = TrialId(cfg with { Output = "" }, synthetic is null ? null : (spec.SyntheticSuite!, synthetic));
                if (!ids.Add(id)) continue;
                var axes = best.Entry.Axes.Where(a => a.Name != StudyAxisNames.Seed).Append(new AxisSetting(StudyAxisNames.Seed, JsonValue.Create(seed))).ToList();
                all.Add(new Trial(new PlanEntry(all.Count, id, axes), cfg with { Output = Path.Combine(store.Dir, StudyStore.TrialsFolder, id) }));
            }
        }
        return (all, awaiting);
    }

    private static IEnumerable<List<AxisValue>> Cartesian(List<List<AxisValue>> axes)
    {
        IEnumerable<List<AxisValue>> acc = [[]];
        foreach (var values in axes)
        {
            var prev = acc;
            acc = prev.SelectMany(p => values.Select(v => new List<AxisValue>(p) { v }));
        }
        return acc;
    }

    /// <summary>
    /// First 12 hex digits of the SHA-256 of the training config YAML with <c>output</c> blanked, <c>train.threads</c>
    /// cleared (an execution detail) and a study-materialised synthetic suite named symbolically, so ids do not
    /// depend on where the study or the cache lives.
    /// </summary>
    public static string TrialId(TrainConfig cfg, (SyntheticSuiteSpec Spec, string Path)? synthetic = null)
    {
        var c = cfg with { Output = "", Train = cfg.Train with { Threads = null } };
        if (synthetic is { } s && c.Data.Path == s.Path)
            c = c with { Data = c.Data with { Path = $"synthetic_suite:seed={s.Spec.Seed},instances_per_task={s.Spec.InstancesPerTask}" } };
        var yaml = TrainConfigLoader.ToYaml(c);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)))[..12];
    }

    // --- node helpers ------------------------------------------------------------------------------

    private static ConfigNode? NodeAt(ConfigNode root, string path)
    {
        ConfigNode? n = root;
        foreach (var seg in path.Split('.'))
            n = n switch
            {
                ConfigMapping m => m[seg],
                ConfigSequence s when int.TryParse(seg, out var i) && i >= 0 && i < s.Items.Count => s.Items[i],
                _ => null,
            };
        return n;
    }

    /// <summary>Where <paramref name="path"/> was written (item <paramref name="item"/> of a list, or the scalar for a one-value axis).</summary>
    private static SourcePosition? At(ConfigMapping root, string path, int? item = null)
    {
        var n = NodeAt(root, path);
        if (item is int i && n is ConfigSequence s && i < s.Items.Count) return s.Items[i].Position;
        return n?.Position;
    }
}

/// <summary>Registers how study-only types bind (raw config nodes).</summary>
internal static class StudyBinding
{
    private static readonly object Gate = new();
    private static bool registered;

    public static void Register()
    {
        TrainConfigLoader.Register();
        lock (Gate)
        {
            if (registered) return;
            ConfigBinder.RegisterConverter<ConfigNode>(n => (n, null), n => n);
            ConfigBinder.RegisterConverter<ConfigMapping>(n => n is ConfigMapping m ? (m, null) : (null, $"expected a mapping, got {n.Describe()}"), n => n);
            ConfigBinder.RegisterConverter<ConfigSequence>(n => n is ConfigSequence s ? (s, null) : (null, $"expected a list, got {n.Describe()}"), n => n);
            ConfigBinder.RegisterConverter<ConfigScalar>(n => n is ConfigScalar s ? (s, null) : (null, $"expected a scalar, got {n.Describe()}"), n => n);
            registered = true;
        }
    }
}
