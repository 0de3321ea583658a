using PeftLab.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>LyCORIS module and rank dropout (PEFT's LoHa/LoKr forward): where the update is skipped, kept and rescaled.</summary>
public sealed class LycorisDropoutTests
{
    private static (nn.Module<Tensor, Tensor> layer, Tensor x, Tensor delta) Setup()
    {
        torch.manual_seed(3);
        var layer = nn.Linear(6, 4, hasBias: true);
        return (layer, randn(5, 6), randn(4, 6));
    }

    [Fact]
    public void ModuleDropoutOfOneSkipsTheUpdateInTrainingButEvalAlwaysAppliesIt()
    {
        using var scope = NewDisposeScope();
        var (layer, x, delta) = Setup();
        var base_ = ((TorchSharp.Modules.Linear)layer).forward(x);
        var withDelta = base_ + nn.functional.linear(x, delta);
        for (var i = 0; i < 20; i++)
        {
            var train = Lycoris.Forward((TorchSharp.Modules.Linear)layer, x, () => delta, training: true, rankDropout: 0, moduleDropout: 1.0, rescaleRankDropout: true);
            Assert.True(train.allclose(base_), "module dropout 1 must leave the base layer's output");
        }
        var eval = Lycoris.Forward((TorchSharp.Modules.Linear)layer, x, () => delta, training: false, rankDropout: 0.9, moduleDropout: 1.0, rescaleRankDropout: true);
        Assert.True(eval.allclose(withDelta), "dropouts apply only in training");
    }

    [Fact]
    public void ModuleDropoutSkipsAboutItsRate()
    {
        using var scope = NewDisposeScope();
        var (layer, x, delta) = Setup();
        var base_ = ((TorchSharp.Modules.Linear)layer).forward(x);
        var skipped = 0;
        const int n = 2000;
        for (var i = 0; i < n; i++)
        {
            using var inner = NewDisposeScope();
            var y = Lycoris.Forward((TorchSharp.Modules.Linear)layer, x, () => delta, training: true, rankDropout: 0, moduleDropout: 0.3, rescaleRankDropout: true);
            if (y.allclose(base_)) skipped++;
        }
        // binomial(2000, 0.3): sd ≈ 20.5, so ±5 sd is 600 ± 103
        Assert.InRange(skipped, 497, 703);
    }

    [Fact]
    public void RankDropoutKeepsWholeOutputRowsAndRescalesByTheirMean()
    {
        using var scope = NewDisposeScope();
        var (layer, x, _) = Setup();
        var lin = (TorchSharp.Modules.Linear)layer;
        var xs = eye(6);
        var delta = ones(4, 6);
        var y = Lycoris.Forward(lin, xs, () => delta, training: true, rankDropout: 0.5, moduleDropout: 0, rescaleRankDropout: true) - lin.forward(xs);
        // each output column of y (a row of ΔW) is all zeros or all 1/keep-rate
        var cols = y.t();
        var kept = 0;
        for (var r = 0; r < 4; r++)
        {
            var row = cols[r];
            var v = row[0].item<float>();
            Assert.True(row.allclose(full_like(row, v)), "rank dropout drops whole rows of ΔW");
            if (v != 0) kept++;
        }
        if (kept > 0)
        {
            var expected = 4f / kept;
            for (var r = 0; r < 4; r++)
            {
                var v = cols[r][0].item<float>();
                Assert.True(v == 0 || Math.Abs(v - expected) < 1e-5, $"kept rows are rescaled by 1/mean(keep): {v} vs {expected}");
            }
        }
    }
}
