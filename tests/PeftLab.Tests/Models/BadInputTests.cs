using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>Bad model folders give clear errors that name what is wrong.</summary>
public sealed class BadInputTests
{
    private static string CopyFixture(string fixture)
    {
        var dir = TestPaths.NewTempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Dir(fixture))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private static void RewriteWeights(string dir, Func<IReadOnlyDictionary<string, Tensor>, IEnumerable<(string Name, Tensor Value)>> edit)
    {
        using var scope = NewDisposeScope();
        Dictionary<string, Tensor> tensors;
        using (var f = CheckpointDirectory.Open(dir)) tensors = TensorConversions.ToTensors(f);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), edit(tensors).Select(x => TensorConversions.FromTensor(x.Name, x.Value)).ToList());
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var dir = CopyFixture("llama-gqa");
        RewriteWeights(dir, t => t.Where(kv => kv.Key != "model.layers.1.mlp.up_proj.weight").Select(kv => (kv.Key, kv.Value)));
        var e = Assert.Throws<CheckpointMismatchException>(() => HfModel.Load(dir));
        Assert.Contains("missing in checkpoint: 'model.layers.1.mlp.up_proj.weight' (model expects shape [160, 64])", e.Message);
    }

    [Fact]
    public void WrongShapeNamesBothSides()
    {
        var dir = CopyFixture("llama-gqa");
        RewriteWeights(dir, t => t.Select(kv => (kv.Key, kv.Key == "model.norm.weight" ? ones(65) : kv.Value)));
        var e = Assert.Throws<CheckpointMismatchException>(() => HfModel.Load(dir));
        Assert.Contains("shape mismatch for 'model.norm.weight': checkpoint [65] vs model [64]", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        var dir = CopyFixture("llama-gqa");
        RewriteWeights(dir, t => t.Select(kv => (kv.Key, kv.Value)).Append(("model.layers.0.extra.weight", ones(3))));
        var e = Assert.Throws<CheckpointMismatchException>(() => HfModel.Load(dir));
        Assert.Contains("unexpected in checkpoint: 'model.layers.0.extra.weight' [3]", e.Message);
    }

    [Fact]
    public void MalformedConfigJson()
    {
        var dir = CopyFixture("llama-gqa");
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"llama\", \"vocab_size\": 97,");
        var e = Assert.Throws<ModelConfigException>(() => HfModel.Load(dir));
        Assert.Contains("malformed config.json", e.Message);
        Assert.Contains(dir, e.Message);
    }

    [Fact]
    public void ConfigWithWrongTypeAndMissingKey()
    {
        var e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse("""{"model_type":"llama","vocab_size":"many","hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}""", "c.json"));
        Assert.Contains("'vocab_size' must be an integer", e.Message);
        e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse("""{"model_type":"llama","vocab_size":10}""", "c.json"));
        Assert.Contains("missing required key 'hidden_size'", e.Message);
        e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse("""{"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2}""", "c.json"));
        Assert.Contains("must be a multiple of num_key_value_heads", e.Message);
    }

    [Fact]
    public void UnsupportedModelTypeListsSupported()
    {
        var dir = CopyFixture("llama-gqa");
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "gpt2", "vocab_size": 97}""");
        var e = Assert.Throws<ModelConfigException>(() => HfModel.Load(dir));
        Assert.Contains("unsupported model_type 'gpt2'", e.Message);
        Assert.Contains("llama, mistral, qwen2", e.Message);
    }

    [Fact]
    public void UnsupportedRopeScaling()
    {
        var e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse("""
            {"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"yarn","factor":4}}
            """, "c.json"));
        Assert.Contains("rope scaling type 'yarn' is not supported; supported: default, linear, llama3", e.Message);
    }

    [Fact]
    public void MissingTokenizerJson()
    {
        var e = Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(Fixtures.Dir("llama-gqa")));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(Fixtures.Dir("llama-gqa"), e.Message);
    }

    [Fact]
    public void CliReportsErrorsWithoutStackTrace()
    {
        var r = CliRunner.Run("generate", "--model", "/nonexistent/model", "--input-ids", "1 2", "--output-format", "ids");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("model folder not found: /nonexistent/model", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        r = CliRunner.Run("generate", "--model", Fixtures.Dir("llama-gqa"), "--input-ids", "1 x", "--output-format", "ids");
        Assert.Contains("'x' is not an integer token id", r.Stderr);
    }
}
