using PeftLab.Models;
using PeftLab.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

[Collection("study processes")]   // sets the process-wide thread count
public sealed class StreamedGemvTests
{
    // odd sizes: in not a multiple of any vector width, out not a multiple of the crew size
    [Theory]
    [InlineData(ScalarType.Float32, 67, 45, true)]
    [InlineData(ScalarType.Float32, 256, 1030, false)]
    [InlineData(ScalarType.BFloat16, 67, 45, true)]
    [InlineData(ScalarType.BFloat16, 896, 130, false)]
    public void StreamsTheSameRowAsTheLinear(ScalarType dtype, int din, int dout, bool withBias)
    {
        TorchRuntime.EnsureInitialised();
        Assert.True(StreamedGemv.Available, "the streamed GEMV should be available on Linux x64 with SIMD");
        using var scope = NewDisposeScope();
        using var threads = new ThreadCount(2);
        var w = randn(dout, din).to_type(dtype);
        var b = withBias ? randn(dout).to_type(dtype) : null;
        var x = randn(1, 1, din).to_type(dtype);
        var expected = nn.functional.linear(x, w, b).to_type(ScalarType.Float32);
        using (StreamedGemv.SingleRowDecoding())
        {
            Assert.Equal(1, torch.get_num_threads());
            Assert.True(StreamedGemv.Accepts(w, x));
            var y = StreamedGemv.Apply(w, b, x);
            Assert.Equal(dtype, y.dtype);
            Assert.Equal(expected.shape, y.shape);
            // float32: summation order only; bf16: that order, then rounding of the result to bf16 (8 bits)
            float tol = dtype == ScalarType.Float32 ? 1e-4f : 1e-2f;
            var err = (y.to_type(ScalarType.Float32) - expected).abs().max().item<float>();
            var scale = expected.abs().max().item<float>();
            Assert.True(err <= tol * Math.Max(1, scale), $"max error {err} against a scale of {scale}");
        }
        Assert.Equal(2, torch.get_num_threads());
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void SeveralProjectionsOfOneRowInOnePassEqualEachLinear(ScalarType dtype)
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        using var threads = new ThreadCount(2);
        // q/k/v-like: different widths (one under the crew's split size), biases on two of three
        nn.Module<Tensor, Tensor>[] layers = [nn.Linear(72, 96, hasBias: true), nn.Linear(72, 33, hasBias: false), nn.Linear(72, 130, hasBias: true)];
        foreach (var l in layers) l.to(dtype);
        var x = randn(1, 1, 72).to_type(dtype);
        using var noGrad = no_grad();
        var expected = layers.Select(l => l.forward(x).to_type(ScalarType.Float32)).ToArray();
        using (StreamedGemv.SingleRowDecoding())
        {
            var ys = Projection.Apply(layers, x);
            Assert.Equal(3, ys.Length);
            for (int j = 0; j < 3; j++)
            {
                Assert.Equal(dtype, ys[j].dtype);
                Assert.Equal(expected[j].shape, ys[j].shape);
                var err = (ys[j].to_type(ScalarType.Float32) - expected[j]).abs().max().item<float>();
                Assert.True(err <= (dtype == ScalarType.Float32 ? 1e-4f : 5e-2f), $"projection {j}: max error {err}");
            }
        }
    }

    [Fact]
    public void OutsideTheDecodingScopeNothingIsStreamedAndOneThreadChangesNothing()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var w = randn(8, 16);
        var x = randn(1, 16);
        Assert.False(StreamedGemv.Accepts(w, x));
        using var threads = new ThreadCount(1);
        using (StreamedGemv.SingleRowDecoding())
        {
            Assert.False(StreamedGemv.Decoding);
            Assert.Equal(1, torch.get_num_threads());
        }
        using var two = new ThreadCount(2);
        using (StreamedGemv.SingleRowDecoding())
        {
            Assert.True(StreamedGemv.Decoding);
            Assert.False(StreamedGemv.Accepts(w, randn(2, 16)));           // two rows: libtorch's kernels
        }
        Assert.False(StreamedGemv.Decoding);
    }

    [Fact]
    public void ProjectionsInsideTheScopeMatchTheLinearOnEveryPathTheTunerTries()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        using var threads = new ThreadCount(2);
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            var lin = nn.Linear(96, 40, hasBias: true);
            lin.to(dtype);
            var x = randn(1, 1, 96).to_type(dtype);
            var expected = lin.forward(x).detach().to_type(ScalarType.Float32);
            using var noGrad = no_grad();
            using var decoding = StreamedGemv.SingleRowDecoding();
            for (int i = 0; i < 40; i++)                                    // the tuner's trials (3 paths × 8), then its choice
            {
                var y = Projection.Apply(lin, x).to_type(ScalarType.Float32);
                Assert.True(y.sub(expected).abs().max().item<float>() < (dtype == ScalarType.Float32 ? 1e-5f : 5e-2f), $"{dtype} call {i}: differs from the linear");
            }
        }
    }
}
