using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>
/// The fused batch-1 decode step against the module path, step by step on the same tokens: the Llama (GQA) and
/// Qwen2 (q/k/v bias, tied head) fixtures and the real pretrained stories260K, float32 and bf16; and the calls it
/// must leave to the module path.
/// </summary>
[Collection("study processes")]   // sets the process-wide thread count
public sealed class SingleRowStepTests(ITestOutputHelper output)
{
    private const int Steps = 12;

    public static IEnumerable<object[]> Cases() =>
        from model in new[] { "llama-gqa", "qwen2-tied-bias", "stories260K" }
        from dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 }
        select new object[] { model, dtype };

    private static string Dir(string model) =>
        model == "stories260K" ? Path.Combine(TestPaths.Shared, "fixtures", "real", "stories260K") : Fixtures.Dir(model);

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedStepsMatchTheModulePath(string name, ScalarType dtype)
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        using var threads = new ThreadCount(2);
        using var model = HfModel.Load(Dir(name), dtype);
        model.eval();
        using var noGrad = no_grad();
        var c = model.Config;
        var prompt = randint(0, c.VocabSize, [1, 9], generator: new Generator(5), dtype: ScalarType.Int64);
        using var fusedCache = new KvCache(c.NumLayers, 1, c.NumKeyValueHeads, 9 + Steps, c.HeadDim, dtype, CPU);
        using var plainCache = new KvCache(c.NumLayers, 1, c.NumKeyValueHeads, 9 + Steps, c.HeadDim, dtype, CPU);
        long next = model.Forward(prompt, cache: fusedCache, mode: LogitsMode.Last).argmax(-1).item<long>();
        model.Forward(prompt, cache: plainCache, mode: LogitsMode.Last);
        double worst = 0, scale = 0;
        using (StreamedGemv.SingleRowDecoding())
        {
            for (int i = 0; i < Steps; i++)
            {
                using var step = NewDisposeScope();
                var ids = tensor(new[] { next }, [1, 1]);
                var mask = ones([1, fusedCache.Length + 1], dtype: ScalarType.Int64);
                long taken = SingleRowStep.Taken;
                long live = TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
                var fused = model.Forward(ids, mask, cache: fusedCache, mode: LogitsMode.Last);
                Assert.Equal(taken + 1, SingleRowStep.Taken);
                Assert.Equal(live + 1, TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount); // the logits only
                SingleRowStep.Enabled = false;
                Tensor plain;
                try { plain = model.Forward(ids, mask, cache: plainCache, mode: LogitsMode.Last); }
                finally { SingleRowStep.Enabled = true; }
                Assert.Equal(taken + 1, SingleRowStep.Taken);
                Assert.Equal(plain.dtype, fused.dtype);
                Assert.Equal(plain.shape, fused.shape);
                worst = Math.Max(worst, Fixtures.MaxAbsDiff(fused, plain));
                scale = Math.Max(scale, plain.abs().max().to_type(ScalarType.Float32).item<float>());
                next = fused.argmax(-1).item<long>();
            }
        }
        Assert.Equal(fusedCache.Length, plainCache.Length);
        // float32: summation order only; bf16: that order flipping a rounding now and then, carried through the layers
        double tol = dtype == ScalarType.Float32 ? 1e-4 : 1.5e-2;
        output.WriteLine($"{name} {dtype}: max |logit diff| over {Steps} fused steps {worst:E2} at logit scale {scale:F2}");
        Assert.True(worst <= tol * Math.Max(1, scale), $"max |logit diff| {worst} at logit scale {scale}");
        // the caches hold every layer's keys and values: deeper layers carry more of the rounding flips
        double cacheTol = dtype == ScalarType.Float32 ? 1e-4 : 4e-2;
        double worstCache = 0;
        for (int l = 0; l < c.NumLayers; l++)
        {
            var (fk, fv) = fusedCache.Storage(l);
            var (pk, pv) = plainCache.Storage(l);
            foreach (var (f, p) in new[] { (fk, pk), (fv, pv) })
            {
                double rel = Fixtures.MaxAbsDiff(f, p) / Math.Max(1, p.abs().max().to_type(ScalarType.Float32).item<float>());
                worstCache = Math.Max(worstCache, rel);
                Assert.True(rel <= cacheTol, $"layer {l}: cached keys or values differ by {rel:E2} of their scale");
            }
        }
        output.WriteLine($"{name} {dtype}: max cache difference {worstCache:E2} of its scale");
    }

    [Fact]
    public void AWrappedProjectionAMaskedKeyOrNoDecodingScopeTakeTheModulePath()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        using var threads = new ThreadCount(2);
        using var noGrad = no_grad();
        var model = Fixtures.Load("llama-gqa");
        model.eval();
        var c = model.Config;
        var prompt = randint(0, c.VocabSize, [1, 6], generator: new Generator(3), dtype: ScalarType.Int64);
        long Run(Func<KvCache, Tensor> step)
        {
            using var cache = new KvCache(c.NumLayers, 1, c.NumKeyValueHeads, 8, c.HeadDim, ScalarType.Float32, CPU);
            model.Forward(prompt, cache: cache, mode: LogitsMode.Last);
            long before = SingleRowStep.Taken;
            using (StreamedGemv.SingleRowDecoding()) step(cache);
            return SingleRowStep.Taken - before;
        }
        var one = tensor(new[] { 4L }, [1, 1]);
        Assert.Equal(1, Run(cache => model.Forward(one, cache: cache, mode: LogitsMode.Last)));
        // a padded key: the mask must reach the attention
        Assert.Equal(0, Run(cache => model.Forward(one, tensor(new long[] { 0, 1, 1, 1, 1, 1, 1 }, [1, 7]), cache: cache, mode: LogitsMode.Last)));
        // explicit positions
        Assert.Equal(0, Run(cache => model.Forward(one, positionIds: tensor(new[] { 9L }, [1, 1]), cache: cache, mode: LogitsMode.Last)));
        // outside the decoding scope nothing is fused
        using (var cache = new KvCache(c.NumLayers, 1, c.NumKeyValueHeads, 8, c.HeadDim, ScalarType.Float32, CPU))
        {
            model.Forward(prompt, cache: cache, mode: LogitsMode.Last);
            long before = SingleRowStep.Taken;
            model.Forward(one, cache: cache, mode: LogitsMode.Last);
            Assert.Equal(before, SingleRowStep.Taken);
        }
        // an adapter wrapping q/v: the module path, so the adapter acts
        PeftModel.LoadAdapter(model, Path.Combine(Fixtures.Dir("llama-gqa"), "adapters", "lora-qv"));
        Assert.Equal(0, Run(cache => model.Forward(one, cache: cache, mode: LogitsMode.Last)));
    }
}
