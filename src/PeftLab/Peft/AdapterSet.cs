using PeftLab.Checkpoints;
using PeftLab.Models;

namespace PeftLab.Peft;

/// <summary>
/// Several adapters for one base model, each under a name, one active at a time (PEFT's <c>load_adapter</c> /
/// <c>set_adapter</c>). Switching between adapters of the same structure (same method and the same adapter_config.json
/// apart from the weights, e.g. task LoRAs trained with one recipe) loads the new weights into the attached modules
/// in place; switching to a differently structured adapter rebuilds the model from the base (through the factory) and
/// attaches it, so any method can follow any other. Every adapter is checked when it is added: its config is read and
/// its weights are loaded once strictly, so a bad adapter fails at <see cref="Load"/>, not at a later switch.
/// </summary>
public sealed class AdapterSet
{
    private sealed record Entry(string Dir, string Structure);

    private readonly Func<IPeftHost> loadBase;
    private readonly Dictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

    private AdapterSet(Func<IPeftHost> loadBase) => this.loadBase = loadBase;

    /// <summary>The names, in the order given.</summary>
    public IReadOnlyList<string> Names => order;

    /// <summary>The active adapter's name.</summary>
    public string Active { get; private set; } = "";

    /// <summary>The model with the active adapter attached (a new model after a switch that rebuilt it).</summary>
    public PeftModel Current { get; private set; } = null!;

    /// <summary>
    /// Reads every adapter, checks each against a model from <paramref name="loadBase"/>, and leaves the first active.
    /// </summary>
    /// <exception cref="ArgumentException">No adapters, an empty or repeated name.</exception>
    /// <exception cref="PeftConfigException">An adapter does not fit the base (errors name the folder and the tensor or option).</exception>
    public static AdapterSet Load(Func<IPeftHost> loadBase, IReadOnlyList<(string Name, string Dir)> adapters)
    {
        if (adapters.Count == 0) throw new ArgumentException("adapters: give at least one (name, folder)");
        var set = new AdapterSet(loadBase);
        foreach (var (name, dir) in adapters)
        {
            if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException($"adapter {dir}: the name must not be empty");
            if (set.entries.ContainsKey(name)) throw new ArgumentException($"adapter name '{name}' is given twice ({set.entries[name].Dir} and {dir})");
            set.entries[name] = new Entry(dir, "");
            set.order.Add(name);
        }
        foreach (var name in set.order.AsEnumerable().Reverse())   // each loaded once (strict); the first stays active
        {
            set.Activate(name, rebuild: true);
            set.entries[name] = set.entries[name] with { Structure = set.Structure(set.Current) };
        }
        return set;
    }

    /// <summary>Makes <paramref name="name"/> the active adapter and returns the model with it attached.</summary>
    /// <exception cref="ArgumentException">No adapter has that name; the message lists the names.</exception>
    public PeftModel Activate(string name) => Activate(name, rebuild: false);

    private PeftModel Activate(string name, bool rebuild)
    {
        if (!entries.TryGetValue(name, out var entry))
            throw new ArgumentException($"no adapter named '{name}'; the adapters are: {string.Join(", ", order)}");
        if (!rebuild && Current is not null && entry.Structure == Structure(Current))
        {
            // same method and config: only the weights differ
            using var source = CheckpointSource.OpenFile(Path.Combine(entry.Dir, PeftModel.WeightsFile));
            Current.Method.LoadAdapterState(Current.Host, Current.Config, source);
        }
        else Current = PeftModel.LoadAdapter(loadBase(), entry.Dir);
        Active = name;
        return Current;
    }

    /// <summary>The adapter's structure: its method and the config it would save (weights aside).</summary>
    private string Structure(PeftModel peft) => peft.Method.Name + " " + peft.Method.WriteAdapterConfig(peft.Config, peft.Host).ToJsonString();
}
