using PeftLab.Models;
using PeftLab.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

public sealed class ProjectionTests
{
    [Fact]
    public void SingleRowDecodingMatchesTheLinearOnEveryPathTheTunerTries()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var lin = nn.Linear(64, 48, hasBias: true);
        var x = randn(1, 1, 64);
        var expected = lin.forward(x).detach();
        using var noGrad = no_grad();
        // the first 16 calls alternate GEMV and row sum while timing them; later calls use the faster
        for (int i = 0; i < 24; i++)
        {
            var y = Projection.Apply(lin, x);
            Assert.Equal(expected.shape, y.shape);
            Assert.True(y.sub(expected).abs().max().item<float>() < 1e-5f, $"call {i}: differs from the linear");
        }
    }

    [Fact]
    public void TrainingAndMultiRowInputsAlwaysUseTheModule()
    {
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var lin = nn.Linear(16, 8, hasBias: false);
        var row = randn(1, 1, 16);
        var rows = randn(2, 3, 16);
        // with autograd on, the result must carry the module's graph (grad_fn of a linear, not of a sum)
        var y = Projection.Apply(lin, row);
        y.sum().backward();
        Assert.NotNull(lin.weight!.grad);
        using var noGrad = no_grad();
        Assert.True(torch.equal(lin.forward(rows), Projection.Apply(lin, rows)).all().item<bool>());
    }
}
