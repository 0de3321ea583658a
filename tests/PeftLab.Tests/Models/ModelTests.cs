using PeftLab.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

public sealed class ModelTests
{
    private static Tensor Logits(CausalLM m, Tensor ids, Tensor? mask = null, Tensor? pos = null, Tensor? seg = null)
    {
        m.eval();
        using var g = no_grad();
        return m.Forward(ids, mask, pos, seg);
    }

    [Fact]
    public void LiveTensorCountStaysFlatOverForwardTrainingAndGeneration()
    {
        var model = TinyModels.Create(TinyModels.Llama);
        var ids = TinyModels.Tokens(2, 12, TinyModels.Llama.VocabSize).DetachFromDisposeScope();
        using var opt = new PeftLab.Training.AdamW(model.named_parameters().Select(x => (x.name, x.parameter)), _ => true, 0.9, 0.999, 1e-8, 0.01);
        void Step()
        {
            // as in the trainer: forward/backward in a scope, optimiser calls outside any scope
            using (NewDisposeScope())
            {
                model.train();
                TinyModels.LmLoss(model.Forward(ids), ids).backward();
            }
            opt.GradNorm();
            opt.ScaleGradients(0.5);
            opt.Step(1e-3);
            opt.ZeroGrad();
            using var scope = NewDisposeScope();
            using (no_grad()) model.eval();
            _ = model.Forward(ids);
            TextGenerator.Generate(model, [[4, 5, 6], [7]], new SamplingConfig(MaxNewTokens: 5), [], 0);
            TextGenerator.Generate(model, [[4, 5, 6]], new SamplingConfig(MaxNewTokens: 5, Greedy: false, TopK: 5, TopP: 0.9, Seed: 1), [], 0);
        }
        for (int i = 0; i < 3; i++) Step();   // optimizer state and grads are created in the first steps
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        for (int i = 0; i < 30; i++) Step();
        long after = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        Assert.Equal(before, after);
    }

    [Fact]
    public void LeftPaddedBatchEqualsUnpaddedSequences()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Qwen2);
        long[] a = [5, 6, 7, 8, 9], b = [10, 11, 12];
        var batch = tensor(new long[] { 5, 6, 7, 8, 9, 0, 0, 10, 11, 12 }, [2, 5]);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1 }, [2, 5]);
        var padded = Logits(model, batch, mask);
        var la = Logits(model, tensor(a, [1, 5]));
        var lb = Logits(model, tensor(b, [1, 3]));
        Assert.True(Fixtures.MaxAbsDiff(padded[0], la[0]) < 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(padded[1].narrow(0, 2, 3), lb[0]) < 1e-5);
    }

    [Fact]
    public void PackedSequencesEqualSeparateForwards()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        long[] a = [5, 6, 7, 8], b = [9, 10, 11];
        var packed = tensor(new long[] { 5, 6, 7, 8, 9, 10, 11 }, [1, 7]);
        var positions = tensor(new long[] { 0, 1, 2, 3, 0, 1, 2 }, [1, 7]);
        var segments = tensor(new long[] { 0, 0, 0, 0, 1, 1, 1 }, [1, 7]);
        var lp = Logits(model, packed, pos: positions, seg: segments);
        Assert.True(Fixtures.MaxAbsDiff(lp[0].narrow(0, 0, 4), Logits(model, tensor(a, [1, 4]))[0]) < 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(lp[0].narrow(0, 4, 3), Logits(model, tensor(b, [1, 3]))[0]) < 1e-5);
        // without segment ids the second example would see the first one
        var leaky = Logits(model, packed, pos: positions);
        Assert.True(Fixtures.MaxAbsDiff(leaky[0].narrow(0, 4, 3), Logits(model, tensor(b, [1, 3]))[0]) > 1e-4);
    }

    [Fact]
    public void SlidingWindowLimitsAttention()
    {
        using var scope = NewDisposeScope();
        var full = TinyModels.Create(TinyModels.Llama);
        var windowed = TinyModels.Create(TinyModels.Llama with { Family = DecoderFamily.Mistral, SlidingWindow = 3 });
        var ids = TinyModels.Tokens(1, 8, 64);
        var lf = Logits(full, ids);
        var lw = Logits(windowed, ids);
        Assert.True(Fixtures.MaxAbsDiff(lf[0].narrow(0, 0, 3), lw[0].narrow(0, 0, 3)) < 1e-6);  // first 3 positions see the same keys
        Assert.True(Fixtures.MaxAbsDiff(lf[0].narrow(0, 5, 3), lw[0].narrow(0, 5, 3)) > 1e-4);
    }

    [Fact]
    public void Bf16CheckpointLoadsInBothComputeDtypes()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            var model = TinyModels.Create(TinyModels.Llama);
            var ids = TinyModels.Tokens(2, 10, 64);
            HfModel.Save(model, dir, saveDtype: ScalarType.BFloat16);
            using (var f = PeftLab.Checkpoints.SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
                Assert.All(f.Tensors.Values, t => Assert.Equal(PeftLab.Checkpoints.SafeDType.BF16, t.DType));
            var reference = Logits(model, ids);
            var asF32 = HfModel.Load(dir, ScalarType.Float32);
            Assert.Equal(ScalarType.Float32, asF32.EmbeddingWeight.dtype);
            var asBf16 = HfModel.Load(dir, ScalarType.BFloat16);
            Assert.Equal(ScalarType.BFloat16, asBf16.EmbeddingWeight.dtype);
            // weights rounded to bf16: logits stay close; bf16 compute adds its own rounding
            Assert.True(Fixtures.MaxAbsDiff(reference, Logits(asF32, ids)) < 0.02);
            Assert.True(Fixtures.MaxAbsDiff(reference, Logits(asBf16, ids)) < 0.1);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ShardedCheckpointRoundTrips()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            var model = TinyModels.Create(TinyModels.Qwen2);
            HfModel.Save(model, dir, maxShardBytes: 16_000);
            Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
            Assert.True(Directory.GetFiles(dir, "model-*-of-*.safetensors").Length > 2);
            var ids = TinyModels.Tokens(2, 6, 64);
            Assert.Equal(0.0, Fixtures.MaxAbsDiff(Logits(model, ids), Logits(HfModel.Load(dir), ids)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void RopeParametersAndLlama3ScalingParse()
    {
        var legacy = DecoderConfig.Parse("""
            {"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,
             "rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """, "legacy");
        var modern = DecoderConfig.Parse("""
            {"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,
             "rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """, "modern");
        Assert.Equal(legacy.Rope, modern.Rope);
        Assert.Equal(RopeScalingKind.Llama3, modern.Rope.Kind);
        var plain = Rotary.InverseFrequencies(8, new RopeConfig(500000.0));
        var scaled = Rotary.InverseFrequencies(8, modern.Rope);
        Assert.Equal(plain[0], scaled[0]);                  // high frequency (short wavelength) unchanged
        Assert.Equal(plain[3] / 8, scaled[3], 6);           // wavelength 2π/f ≈ 2π·500000^(6/8) > 8192: divided by factor
        Assert.Equal(1.0 / Math.Pow(500000.0, 2.0 / 8), plain[1], 6);
    }
}
