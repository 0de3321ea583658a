using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using PeftLab.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>Activation checkpointing and the chunked LM head + loss change memory, never the numbers.</summary>
public sealed class MemorySavingTests
{
    private static Dictionary<string, Tensor> Gradients(nn.Module model, Func<Tensor> loss, out float value)
    {
        foreach (var p in model.parameters()) p.grad = null;
        var l = loss();
        l.backward();
        value = l.item<float>();
        return model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
    }

    private static void AssertSameGradients(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, double tol)
    {
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, g) in expected)
        {
            double diff = Fixtures.MaxAbsDiff(g, actual[name]);
            Assert.True(diff < tol, $"{name}: max |Δgrad| = {diff:g3} (tolerance {tol:g3})");
        }
    }

    public static IEnumerable<object[]> CheckpointCases() =>
        from family in TinyModels.ByName.Keys
        from every in new[] { 1, 2 }
        from lora in new[] { false, true }
        select new object[] { family, every, lora };

    [Theory]
    [MemberData(nameof(CheckpointCases))]
    public void CheckpointedGradientsEqualPlainGradients(string family, int every, bool lora)
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.ByName[family] with { NumLayers = 3 };
        var model = TinyModels.Create(config);
        // LoRA on every linear layer with dropout: frozen embeddings (the first block's input needs no gradient) and
        // random masks that the recompute must draw again
        if (lora) model = PeftModel.Apply(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0.3, Init = LoraInit.Gaussian, Targets = new TargetSelector { AllLinear = true } }, seed: 3).Model;
        var ids = TinyModels.Tokens(2, 11, config.VocabSize);
        model.train();
        Tensor Loss() => TinyModels.LmLoss(model.Forward(ids), ids);

        model.CheckpointEvery = 0;
        manual_seed(5);
        var plain = Gradients(model, Loss, out float plainLoss);
        model.CheckpointEvery = every;
        manual_seed(5);
        var checkpointed = Gradients(model, Loss, out float checkpointedLoss);

        Assert.Equal(plainLoss, checkpointedLoss);
        AssertSameGradients(plain, checkpointed, 1e-6);
        if (lora) Assert.All(plain.Keys, k => Assert.Contains("lora_", k));
    }

    [Fact]
    public void CheckpointingIsOffOutsideTrainingAndLeavesTensorCountFlat()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        model.CheckpointEvery = 1;
        var ids = TinyModels.Tokens(2, 9, TinyModels.Llama.VocabSize).DetachFromDisposeScope();
        void Step()
        {
            using var inner = NewDisposeScope();
            model.train();
            TinyModels.LmLoss(model.Forward(ids), ids).backward();
            foreach (var p in model.parameters()) p.grad = null;
        }
        for (int i = 0; i < 2; i++) Step();
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        for (int i = 0; i < 10; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);

        model.eval();
        using var noGrad = no_grad();
        var expected = model.Forward(ids);
        model.CheckpointEvery = 0;
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, model.Forward(ids)));
    }

    public static IEnumerable<object[]> ChunkCases() =>
        from dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 }
        from chunk in new[] { 1, 7, 64 }
        from needHidden in new[] { true, false }
        select new object[] { dtype, chunk, needHidden };

    [Theory]
    [MemberData(nameof(ChunkCases))]
    public void ChunkedLossAndGradientsEqualTheWholeLogitsPath(ScalarType dtype, int chunk, bool needHidden)
    {
        using var scope = NewDisposeScope();
        const int n = 37, d = 24, vocab = 301;
        var gen = new Generator(11, CPU);
        var h0 = randn([n, d], generator: gen).mul(2).to_type(dtype);
        var w0 = randn([vocab, d], generator: gen).to_type(dtype);
        var targets = randint(0, vocab, [n], generator: gen, dtype: ScalarType.Int64);
        targets[3] = ChunkedCrossEntropy.IgnoreIndex;                             // prompt and padding positions
        targets[20] = ChunkedCrossEntropy.IgnoreIndex;
        targets[36] = ChunkedCrossEntropy.IgnoreIndex;

        (Tensor Loss, Tensor? GradH, Tensor GradW) Run(Func<Tensor, Tensor, Tensor> loss)
        {
            var h = h0.detach().clone().requires_grad_(needHidden);
            var w = w0.detach().clone().requires_grad_(true);
            var l = loss(h, w);
            l.backward();
            return (l.detach(), h.grad, w.grad!);
        }
        var whole = Run((h, w) => nn.functional.cross_entropy(nn.functional.linear(h, w).to_type(ScalarType.Float32), targets,
            ignore_index: ChunkedCrossEntropy.IgnoreIndex, reduction: nn.Reduction.Sum));
        var chunked = Run((h, w) => ChunkedCrossEntropy.Sum(h, w, targets, chunk));

        Assert.Equal(ScalarType.Float32, chunked.Loss.dtype);
        double Rel(Tensor a, Tensor b) => Fixtures.MaxAbsDiff(a.to_type(ScalarType.Float32), b.to_type(ScalarType.Float32)) / Math.Max(1e-6, a.to_type(ScalarType.Float32).abs().max().item<float>());
        double tol = dtype == ScalarType.Float32 ? 1e-5 : 1e-2;
        Assert.True(Rel(whole.Loss, chunked.Loss) < tol, $"loss {whole.Loss.item<float>()} vs {chunked.Loss.item<float>()}");
        Assert.True(Rel(whole.GradW, chunked.GradW) < tol, $"weight gradient off by {Rel(whole.GradW, chunked.GradW):g3}");
        Assert.Equal(dtype, chunked.GradW.dtype);
        if (needHidden)
        {
            Assert.True(Rel(whole.GradH!, chunked.GradH!) < tol, $"hidden gradient off by {Rel(whole.GradH!, chunked.GradH!):g3}");
            Assert.Equal(0f, chunked.GradH![3].abs().max().to_type(ScalarType.Float32).item<float>());   // ignored rows get none
        }
        else Assert.Null(chunked.GradH);
    }

    [Fact]
    public void ChunkedLossScalesWithTheIncomingGradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(2, CPU);
        var h = randn([9, 8], generator: gen).requires_grad_(true);
        var w = randn([13, 8], generator: gen);
        var y = randint(0, 13, [9], generator: gen, dtype: ScalarType.Int64);
        ChunkedCrossEntropy.Sum(h, w, y, 4).div(9).mul(3).backward();
        var expected = h.grad!.detach().clone();
        h.grad = null;
        nn.functional.cross_entropy(nn.functional.linear(h, w), y).mul(3).backward();
        Assert.True(Fixtures.MaxAbsDiff(expected, h.grad!) < 1e-6);
    }

    [Fact]
    public void ChunkedLossNamesBadShapes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => ChunkedCrossEntropy.Sum(zeros(4, 8), zeros(10, 6), zeros(4, dtype: ScalarType.Int64), 2));
        Assert.Contains("hidden [N, d] and weight [V, d] expected, got [4, 8] and [10, 6]", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChunkedCrossEntropy.Sum(zeros(4, 8), zeros(10, 8), zeros(5, dtype: ScalarType.Int64), 2));
        Assert.Contains("targets [N = 4] expected, got [5]", e.Message);
    }
}
