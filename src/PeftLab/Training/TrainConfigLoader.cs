using PeftLab.Configuration;
using PeftLab.Peft;

namespace PeftLab.Training;

/// <summary>Target-module selection as written in YAML (mapping form).</summary>
public sealed record TargetSpec
{
    /// <summary>Module names or name suffixes.</summary>
    public IReadOnlyList<string> Modules { get; init; } = [];
    /// <summary>Regex over full module names.</summary>
    public string? Regex { get; init; }
    /// <summary>Every linear layer except the head.</summary>
    public bool AllLinear { get; init; }
    /// <summary>Only these block indices.</summary>
    public IReadOnlyList<int>? Layers { get; init; }
    /// <summary>Names of the module lists <c>layers</c> indexes (PEFT's layers_pattern, e.g. [layers]); default: the model's block lists.</summary>
    public IReadOnlyList<string>? LayersPattern { get; init; }
    /// <summary>Modules never targeted (equal or suffix match), e.g. [o_proj] or [model.layers.0.self_attn.q_proj].</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];
    /// <summary>Regex over full module names: matching modules are never targeted.</summary>
    public string? ExcludeRegex { get; init; }
}

/// <summary>Loads <see cref="TrainConfig"/> from YAML plus <c>key=value</c> overrides, and writes the resolved config.</summary>
public static class TrainConfigLoader
{
    private static readonly object Gate = new();
    private static bool registered;

    /// <summary>Registers how methods and target selectors bind (idempotent).</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (registered) return;
            ConfigBinder.RegisterPolymorphic<PeftConfig>("name", PeftRegistry.ConfigTypes);
            ConfigBinder.RegisterConverter<TargetSelector>(ReadTargets, WriteTargets);
            ConfigBinder.RegisterConverter<ActivationCheckpointing>(ActivationCheckpointing.Read, a => a.Write());
            registered = true;
        }
    }

    /// <summary>
    /// The record's defaults, then a command's own <paramref name="defaults"/> (<c>key=value</c>, e.g. pretraining's
    /// packing), then the YAML file (if any), then <paramref name="overrides"/>; every problem reported by key path.
    /// A command default never replaces what the file sets.
    /// </summary>
    public static TrainConfig Load(string? yamlPath, IEnumerable<string>? overrides = null, IEnumerable<string>? defaults = null)
    {
        Register();
        var root = yamlPath is null ? ConfigNode.Parse("", "defaults") : ConfigNode.Load(yamlPath);
        var unset = (defaults ?? []).Where(d => !SetsKey(root, d[..Math.Max(0, d.IndexOf('='))].Trim()));
        return ConfigBinder.Bind<TrainConfig>(ConfigOverrides.Apply(root, unset.Concat(overrides ?? [])));
    }

    private static bool SetsKey(ConfigNode root, string path)
    {
        ConfigNode? n = root;
        foreach (var seg in path.Split('.'))
            n = n is ConfigMapping m ? m[seg] : null;
        return n is not null;
    }

    /// <summary>Binds a config from an already merged node tree (studies build these).</summary>
    public static TrainConfig Bind(ConfigNode node)
    {
        Register();
        return ConfigBinder.Bind<TrainConfig>(node);
    }

    /// <summary>A method config from <c>name=...</c> and knob <c>key=value</c> pairs, with the same rules as <c>method:</c>.</summary>
    public static PeftConfig BindMethod(string name, IEnumerable<string> knobs)
    {
        Register();
        var node = ConfigOverrides.Apply(ConfigNode.Parse("{}", "method"), knobs.Prepend($"name={name}"));
        return ConfigBinder.BindPolymorphic<PeftConfig>(node, "name", PeftRegistry.ConfigTypes);
    }

    /// <summary>The resolved config as YAML (written into every run folder).</summary>
    public static string ToYaml(TrainConfig config)
    {
        Register();
        return ConfigWriter.ToYaml(config);
    }

    private static (TargetSelector?, string?) ReadTargets(ConfigNode node)
    {
        switch (node)
        {
            case ConfigScalar { IsNull: false } s when s.Value is "all-linear" or "all_linear":
                return (new TargetSelector { AllLinear = true }, null);
            case ConfigScalar { IsNull: false } s:
                return (new TargetSelector { Regex = s.Value }, null);
            case ConfigSequence seq:
                var names = seq.Items.Select(i => i is ConfigScalar { IsNull: false } sc ? sc.Value : null).ToArray();
                if (names.Length == 0)
                    return (null, "an empty list selects no modules; leave target_modules out for the model's default targets, or name modules");
                return names.Any(n => string.IsNullOrEmpty(n)) ? (null, "target modules must be names (strings)")
                    : (new TargetSelector { Names = names! }, null);
            case ConfigMapping:
                var spec = ConfigBinder.Bind<TargetSpec>(node);
                int forms = (spec.Modules.Count > 0 ? 1 : 0) + (spec.Regex is null ? 0 : 1) + (spec.AllLinear ? 1 : 0);
                return forms > 1 ? (null, "give at most one of modules, regex, all_linear (none: the model's default targets)")
                    : (new TargetSelector
                    {
                        Names = spec.Modules, Regex = spec.Regex, AllLinear = spec.AllLinear, Layers = spec.Layers,
                        LayersPattern = spec.LayersPattern, Exclude = spec.Exclude, ExcludeRegex = spec.ExcludeRegex,
                    }, null);
            default:
                return (null, "expected a list of module names, a regex string, 'all-linear', or a mapping {modules|regex|all_linear, layers}");
        }
    }

    private static ConfigNode WriteTargets(TargetSelector t) => t switch
    {
        // the mapping form with no modules: the model's defaults (an empty list is an error)
        { Layers: not null } or { UseModelDefaults: true } or { Exclude.Count: > 0 } or { ExcludeRegex: not null } => ConfigWriter.ToNode(new TargetSpec
        {
            Modules = t.Names, Regex = t.Regex, AllLinear = t.AllLinear, Layers = t.Layers,
            LayersPattern = t.LayersPattern, Exclude = t.Exclude, ExcludeRegex = t.ExcludeRegex,
        }),
        { AllLinear: true } => ConfigWriter.ToNode("all-linear"),
        { Regex: { } regex } => ConfigWriter.ToNode(regex),
        _ => ConfigWriter.ToNode(t.Names),
    };
}
