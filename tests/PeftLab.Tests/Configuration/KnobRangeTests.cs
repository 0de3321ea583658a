using System.Reflection;
using PeftLab.Configuration;
using PeftLab.Peft;
using PeftLab.Studies;
using PeftLab.Training;

namespace PeftLab.Tests.Configuration;

/// <summary>Every numeric knob of every config record has a declared range, checked at load and reported by key path.</summary>
public sealed class KnobRangeTests
{
    private static readonly Type[] Numeric = [typeof(int), typeof(long), typeof(double), typeof(float)];

    /// <summary>Config record types reachable from the configs PeftLab loads (training incl. every method variant, studies).</summary>
    private static IEnumerable<Type> ConfigRecords()
    {
        var seen = new HashSet<Type>();
        var todo = new Stack<Type>([typeof(TrainConfig), typeof(StudySpec), .. PeftRegistry.ConfigTypes.Values]);
        while (todo.Count > 0)
        {
            var t = todo.Pop();
            if (!seen.Add(t)) continue;
            yield return t;
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
            {
                var pt = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
                if (pt.IsClass && pt.Namespace?.StartsWith("PeftLab", StringComparison.Ordinal) == true && pt != typeof(ConfigNode)
                    && !pt.IsAbstract && pt.GetConstructor(Type.EmptyTypes) is not null)
                    todo.Push(pt);
                if (pt.IsGenericType)
                    foreach (var a in pt.GenericTypeArguments.Where(a => a.IsClass && a.Namespace?.StartsWith("PeftLab", StringComparison.Ordinal) == true && a != typeof(ConfigNode)))
                        todo.Push(a);
            }
        }
    }

    [Fact]
    public void EveryNumericConfigKnobDeclaresARange()
    {
        var records = ConfigRecords().ToArray();
        Assert.Contains(typeof(PeftLab.Peft.Lora.LoraConfig), records);
        Assert.Contains(typeof(EvalSection), records);
        Assert.Contains(typeof(SlurmSpec), records);
        var missing = records.SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.SetMethod is { IsPublic: true } && p.GetCustomAttribute<ConfigIgnoreAttribute>() is null)
                .Where(p => Numeric.Contains(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType))
                .Where(p => p.GetCustomAttribute<ConfigRangeAttribute>() is null)
                .Select(p => $"{t.Name}.{p.Name}"))
            .ToArray();
        Assert.True(missing.Length == 0, "numeric knobs without [ConfigRange]: " + string.Join(", ", missing));
    }

    private static string Fails(params string[] bad)
    {
        var overrides = new[] { "model.preset=nano", "data.path=" + TestPaths.SuperNi }.Concat(bad);
        return Assert.Throws<ConfigException>(() => TrainConfigLoader.Load(null, overrides)).Message;
    }

    [Theory]
    [InlineData("method.dropout=1.5", "method.dropout: must be in [0, 1) (got 1.5)")]
    [InlineData("method.dropout=-0.1", "method.dropout: must be in [0, 1) (got -0.1)")]
    [InlineData("method.r=0", "method.r: must be >= 1 (got 0)")]
    [InlineData("method.alpha=.nan", "method.alpha: must be a finite number > 0 (got NaN)")]
    [InlineData("optim.lr=.inf", "optim.lr: must be a finite number > 0 (got Infinity)")]
    [InlineData("optim.weight_decay=-.inf", "optim.weight_decay: must be a finite number >= 0 (got -Infinity)")]
    [InlineData("optim.clip_norm=.nan", "optim.clip_norm: must be a finite number >= 0 (got NaN)")]
    [InlineData("eval.batch_size=0", "eval.batch_size: must be >= 1 (got 0)")]
    [InlineData("eval.max_new_tokens=-5", "eval.max_new_tokens: must be >= 1 (got -5)")]
    [InlineData("eval.every_steps=-1", "eval.every_steps: must be >= 0 (got -1)")]
    [InlineData("train.threads=-2", "train.threads: must be >= 1 (got -2)")]
    [InlineData("train.threads=0", "train.threads: must be >= 1 (got 0)")]
    [InlineData("data.train_instances_per_task=0", "data.train_instances_per_task: must be >= 1 (got 0)")]
    [InlineData("data.task_count=0", "data.task_count: must be >= 1 (got 0)")]
    [InlineData("stability.spike_factor=.inf", "stability.spike_factor: must be a finite number >= 1 (got Infinity)")]
    [InlineData("checkpoint.keep=-1", "checkpoint.keep: must be >= 0 (got -1)")]
    [InlineData("schedule.warmup_ratio=2", "schedule.warmup_ratio: must be in [0, 1] (got 2)")]
    public void OutOfRangeKnobsNameKeyValueAndRange(string bad, string expected) => Assert.Contains(expected, Fails(bad));

    [Theory]
    [InlineData("adapter", "method.size=0", "method.size: must be >= 1 (got 0)")]
    [InlineData("adapter", "method.init_std=-1", "method.init_std: must be >= 0 (got -1)")]
    [InlineData("prefix_tuning", "method.num_virtual_tokens=0", "method.num_virtual_tokens: must be >= 1 (got 0)")]
    [InlineData("prompt_tuning", "method.num_transformer_submodules=3", "method.num_transformer_submodules: must be in [1, 2] (got 3)")]
    public void EveryMethodsKnobsAreRangeChecked(string method, string bad, string expected) =>
        Assert.Contains(expected, Fails("method.name=" + method, bad));

    [Fact]
    public void SeveralBadKnobsAreReportedTogether()
    {
        var message = Fails("method.dropout=1.5", "optim.lr=.inf", "eval.batch_size=0");
        Assert.Contains("invalid configuration (3 errors)", message);
        Assert.Contains("method.dropout", message);
        Assert.Contains("optim.lr", message);
        Assert.Contains("eval.batch_size", message);
    }

    [Theory]
    [InlineData("method.target_modules=[]")]
    [InlineData("method.name=ia3 method.target_modules=[]")]
    [InlineData("method.name=bitfit method.target_modules=[]")]
    public void EmptyTargetModulesListIsAnError(string overrides) =>
        Assert.Contains("method.target_modules: an empty list selects no modules", Fails(overrides.Split(' ')));

    [Fact]
    public void ModelDefaultTargetsRoundTripThroughTheResolvedConfig()
    {
        var config = TrainConfigLoader.Load(null, ["model.preset=nano", "data.path=" + TestPaths.SuperNi]);
        var again = TrainConfigLoader.Bind(ConfigNode.Parse(TrainConfigLoader.ToYaml(config)));
        Assert.True(((PeftLab.Peft.Lora.LoraConfig)again.Method).Targets.UseModelDefaults);
    }

    [Fact]
    public void AdapterFileKnobsAreRangeCheckedToo()
    {
        var dir = TestPaths.NewTempDir();
        var src = Path.Combine(Fixtures.Dir("llama-gqa"), "adapters", "lora-qv");
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var path = Path.Combine(dir, "adapter_config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        json["lora_dropout"] = 1.5;
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<PeftConfigException>(() => PeftModel.ReadAdapterConfig(dir));
        Assert.Contains("dropout: must be in [0, 1) (got 1.5)", e.Message);
        json["lora_dropout"] = 0.0;
        json["target_modules"] = new System.Text.Json.Nodes.JsonArray();
        File.WriteAllText(path, json.ToJsonString());
        e = Assert.Throws<PeftConfigException>(() => PeftModel.ReadAdapterConfig(dir));
        Assert.Contains("'target_modules' is an empty list", e.Message);
    }
}
