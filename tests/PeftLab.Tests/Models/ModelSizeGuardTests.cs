using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftLab.Models;
using PeftLab.Runtime;

namespace PeftLab.Tests.Models;

/// <summary>A config.json that does not fit its checkpoint, or the machine, is refused before anything is allocated.</summary>
public sealed class ModelSizeGuardTests
{
    public static IEnumerable<object[]> Presets() => PeftLab.Models.Presets.Decoder.Keys.Where(k => k != "medium").Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Presets))]
    public void TheConfigsParameterCountIsTheModels(string preset)
    {
        var config = PeftLab.Models.Presets.Get(preset);
        using var model = new CausalLM(config, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(model.parameters().Sum(p => p.numel()), (long)config.ParameterCount);
    }

    [Theory]
    [MemberData(nameof(Fixtures.Models), MemberType = typeof(Fixtures))]
    public void TheFixturesParameterCountsMatchToo(string fixture)
    {
        var config = DecoderConfig.Load(Fixtures.Dir(fixture));
        using var model = HfModel.Load(Fixtures.Dir(fixture));
        Assert.Equal(model.parameters().Sum(p => p.numel()), (long)config.ParameterCount);
    }

    public static IEnumerable<object[]> T5Presets() => PeftLab.Models.T5Presets.All.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(T5Presets))]
    public void TheT5ConfigsParameterCountIsTheModels(string preset)
    {
        var config = PeftLab.Models.T5Presets.Get(preset);
        if (config.ParameterCount > 50e6) return;   // only the small ones are built here
        using var model = new T5ForConditionalGeneration(config, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
        Assert.Equal(model.parameters().Sum(p => p.numel()), (long)config.ParameterCount);
    }

    [Fact]
    public void AT5ConfigLargerThanItsCheckpointIsRefusedBeforeAllocating()
    {
        var src = Path.Combine(TestPaths.T5Fixtures, "t5-v1_1-lm-adapt-tiny");
        var dir = TestPaths.NewTempDir("size-guard-t5");
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal((long)T5Config.Load(dir).ParameterCount, HfT5.Load(dir).parameters().Sum(p => p.numel()));
        config["d_ff"] = 100_000_000;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var e = Assert.Throws<CheckpointMismatchException>(() => HfT5.Load(dir));
        Assert.Contains("does not belong to these weights", e.Message);
    }

    private static string WithConfig(string fixture, Action<JsonObject> edit)
    {
        var dir = TestPaths.NewTempDir("size-guard");
        foreach (var f in Directory.GetFiles(Fixtures.Dir(fixture))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    }

    [Theory]
    [InlineData("hidden_size", 8192)]
    [InlineData("intermediate_size", 1_000_000)]
    [InlineData("num_hidden_layers", 4000)]
    [InlineData("vocab_size", 5_000_000)]
    public void AConfigLargerThanItsCheckpointIsRefusedBeforeAllocating(string key, int value)
    {
        var dir = WithConfig("llama-gqa", c =>
        {
            c[key] = value;
            if (key == "hidden_size") { c["head_dim"] = 16; }
        });
        long before = Process.GetCurrentProcess().WorkingSet64;
        var e = Assert.Throws<CheckpointMismatchException>(() => HfModel.Load(dir));
        Assert.Contains("config.json describes a model of", e.Message);
        Assert.Contains("does not belong to these weights", e.Message);
        Assert.True(Process.GetCurrentProcess().WorkingSet64 - before < 500L << 20, "allocated before refusing");
    }

    [Theory]
    [InlineData(1_000_000_000)]
    [InlineData(200_000)]
    public void AnAbsurdSizeIsRefusedByInitModelAndLeavesNoFolder(int hidden)
    {
        var cfg = Path.Combine(TestPaths.NewTempDir("size-guard-cfg"), "config.json");
        File.WriteAllText(cfg, new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 2048, ["hidden_size"] = hidden, ["intermediate_size"] = 512,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["max_position_embeddings"] = 128,
        }.ToJsonString());
        var outDir = Path.Combine(TestPaths.NewTempDir("size-guard-out"), "m");
        var r = CliRunner.Run(["init-model", "--config", cfg, "--out", outDir]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: a llama model of", r.Stderr);
        Assert.Contains("available", r.Stderr);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void GenerateWithAnAbsurdConfigSaysWhichSideIsWrong()
    {
        var dir = WithConfig("llama-gqa", c => c["hidden_size"] = 1_000_000_000);
        var r = CliRunner.Run(["generate", "--model", dir, "--input-ids", "1 2 3", "--max-new-tokens", "2"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not belong to these weights", r.Stderr);
    }

    [Fact]
    public void TheBudgetRefusesMoreThanIsAvailable()
    {
        var e = Assert.Throws<MemoryBudgetException>(() => MemoryBudget.EnsureFits(MemoryBudget.AvailableBytes() * 2.0, "a test model"));
        Assert.Contains("a test model needs about", e.Message);
        MemoryBudget.EnsureFits(1 << 20, "a small model");
    }
}
