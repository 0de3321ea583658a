using PeftLab.Configuration;
using static PeftLab.Tests.Configuration.TestConfig;

namespace PeftLab.Tests.Configuration;

public sealed class ConfigBinderTests
{
    public ConfigBinderTests() => Register();

    [Fact]
    public void DefaultsOnly()
    {
        var c = Bind("");
        Assert.Equal(new TestModel(), c.Model);
        Assert.Equal(new TestLora().R, Assert.IsType<TestLora>(c.Method).R);
        Assert.Equal(2e-4, c.Optim.Lr);
        Assert.Equal([0.9, 0.999], c.Optim.Betas);
        Assert.Equal(100, c.Steps);
        Assert.Equal(["superni"], c.Datasets);
        Assert.Empty(c.Tags);
        Assert.Null(c.Groups);
        Assert.Null(c.IA3Init);
    }

    [Fact]
    public void YamlOverridesDefaultsAndKeepsTheRest()
    {
        var c = Bind("""
            model:
              path: models/llama
              dtype: bfloat16
            optim:
              weight_decay: 0.01
            steps: 300
            seed: 12345678901
            warmup_ratio: 0.25
            """);
        Assert.Equal("models/llama", c.Model.Path);
        Assert.Equal(TestDtype.BFloat16, c.Model.Dtype);
        Assert.Equal(0.01, c.Optim.WeightDecay);
        Assert.Equal(2e-4, c.Optim.Lr); // the parent's initialiser, not TestOptim's own default
        Assert.Equal(300, c.Steps);
        Assert.Equal(12345678901L, c.Seed);
        Assert.Equal(0.25f, c.WarmupRatio);
        Assert.Equal("run", c.Name);
    }

    [Fact]
    public void AllSupportedShapesBind()
    {
        var c = Bind("""
            name: "007"
            tags: {team: nlp, "null": yes}
            eval_steps: [10, 20]
            datasets: alpaca
            groups:
              head: {lr: 0.1}
              body: {lr: 0.01, betas: [0.5, 0.6]}
            ia3_init: 1e-2
            method: {name: lora, r: 4, bias: lora-only, use_rslora: TRUE, targets: all-linear}
            """);
        Assert.Equal("007", c.Name);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "nlp", ["null"] = "yes" }, c.Tags);
        Assert.Equal([10, 20], c.EvalSteps);
        Assert.Equal(["alpaca"], c.Datasets); // [ConfigAllowSingle]
        Assert.Equal(0.1, c.Groups!["head"].Lr);
        Assert.Equal([0.5, 0.6], c.Groups["body"].Betas);
        Assert.Equal(0.01, c.IA3Init);
        var lora = Assert.IsType<TestLora>(c.Method);
        Assert.Equal((4, TestBias.LoraOnly, true), (lora.R, lora.Bias, lora.UseRslora));
        Assert.True(lora.Targets.AllLinear);
        Assert.Equal("not bound", c.Computed);
    }

    [Fact]
    public void EnumsAcceptSnakeKebabAndAnyCase()
    {
        foreach (var spelling in new[] { "lora_only", "lora-only", "LoraOnly", "LORA_ONLY" })
            Assert.Equal(TestBias.LoraOnly, Assert.IsType<TestLora>(Bind($"method: {{bias: {spelling}}}").Method).Bias);
    }

    [Fact]
    public void ConverterAcceptsStringListOrRecordForm()
    {
        TestTargets T(string yaml) => Assert.IsType<TestLora>(Bind("method:\n  targets: " + yaml).Method).Targets;
        Assert.True(T("all-linear").AllLinear);
        Assert.Equal(".*proj", T("'.*proj'").Regex);
        Assert.Equal(["q", "k"], T("[q, k]").Names);
        Assert.Equal(["o"], T("{names: [o], all_linear: false}").Names);
        var e = Fails("method:\n  targets: ''");
        Assert.Contains("method.targets: expected 'all-linear', a regex or a list of module names, got an empty string (train.yaml:2)", e.Message);
        Assert.Contains("method.targets.bogus: unknown key", Fails("method:\n  targets: {bogus: 1}").Message);
    }

    [Fact]
    public void UnknownKeyNamesPathPositionAndSuggestion()
    {
        var e = Fails("""
            steps: 100
            optim:
              lrr: 0.1
            """);
        var err = Assert.Single(e.Errors);
        Assert.Equal("optim.lrr", err.Path);
        Assert.Equal(3, err.Position!.Line);
        Assert.Equal("optim.lrr: unknown key (did you mean 'lr'?); known keys: lr, betas, weight_decay (train.yaml:3)", err.ToString());

        // Far from every key: no suggestion, but the known keys are listed.
        var far = Assert.Single(Fails("method: {name: lora, rank: 8}").Errors);
        Assert.Equal("method.rank: unknown key; known keys: name, r, alpha, dropout, use_rslora, bias, targets (train.yaml:1)", far.ToString());
    }

    [Fact]
    public void WrongTypesAreReported()
    {
        Assert.Contains("steps: expected an integer, got 'abc' (train.yaml:1)", Fails("steps: abc").Message);
        Assert.Contains("steps: expected an integer, got '1.5'", Fails("steps: 1.5").Message);
        Assert.Contains("steps: integer out of range, got '99999999999'", Fails("steps: 99999999999").Message);
        Assert.Contains("optim.lr: expected a number, got a list (train.yaml:2)", Fails("optim:\n  lr: [1]").Message);
        Assert.Contains("optim.betas: expected a list, got '0.9'", Fails("optim: {betas: 0.9}").Message);
        Assert.Contains("optim.betas.1: expected a number, got 'x'", Fails("optim: {betas: [0.9, x]}").Message);
        Assert.Contains("model: expected a mapping, got '3'", Fails("model: 3").Message);
        Assert.Contains("name: expected a string, got a mapping", Fails("name: {a: 1}").Message);
        Assert.Contains("tags.team: expected a string, got a list", Fails("tags: {team: [a]}").Message);
        Assert.Contains("method.use_rslora: expected true or false, got 'yes'", Fails("method: {use_rslora: yes}").Message);
        Assert.Contains("steps: expected an integer, got null", Fails("steps:").Message);
        Assert.Contains("name: expected a string, got null (write \"\" for an empty string)", Fails("name: ~").Message);
        Assert.Null(Bind("model: {path: null}\nia3_init: ~\ngroups:").Model.Path); // nullable properties take null
        Assert.Contains("expected a mapping, got a list (train.yaml:1)", Fails("[1, 2]").Message);
    }

    [Fact]
    public void EnumErrorListsAllowedValues()
    {
        var err = Assert.Single(Fails("model:\n  dtype: bfloat61").Errors);
        Assert.Equal("model.dtype: expected one of: float32, bfloat16, float16, got 'bfloat61' (did you mean 'bfloat16'?) (train.yaml:2)", err.ToString());
    }

    [Fact]
    public void EveryErrorIsReportedInOneException()
    {
        var e = Fails("""
            model:
              dtype: fp8
            optim:
              lr: abc
              momentum: 0.9
            steps: -1
            color: red
            """, "method.r=many");
        // File order, then the command line, then values written nowhere (eval_every's default now exceeds steps).
        Assert.Equal(["model.dtype", "optim.lr", "optim.momentum", "steps", "color", "method.r", "eval_every"], e.Errors.Select(x => x.Path));
        Assert.StartsWith("invalid configuration (7 errors):", e.Message);
        Assert.Contains("\n  optim.lr: expected a number, got 'abc' (train.yaml:4)", e.Message);
        Assert.Contains("\n  steps: must be >= 1 (got -1) (train.yaml:6)", e.Message);
        Assert.Contains("\n  method.r: expected an integer, got 'many' (from command line)", e.Message);
    }

    [Fact]
    public void ValidationHooksReportUnderTheRecordPath()
    {
        var e = Fails("""
            optim:
              betas: [0.9, 0.99, 0.999]
            groups:
              head: {betas: []}
            eval_every: 500
            """);
        Assert.Equal([
            "optim.betas: must have 2 values (got 3) (train.yaml:2)",
            "groups.head.betas: must have 2 values (got 0) (train.yaml:4)",
            "eval_every: must be <= steps (100), got 500 (train.yaml:5)",
        ], e.Errors.Select(x => x.ToString()));
    }

    [Fact]
    public void ValidationSkipsValuesThatFailedToBind()
    {
        // betas could not be bound, so the default (valid) list stays and no misleading second error appears.
        var err = Assert.Single(Fails("optim: {betas: [0.5, b, 0.7]}").Errors);
        Assert.Equal("optim.betas.1", err.Path);
    }

    [Fact]
    public void RangeAttributesCheckBounds()
    {
        Assert.Equal("optim.lr: must be > 0 (got 0) (train.yaml:2)", Assert.Single(Fails("optim:\n  lr: 0").Errors).ToString());
        Assert.Equal("optim.lr: must be > 0 (got -0.5) (from command line)", Assert.Single(Fails("", "optim.lr=-0.5").Errors).ToString());
        Assert.Equal("method.dropout: must be in [0, 1) (got 1) (train.yaml:1)", Assert.Single(Fails("method: {dropout: 1}").Errors).ToString());
        Assert.Equal("method.r: must be >= 1 (got 0) (train.yaml:1)", Assert.Single(Fails("method: {r: 0}").Errors).ToString());
        Assert.Equal(0.5, Assert.IsType<TestLora>(Bind("method: {dropout: 0.5}").Method).Dropout);
    }

    [Fact]
    public void PolymorphicSectionChoosesTheVariant()
    {
        var p = Assert.IsType<TestPrompt>(Bind("method: {name: prompt, num_virtual_tokens: 10, init_text: Classify}").Method);
        Assert.Equal((10, "Classify"), (p.NumVirtualTokens, p.InitText));
        // Without the discriminator the default's variant is kept and its other defaults survive.
        var l = Assert.IsType<TestLora>(Bind("method: {r: 16}").Method);
        Assert.Equal((16, 16.0), (l.R, l.Alpha));
        // Keys of another variant are unknown here.
        Assert.Contains("method.r: unknown key; known keys: name, num_virtual_tokens, init_text", Fails("method: {name: prompt, r: 8}").Message);
    }

    [Fact]
    public void PolymorphicUnknownOrMissingDiscriminator()
    {
        Assert.Equal("method.name: unknown name 'lorra'; known: lora, prompt (did you mean 'lora'?) (train.yaml:2)",
            Assert.Single(Fails("method:\n  name: lorra\n  r: 8").Errors).ToString());
        Assert.Equal("method.name: unknown name 'adapter'; known: lora, prompt (from command line)",
            Assert.Single(Fails("", "method.name=adapter").Errors).ToString());
        Assert.Contains("method: expected a mapping with 'name' (one of: lora, prompt), got 'lora'", Fails("method: lora").Message);

        var types = Methods;
        Assert.IsType<TestPrompt>(ConfigBinder.BindPolymorphic<TestMethod>(Yaml("name: PROMPT"), "name", types));
        var missing = Assert.Throws<ConfigException>(() => ConfigBinder.BindPolymorphic<TestMethod>(Yaml("r: 8"), "name", types));
        Assert.Equal("missing 'name' (one of: lora, prompt) (train.yaml:1)", Assert.Single(missing.Errors).ToString());
        Assert.Throws<ArgumentException>(() => ConfigBinder.BindPolymorphic<TestMethod>(Yaml(""), "name", new Dictionary<string, Type> { ["x"] = typeof(TestOptim) }));
    }

    [Fact]
    public void YamlSyntaxErrorNamesFileAndLine()
    {
        var dir = TestPaths.NewTempDir("peftlab-config");
        var path = Path.Combine(dir, "broken.yaml");
        File.WriteAllText(path, "steps: 10\noptim:\n  betas: [0.9, 0.99\nmodel: {}\n");
        var e = Assert.Throws<ConfigException>(() => ConfigBinder.Load<TestTrain>(path));
        var err = Assert.Single(e.Errors);
        Assert.StartsWith("invalid YAML: ", err.Message);
        Assert.Equal(path, err.Position!.File);
        Assert.InRange(err.Position.Line, 3, 4);
        Assert.Contains($"({path}:{err.Position.Line})", e.Message);

        File.WriteAllText(path, "steps: 1\nsteps: 2\n");
        var dup = Assert.Single(Assert.Throws<ConfigException>(() => ConfigBinder.Load<TestTrain>(path)).Errors);
        Assert.Contains("steps", dup.Message);
        Assert.Equal(2, dup.Position!.Line);

        Assert.Contains("config file not found: ", Assert.Throws<ConfigException>(() => ConfigBinder.Load<TestTrain>(Path.Combine(dir, "nope.yaml"))).Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void LoadAppliesDefaultsThenFileThenOverrides()
    {
        Register();
        var dir = TestPaths.NewTempDir("peftlab-config");
        var path = Path.Combine(dir, "train.yaml");
        File.WriteAllText(path, "steps: 200\noptim: {lr: 0.1}\n");
        var c = ConfigBinder.Load<TestTrain>(path, ["optim.lr=0.2"]);
        Assert.Equal((200, 0.2, 0.0), (c.Steps, c.Optim.Lr, c.Optim.WeightDecay));
        Assert.Equal(7, ConfigBinder.Load<TestTrain>(null, ["steps=7", "eval_every=7"]).Steps);
        var err = Assert.Single(Assert.Throws<ConfigException>(() => ConfigBinder.Load<TestTrain>(path, ["optim.lrr=1"])).Errors);
        Assert.Equal("optim.lrr: unknown key (did you mean 'lr'?); known keys: lr, betas, weight_decay (from command line)", err.ToString());
        Directory.Delete(dir, true);
    }

    [Fact]
    public void SnakeCaseNames()
    {
        Assert.Equal("num_virtual_tokens", ConfigSchema.SnakeCase("NumVirtualTokens"));
        Assert.Equal("use_rslora", ConfigSchema.SnakeCase("UseRslora"));
        Assert.Equal("r", ConfigSchema.SnakeCase("R"));
        Assert.Equal("ia3", ConfigSchema.SnakeCase("IA3"));
        Assert.Equal("max_lr", ConfigSchema.SnakeCase("MaxLR"));
        Assert.Equal("http_server", ConfigSchema.SnakeCase("HTTPServer"));
        Assert.Equal("top5_acc", ConfigSchema.SnakeCase("Top5Acc"));
        Assert.Equal("lora_only", ConfigSchema.SnakeCase("LoraOnly"));
    }
}
