using System.Globalization;
using PeftLab.Configuration;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies;

// Reading and checking a study spec: overrides routed to the spec or the base config, every axis and value validated by key path.
public sealed partial class Study
{
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
        // each value's first index, so a duplicate names the earliest item it repeats (linear: axes may hold 10^5 values)
        var first = new Dictionary<object, int>();
        for (int i = 0; i < values.Count; i++)
        {
            var key = canonical(values[i]) ?? NullValue;
            if (first.TryGetValue(key, out var j))
                errors.Add(new ConfigError(path, $"duplicate value {Show(values[i])} (items {j} and {i}: each value may appear once)", At(root, path, i)));
            else first[key] = i;
        }
    }

    private static readonly object NullValue = new();

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
}
