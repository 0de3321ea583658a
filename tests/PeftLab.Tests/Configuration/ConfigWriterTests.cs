using System.Text.Json;
using PeftLab.Configuration;
using static PeftLab.Tests.Configuration.TestConfig;

namespace PeftLab.Tests.Configuration;

public sealed class ConfigWriterTests
{
    public ConfigWriterTests() => Register();

    private static readonly TestTrain Sample = new()
    {
        Model = new TestModel { Path = "models/llama 1B", Dtype = TestDtype.BFloat16 },
        Method = new TestPrompt { NumVirtualTokens = 12, InitText = "Answer: yes # or no" },
        Optim = new TestOptim { Lr = 3e-5, Betas = [0.9, 0.95], WeightDecay = 0.1 },
        Steps = 1234,
        EvalEvery = 10,
        Seed = -9876543210,
        WarmupRatio = 0.3f,
        Name = "null",
        Tags = new Dictionary<string, string> { ["team"] = "nlp", ["true"] = "123", ["quote"] = "it's \"x\"", ["multi"] = "a\nb", ["empty"] = "" },
        EvalSteps = [1, 2, 3],
        Datasets = ["superni", "yes", " padded "],
        Groups = new Dictionary<string, TestOptim> { ["head"] = new() { Lr = 1e-2, Betas = [0.5, 0.6] } },
        IA3Init = null,
    };

    /// <summary>Structural equality: records hold lists and dictionaries, which compare by reference.</summary>
    private static void AssertSameConfig(TestTrain expected, TestTrain actual)
    {
        Assert.Equal(expected.Model, actual.Model);
        Assert.Equal(expected.Method.GetType(), actual.Method.GetType());
        Assert.Equal(ConfigWriter.ToYaml(expected.Method), ConfigWriter.ToYaml(actual.Method));
        Assert.Equal((expected.Optim.Lr, expected.Optim.WeightDecay), (actual.Optim.Lr, actual.Optim.WeightDecay));
        Assert.Equal(expected.Optim.Betas, actual.Optim.Betas);
        Assert.Equal((expected.Steps, expected.EvalEvery, expected.Seed, expected.WarmupRatio, expected.Name, expected.IA3Init),
            (actual.Steps, actual.EvalEvery, actual.Seed, actual.WarmupRatio, actual.Name, actual.IA3Init));
        Assert.Equal(expected.Tags, actual.Tags);
        Assert.Equal(expected.EvalSteps, actual.EvalSteps);
        Assert.Equal(expected.Datasets, actual.Datasets);
        Assert.Equal(expected.Groups?.Keys, actual.Groups?.Keys);
        foreach (var (k, g) in expected.Groups ?? new Dictionary<string, TestOptim>())
            Assert.Equal((g.Lr, g.WeightDecay, string.Join(",", g.Betas)), (actual.Groups![k].Lr, actual.Groups[k].WeightDecay, string.Join(",", actual.Groups[k].Betas)));
    }

    [Fact]
    public void YamlRoundTrips()
    {
        var yaml = ConfigWriter.ToYaml(Sample);
        var back = ConfigBinder.Bind<TestTrain>(ConfigNode.Parse(yaml, "resolved.yaml"));
        AssertSameConfig(Sample, back);
        Assert.Equal(yaml, ConfigWriter.ToYaml(back));

        var defaults = new TestTrain();
        AssertSameConfig(defaults, ConfigBinder.Bind<TestTrain>(ConfigNode.Parse(ConfigWriter.ToYaml(defaults))));
        var lora = new TestLora { R = 4, Bias = TestBias.LoraOnly, Targets = new TestTargets { AllLinear = true } };
        var loraBack = Assert.IsType<TestLora>(ConfigBinder.Bind<TestTrain>(ConfigNode.Parse(ConfigWriter.ToYaml(new TestTrain { Method = lora }))).Method);
        Assert.Equal(lora with { Targets = null! }, loraBack with { Targets = null! });
        Assert.Equal(lora.Targets, loraBack.Targets with { Names = lora.Targets.Names });
        Assert.Equal(lora.Targets.Names, loraBack.Targets.Names);
    }

    [Fact]
    public void ExtremeNumbersRoundTrip()
    {
        var odd = new TestTrain { Optim = new TestOptim { Lr = double.Epsilon, WeightDecay = double.PositiveInfinity, Betas = [0.1 + 0.2, 1e300] }, WarmupRatio = float.MaxValue, IA3Init = double.NaN, Seed = long.MinValue };
        var back = ConfigBinder.Bind<TestTrain>(ConfigNode.Parse(ConfigWriter.ToYaml(odd)));
        AssertSameConfig(odd, back);
    }

    [Fact]
    public void YamlUsesSnakeCaseKeysEnumsDiscriminatorAndNulls()
    {
        var yaml = ConfigWriter.ToYaml(new TestTrain());
        Assert.Equal("""
            model:
              path: null
              dtype: float32
            method:
              name: lora
              r: 8
              alpha: 16
              dropout: 0
              use_rslora: false
              bias: none
              targets:
                names: [q_proj, v_proj]
                regex: null
                all_linear: false
            optim:
              lr: 0.0002
              betas: [0.9, 0.999]
              weight_decay: 0
            steps: 100
            eval_every: 50
            seed: 42
            warmup_ratio: 0.1
            name: run
            tags: {}
            eval_steps: []
            datasets: [superni]
            groups: null
            ia3_init: null

            """.Replace("\r\n", "\n"), yaml);
    }

    [Fact]
    public void ConverterWriterIsUsedWhenRegistered()
    {
        // A local family, so the process-wide TestTargets registration stays as the other tests expect.
        ConfigBinder.RegisterConverter<WrittenAsText>(n => n is ConfigScalar { IsNull: false } s ? (new WrittenAsText { Text = s.Value! }, null) : (null, "expected text"),
            w => new ConfigScalar(w.Text, true, SourcePosition.CommandLine));
        var yaml = ConfigWriter.ToYaml(new HoldsText { Value = new WrittenAsText { Text = "hello" } });
        Assert.Equal("value: hello\n", yaml);
        Assert.Equal("hello", ConfigBinder.Bind<HoldsText>(ConfigNode.Parse(yaml)).Value.Text);
        Assert.Equal("value: expected text (<string>:1)", Assert.Single(Assert.Throws<ConfigException>(() => ConfigBinder.Bind<HoldsText>(ConfigNode.Parse("value: [1]"))).Errors).ToString());
    }

    [Fact]
    public void JsonHasTypedValues()
    {
        using var doc = JsonDocument.Parse(ConfigWriter.ToJson(Sample));
        var root = doc.RootElement;
        Assert.Equal("bfloat16", root.GetProperty("model").GetProperty("dtype").GetString());
        Assert.Equal("prompt", root.GetProperty("method").GetProperty("name").GetString());
        Assert.Equal(12, root.GetProperty("method").GetProperty("num_virtual_tokens").GetInt32());
        Assert.Equal(3e-5, root.GetProperty("optim").GetProperty("lr").GetDouble());
        Assert.Equal(JsonValueKind.Array, root.GetProperty("optim").GetProperty("betas").ValueKind);
        Assert.Equal(-9876543210, root.GetProperty("seed").GetInt64());
        Assert.Equal("null", root.GetProperty("name").GetString());
        Assert.Equal("123", root.GetProperty("tags").GetProperty("true").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("ia3_init").ValueKind);

        // JSON is YAML: the resolved JSON binds back too.
        AssertSameConfig(Sample, ConfigBinder.Bind<TestTrain>(ConfigNode.Parse(ConfigWriter.ToJson(Sample))));
    }

    [Fact]
    public void SaveChoosesFormatByExtension()
    {
        var dir = TestPaths.NewTempDir("peftlab-config");
        ConfigWriter.Save(Sample, Path.Combine(dir, "config.json"));
        ConfigWriter.Save(Sample, Path.Combine(dir, "config.yaml"));
        Assert.StartsWith("{", File.ReadAllText(Path.Combine(dir, "config.json")));
        AssertSameConfig(Sample, ConfigBinder.Load<TestTrain>(Path.Combine(dir, "config.yaml")));
        AssertSameConfig(Sample, ConfigBinder.Load<TestTrain>(Path.Combine(dir, "config.json")));
        Directory.Delete(dir, true);
    }
}

public sealed record WrittenAsText
{
    public string Text { get; init; } = "";
}

public sealed record HoldsText
{
    public WrittenAsText Value { get; init; } = new();
}
