using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Built-in T5 presets: a complete Hugging Face folder from <see cref="T5Init.WriteModelFolder(string, string, long, IEnumerable{string}?)"/>.</summary>
public sealed class T5PresetTests
{
    private static readonly string[] Corpus = ["the cat sat on the mat", "translate English to German: the house is small", "a small model for tests"];

    [Fact]
    public void PresetShapesAreTheDocumentedOnes()
    {
        var tiny = T5Presets.Get("t5-tiny");
        Assert.Equal((512, 128, 32, 512, 4, 4, 4), (tiny.VocabSize, tiny.HiddenSize, tiny.HeadDim, tiny.FeedForwardSize, tiny.NumHeads, tiny.NumLayers, tiny.NumDecoderLayers));
        var small = T5Presets.Get("t5-small-shape");
        Assert.Equal((8192, 384, 64, 1024, 6, 6, 6), (small.VocabSize, small.HiddenSize, small.HeadDim, small.FeedForwardSize, small.NumHeads, small.NumLayers, small.NumDecoderLayers));
        Assert.All(new[] { tiny, small }, c => Assert.True(c.IsGated && !c.TieWordEmbeddings && c.DecoderStartTokenId == c.PadTokenId));
        Assert.Contains("t5-tiny", Assert.Throws<ArgumentException>(() => T5Presets.Get("t5-huge")).Message);
    }

    [Fact]
    public void WrittenFolderLoadsWithTokenizerAndGenerates()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var config = T5Init.WriteModelFolder(dir, "t5-tiny", seed: 5, Corpus);
            var loaded = T5Config.Load(dir);
            Assert.Equal(config.ToHfJson().ToJsonString(), loaded.ToHfJson().ToJsonString());
            Assert.Equal(loaded.PadTokenId, loaded.DecoderStartTokenId);

            using var tok = HfTokenizer.Load(dir);
            Assert.Equal(config.VocabSize, tok.VocabSize);
            Assert.Equal(config.PadTokenId, tok.PadId);
            Assert.Equal(config.EosTokenIds[0], tok.EosIds[0]);
            var ids = tok.Encode("the cat sat", addSpecialTokens: true);
            Assert.Equal(config.EosTokenIds[0], ids[^1]);          // T5-like: </s> appended, no BOS
            Assert.NotEqual(1, ids[0]);
            Assert.Equal("the cat sat", tok.Decode(ids));

            using var scope = NewDisposeScope();
            var model = HfT5.Load(dir);
            var output = Seq2SeqGenerator.Generate(model, [ids], new SamplingConfig(MaxNewTokens: 4), eosIds: [])[0];
            Assert.Equal(4, output.Length);
            Assert.All(output, id => Assert.InRange(id, 0, config.VocabSize - 1));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void InitialisationFollowsT5AndIsDeterministic()
    {
        using var scope = NewDisposeScope();
        var c = T5Presets.Get("t5-tiny");
        var a = new T5ForConditionalGeneration(c, CPU);
        var b = new T5ForConditionalGeneration(c, CPU);
        T5Init.InitializeWeights(a, 9);
        T5Init.InitializeWeights(b, 9);
        var sa = a.state_dict();
        foreach (var (k, t) in b.state_dict()) Assert.True(t.allclose(sa[k], rtol: 0, atol: 0), $"'{k}' differs between two inits with one seed");

        double Std(string key) => sa[key].std().item<float>();
        Assert.Equal(1.0, Std("shared.weight"), 1);
        Assert.Equal(1.0, Std("lm_head.weight"), 1);
        Assert.Equal(Math.Pow(128.0 * 32, -0.5), Std("encoder.block.0.layer.0.SelfAttention.q.weight"), 3);
        Assert.Equal(Math.Pow(128.0, -0.5), Std("decoder.block.1.layer.1.EncDecAttention.k.weight"), 2);
        Assert.Equal(Math.Pow(4.0 * 32, -0.5), Std("encoder.block.2.layer.0.SelfAttention.o.weight"), 2);
        Assert.Equal(Math.Pow(512.0, -0.5), Std("decoder.block.0.layer.2.DenseReluDense.wo.weight"), 2);
        Assert.Equal(Math.Pow(128.0, -0.5), Std("encoder.block.0.layer.1.DenseReluDense.wi_1.weight"), 2);
        Assert.True(sa["decoder.final_layer_norm.weight"].eq(1).all().item<bool>());
    }

    [Fact]
    public void PresetConfigMustMatchTheBuiltinTokenizer()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var e = Assert.Throws<ArgumentException>(() => T5Init.WriteModelFolder(dir, T5Presets.Get("t5-tiny") with { EosTokenIds = [1] }));
            Assert.Contains("eos", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void GenerateCommandEncodesAPromptWithTheFolderTokenizer()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            T5Init.WriteModelFolder(dir, "t5-tiny", seed: 5, Corpus);
            var (code, stdout, stderr) = T5CliTests.RunCli("generate", "--model", dir, "--prompt", "the cat sat", "--max-new-tokens", "3", "--output-format", "ids");
            Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
            var printed = stdout.Trim().Split(' ').Select(int.Parse).ToArray();
            using var tok = HfTokenizer.Load(dir);
            using var scope = NewDisposeScope();
            var expected = Seq2SeqGenerator.Generate(HfT5.Load(dir), [tok.Encode("the cat sat", addSpecialTokens: true)], new SamplingConfig(MaxNewTokens: 3), tok.EosIds.ToArray(), tok.PadId)[0];
            Assert.Equal(expected, printed);
        }
        finally { Directory.Delete(dir, true); }
    }
}
