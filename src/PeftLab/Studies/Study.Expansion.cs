using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using PeftLab.Configuration;
using PeftLab.Peft;
using PeftLab.Training;

namespace PeftLab.Studies;

// Expanding a study into trials: axis order, per-method axes, the Cartesian product, confirmation trials and trial ids.
public sealed partial class Study
{
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
    /// has finished (done, diverged or failed), the <see cref="ConfirmSpec.Settings"/> with the highest validation
    /// scores (<c>best_score</c>; ties to the earlier trial) are re-run with each confirmation seed they have not run
    /// with. Returns the extended trial list and how many first-stage trials are still unfinished.
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
            var chosen = observed.Where(o => o.Status.View == TrialView.Done && o.Status.Result?.BestScore is not null)
                .OrderByDescending(o => o.Status.Result!.BestScore!.Value).ThenBy(o => o.Trial.Index).Select(o => o.Trial).Take(confirm.Settings);
            foreach (var best in chosen)
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
            c = c with { Data = c.Data with { Path = "synthetic_suite:" + s.Spec.Symbol } };
        if (SyntheticData.SymbolicHarnessPath(c.Data.Path) is { } mixture) c = c with { Data = c.Data with { Path = mixture } };
        if (c.Eval.OpenInstruction is { } open)                                       // the stand-ins by name, wherever the cache is
            c = c with { Eval = c.Eval with { OpenInstruction = open with { Tasks = open.Tasks.Select(t => SyntheticData.SymbolicHarnessPath(t.Task) is { } name ? t with { Task = name } : t).ToList() } } };
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
