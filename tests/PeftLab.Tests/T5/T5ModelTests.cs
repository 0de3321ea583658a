using PeftLab.Checkpoints;
using PeftLab.Models;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Loading (tied embedding copies), the tied head, relative position buckets and generation details of the T5 model.</summary>
public sealed class T5ModelTests
{
    /// <summary>A copy of the fixture checkpoint with extra tensors (name → tensor built from shared.weight).</summary>
    private static string FixtureWith(params (string Name, Func<Tensor, Tensor> FromShared)[] extra)
    {
        var dir = TestPaths.NewTempDir();
        File.Copy(Path.Combine(T5Fixtures.Dir, "config.json"), Path.Combine(dir, "config.json"));
        using var scope = NewDisposeScope();
        using var file = SafeTensorsFile.Open(Path.Combine(T5Fixtures.Dir, "model.safetensors"));
        var shared = TensorConversions.ToTensor(file, "shared.weight");
        var entries = file.Names.Select(n => TensorEntry.FromFile(file, n))
            .Concat(extra.Select(e => TensorConversions.FromTensor(e.Name, e.FromShared(shared))))
            .ToList();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), entries);
        return dir;
    }

    private static Tensor FixtureLogits(T5ForConditionalGeneration model)
    {
        using var noGrad = no_grad();
        model.eval();
        return model.Forward(T5Fixtures.Expected("input_ids"), T5Fixtures.Expected("decoder_input_ids"));
    }

    [Fact]
    public void CheckpointWithTiedEmbedCopiesLoads()
    {
        var dir = FixtureWith(("encoder.embed_tokens.weight", s => s.clone()), ("decoder.embed_tokens.weight", s => s.clone()));
        try
        {
            using var scope = NewDisposeScope();
            var diff = Fixtures.MaxAbsDiff(FixtureLogits(HfT5.Load(dir)), T5Fixtures.Expected("logits"));
            Assert.True(diff < 1e-4, $"max diff {diff}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void DifferingEmbedCopyFailsNamingBothTensors()
    {
        var dir = FixtureWith(("encoder.embed_tokens.weight", s => s.clone()), ("decoder.embed_tokens.weight", s => s + 1e-3));
        try
        {
            var e = Assert.Throws<CheckpointMismatchException>(() => HfT5.Load(dir));
            Assert.Contains("'decoder.embed_tokens.weight'", e.Message);
            Assert.Contains("'shared.weight'", e.Message);
            Assert.Contains("differs", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void WrongShapedEmbedCopyAndForeignKeysAreReported()
    {
        var dir = FixtureWith(("encoder.embed_tokens.weight", s => s.narrow(0, 0, 10).clone()), ("encoder.block.0.layer.0.SelfAttention.bias", s => s[0].clone()));
        try
        {
            var e = Assert.Throws<CheckpointMismatchException>(() => HfT5.Load(dir));
            Assert.Contains("tied 'encoder.embed_tokens.weight'", e.Message);
            Assert.Contains("unexpected in checkpoint: 'encoder.block.0.layer.0.SelfAttention.bias'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ModuleNamesAreTheCheckpointKeys()
    {
        using var scope = NewDisposeScope();
        using var file = SafeTensorsFile.Open(Path.Combine(T5Fixtures.Dir, "model.safetensors"));
        var model = new T5ForConditionalGeneration(T5Config.Load(T5Fixtures.Dir));
        Assert.Equal(file.Names.OrderBy(n => n, StringComparer.Ordinal), model.state_dict().Keys.OrderBy(n => n, StringComparer.Ordinal));
    }

    [Fact]
    public void TiedHeadScalesDecoderOutputByInverseSqrtDModel()
    {
        // Original T5: logits = (d^-½ · h) Eᵀ. The same model untied, with lm_head = d^-½ · E, must give the same logits.
        using var scope = NewDisposeScope();
        var tiedConfig = T5TinyModels.ReluTied;
        var tied = T5TinyModels.Create(tiedConfig);
        var untied = new T5ForConditionalGeneration(tiedConfig with { TieWordEmbeddings = false }, CPU);
        Assert.Null(tied.state_dict().Keys.FirstOrDefault(k => k.StartsWith("lm_head", StringComparison.Ordinal)));
        using (no_grad())
        {
            var state = untied.state_dict();
            foreach (var (k, t) in tied.state_dict()) state[k].copy_(t);
            state["lm_head.weight"].copy_(tied.EmbedTokens.weight! * Math.Pow(tiedConfig.HiddenSize, -0.5));
        }
        var input = TinyModels.Tokens(2, 6, tiedConfig.VocabSize);
        var decoder = T5TinyModels.DecoderInput(2, 5, tiedConfig);
        tied.eval();
        untied.eval();
        using var noGrad = no_grad();
        var a = tied.Forward(input, decoder);
        var b = untied.Forward(input, decoder);
        Assert.True(T5TinyModels.RelDiff(a, b) < 1e-6, $"rel diff {T5TinyModels.RelDiff(a, b)}");
        // and the scaling is there: with the unscaled embedding as head the logits are √d times larger
        untied.state_dict()["lm_head.weight"].copy_(tied.EmbedTokens.weight!);
        var unscaled = untied.Forward(input, decoder);
        Assert.True(T5TinyModels.RelDiff(a * Math.Sqrt(tiedConfig.HiddenSize), unscaled) < 1e-6);
    }

    [Fact]
    public void TiedConfigAcceptsAnEqualLmHeadCopy()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            var model = T5TinyModels.Create(T5TinyModels.ReluTied);
            HfT5.Save(model, dir);
            var input = TinyModels.Tokens(1, 5, T5TinyModels.ReluTied.VocabSize);
            var decoder = T5TinyModels.DecoderInput(1, 4, T5TinyModels.ReluTied);
            using var noGrad = no_grad();
            model.eval();
            var expected = model.Forward(input, decoder);
            // rewrite the checkpoint with lm_head.weight stored as an explicit copy of shared.weight
            var path = Path.Combine(dir, "model.safetensors");
            var copy = Path.Combine(dir, "copy.safetensors");
            using (var file = SafeTensorsFile.Open(path))
            {
                var entries = file.Names.Select(n => TensorEntry.FromFile(file, n)).Append(TensorEntry.FromFile(file, "shared.weight", "lm_head.weight")).ToList();
                SafeTensorsWriter.Write(copy, entries);
            }
            File.Move(copy, path, overwrite: true);
            var reloaded = HfT5.Load(dir);
            reloaded.eval();
            Assert.True(Fixtures.MaxAbsDiff(expected, reloaded.Forward(input, decoder)) == 0);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    // bidirectional (encoder), 32 buckets, max distance 128: 16 per direction, 8 exact, the rest logarithmic up to 128
    [InlineData(true, -3, 3)]
    [InlineData(true, 0, 0)]
    [InlineData(true, 3, 19)]
    [InlineData(true, 20, 26)]     // 16 + 8 + floor(ln(20/8) / ln(16) · 8) = 16 + 8 + 2
    [InlineData(true, -200, 15)]   // capped at the last bucket of the negative half
    // causal (decoder): keys after the query share bucket 0; 16 exact
    [InlineData(false, 3, 0)]
    [InlineData(false, -3, 3)]
    [InlineData(false, -20, 17)]   // 16 + floor(ln(20/16) / ln(8) · 16) = 16 + 1
    [InlineData(false, -1000, 31)]
    public void RelativePositionBucketsMatchHandComputedValues(bool bidirectional, long relative, long bucket)
    {
        using var scope = NewDisposeScope();
        var got = T5Attention.RelativePositionBucket(tensor(new[] { relative }), bidirectional, 32, 128);
        Assert.Equal(bucket, got.item<long>());
    }

    [Fact]
    public void BatchedPaddedGenerationEqualsOneByOne()
    {
        using var scope = NewDisposeScope();
        var model = T5Fixtures.Load();
        int[][] inputs = [T5Fixtures.ExpectedIds("input_ids"), [17, 68, 33, 1], [5, 1]];
        var cfg = new SamplingConfig(MaxNewTokens: 6);
        var batched = Seq2SeqGenerator.Generate(model, inputs, cfg, eosIds: []);
        for (int i = 0; i < inputs.Length; i++)
            Assert.Equal(Seq2SeqGenerator.Generate(model, [inputs[i]], cfg, eosIds: [])[0], batched[i]);
        Assert.Equal(T5Fixtures.ExpectedIds("greedy_tokens")[..6], batched[0]);
    }

    [Fact]
    public void GenerationStopsAtEosAndIncludesIt()
    {
        using var scope = NewDisposeScope();
        var model = T5Fixtures.Load();
        var greedy = T5Fixtures.ExpectedIds("greedy_tokens");   // 9 91 51 36 ...
        var output = Seq2SeqGenerator.Generate(model, [T5Fixtures.ExpectedIds("input_ids")], new SamplingConfig(MaxNewTokens: 8), eosIds: [greedy[2]])[0];
        Assert.Equal(greedy[..3], output);
    }

    [Fact]
    public void SamplingIsSeededAndTopKOneIsGreedy()
    {
        using var scope = NewDisposeScope();
        var model = T5Fixtures.Load();
        int[][] input = [T5Fixtures.ExpectedIds("input_ids")];
        var sample = new SamplingConfig(MaxNewTokens: 8, Greedy: false, Temperature: 1.5, TopP: 0.9, Seed: 42);
        Assert.Equal(Seq2SeqGenerator.Generate(model, input, sample, eosIds: [])[0], Seq2SeqGenerator.Generate(model, input, sample, eosIds: [], useCache: false)[0]);
        var topK1 = Seq2SeqGenerator.Generate(model, input, new SamplingConfig(MaxNewTokens: 8, Greedy: false, TopK: 1, Seed: 1), eosIds: [])[0];
        Assert.Equal(T5Fixtures.ExpectedIds("greedy_tokens"), topK1);
    }

    [Fact]
    public void DefaultsComeFromTheConfig()
    {
        using var scope = NewDisposeScope();
        var model = T5Fixtures.Load();
        // config: eos 1, pad 0, decoder start 0; with no eos override the fixture's greedy tokens (no 1 among them) run to the limit
        var output = Seq2SeqGenerator.Generate(model, [T5Fixtures.ExpectedIds("input_ids")], new SamplingConfig(MaxNewTokens: 8))[0];
        Assert.Equal(T5Fixtures.ExpectedIds("greedy_tokens"), output);
    }

    [Fact]
    public void BFloat16ComputeStaysCloseToFloat32()
    {
        using var scope = NewDisposeScope();
        var model = HfT5.Load(T5Fixtures.Dir, ScalarType.BFloat16);
        var logits = FixtureLogits(model);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        var expected = T5Fixtures.Expected("logits");
        Assert.True(T5TinyModels.RelDiff(logits, expected) < 0.05, $"rel diff {T5TinyModels.RelDiff(logits, expected)}");
    }

    [Fact]
    public void MasksAreValidated()
    {
        using var scope = NewDisposeScope();
        var model = T5TinyModels.Create(T5TinyModels.Gated);
        var input = TinyModels.Tokens(2, 5, 64);
        var decoder = T5TinyModels.DecoderInput(2, 4, T5TinyModels.Gated);
        Assert.Contains("attention_mask", Assert.Throws<ArgumentException>(() => model.Forward(input, decoder, ones(2, 4, dtype: ScalarType.Int64))).Message);
        Assert.Contains("decoder_attention_mask", Assert.Throws<ArgumentException>(() => model.Forward(input, decoder, null, ones(2, 3, dtype: ScalarType.Int64))).Message);
    }
}
