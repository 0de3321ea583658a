using PeftLab.Configuration;

namespace PeftLab.Tests.Configuration;

public enum TestDtype { Float32, [ConfigKey("bfloat16")] BFloat16, Float16 }

public enum TestBias { None, All, LoraOnly }

/// <summary>Which modules to target: "all-linear", a regex string, a list of names, or the record form.</summary>
public sealed record TestTargets
{
    public IReadOnlyList<string> Names { get; init; } = [];
    public string? Regex { get; init; }
    public bool AllLinear { get; init; }
}

public sealed record TestModel
{
    public string? Path { get; init; }
    public TestDtype Dtype { get; init; } = TestDtype.Float32;
}

public abstract record TestMethod;

public sealed record TestLora : TestMethod
{
    [ConfigRange(1, double.MaxValue)]
    public int R { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Dropout { get; init; }
    public bool UseRslora { get; init; }
    public TestBias Bias { get; init; } = TestBias.None;
    public TestTargets Targets { get; init; } = new() { Names = ["q_proj", "v_proj"] };
}

public sealed record TestPrompt : TestMethod
{
    public int NumVirtualTokens { get; init; } = 20;
    public string? InitText { get; init; }
}

public sealed record TestOptim : IValidatable
{
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Lr { get; init; } = 1e-3;
    public IReadOnlyList<double> Betas { get; init; } = [0.9, 0.999];
    public double WeightDecay { get; init; }

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (Betas.Count != 2) yield return ("betas", $"must have 2 values (got {Betas.Count})");
    }
}

public sealed record TestTrain : IValidatable
{
    public TestModel Model { get; init; } = new();
    public TestMethod Method { get; init; } = new TestLora();
    /// <summary>The parent's initialiser differs from TestOptim's own default (lr 1e-3): binding must keep 2e-4.</summary>
    public TestOptim Optim { get; init; } = new() { Lr = 2e-4 };
    [ConfigRange(1, double.MaxValue)]
    public int Steps { get; init; } = 100;
    public int EvalEvery { get; init; } = 50;
    public long Seed { get; init; } = 42;
    public float WarmupRatio { get; init; } = 0.1f;
    public string Name { get; init; } = "run";
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public int[] EvalSteps { get; init; } = [];
    [ConfigAllowSingle]
    public IReadOnlyList<string> Datasets { get; init; } = ["superni"];
    public IReadOnlyDictionary<string, TestOptim>? Groups { get; init; }
    [ConfigKey("ia3_init")]
    public double? IA3Init { get; init; }
    [ConfigIgnore]
    public string Computed { get; init; } = "not bound";

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (EvalEvery > Steps) yield return ("eval_every", $"must be <= steps ({Steps}), got {EvalEvery}");
    }
}

/// <summary>Registers the polymorphic method family and the targets converter once per test process.</summary>
internal static class TestConfig
{
    public static readonly IReadOnlyDictionary<string, Type> Methods = new Dictionary<string, Type>
    {
        ["lora"] = typeof(TestLora),
        ["prompt"] = typeof(TestPrompt),
    };

    private static readonly Lazy<bool> Registered = new(() =>
    {
        ConfigBinder.RegisterPolymorphic<TestMethod>("name", Methods);
        ConfigBinder.RegisterConverter<TestTargets>(node => node switch
        {
            ConfigScalar { Value: "all-linear" } => (new TestTargets { AllLinear = true }, null),
            ConfigScalar { Value: "" } => (null, "expected 'all-linear', a regex or a list of module names, got an empty string"),
            ConfigScalar s => (new TestTargets { Regex = s.Value }, null),
            ConfigSequence q when q.Items.All(i => i is ConfigScalar { IsNull: false }) =>
                (new TestTargets { Names = q.Items.Select(i => ((ConfigScalar)i).Value!).ToArray() }, null),
            ConfigSequence => (null, "expected a list of module names"),
            _ => (null, null), // a mapping: bind the record form
        });
        return true;
    });

    public static void Register() => _ = Registered.Value;

    public static ConfigNode Yaml(string text) => ConfigNode.Parse(text, "train.yaml");

    public static TestTrain Bind(string yaml, params string[] overrides)
    {
        Register();
        return ConfigBinder.Bind<TestTrain>(ConfigOverrides.Apply(Yaml(yaml), overrides));
    }

    public static ConfigException Fails(string yaml, params string[] overrides) => Assert.Throws<ConfigException>(() => Bind(yaml, overrides));
}
