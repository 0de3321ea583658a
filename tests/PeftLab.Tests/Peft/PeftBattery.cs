using PeftLab.Models;
using PeftLab.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>The (method, family) rows a battery runs.</summary>
public interface IBatteryRows
{
    /// <summary>Every (method case name, family name) pair.</summary>
    static abstract IEnumerable<object[]> Rows();
}

/// <summary>
/// The table-driven PEFT battery, written once: every method case × model family gets the same five checks.
/// A model family supplies its cases and how to build, run, train, save and reload its model
/// (<see cref="PeftBatteryTests"/> for decoder-only LMs, <c>T5PeftBatteryTests</c> for T5).
/// </summary>
/// <typeparam name="TSelf">The derived test class; its static <see cref="IBatteryRows.Rows"/> lists (method, family).</typeparam>
/// <typeparam name="TModel">The model type the family's PEFT model exposes.</typeparam>
/// <typeparam name="TBatch">What one forward takes.</typeparam>
public abstract class PeftBattery<TSelf, TModel, TBatch> where TSelf : IBatteryRows where TModel : nn.Module
{
    private const double Tol = 1e-5;

    /// <summary>Member data of every check: (method, family) rows of the derived class.</summary>
    public static IEnumerable<object[]> All() => TSelf.Rows();

    /// <summary>Name → (config, output unchanged at init by construction).</summary>
    protected abstract IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Table { get; }
    /// <summary>A fresh base model of a family (same seed every call).</summary>
    protected abstract TModel CreateBase(string family);
    /// <summary>The family's model inside a PEFT model.</summary>
    protected abstract TModel Inner(PeftModel peft);
    /// <summary>Applies a method to a fresh base model.</summary>
    protected PeftModel Apply(string method, string family) => PeftModel.Apply((IPeftHost)CreateBase(family), Table[method].Config, seed: 3);
    /// <summary>A batch for a family.</summary>
    protected abstract TBatch MakeBatch(string family);
    /// <summary>Logits.</summary>
    protected abstract Tensor Forward(TModel model, TBatch x);
    /// <summary>Training loss.</summary>
    protected abstract Tensor Loss(TModel model, TBatch x);
    /// <summary>Distance between two logit tensors (absolute or relative, as the family needs).</summary>
    protected abstract double Diff(Tensor a, Tensor b);
    /// <summary>Mode for the second backward of the gradient check (T5 turns dropout off so every path is live).</summary>
    protected abstract bool GradientCheckInEvalMode { get; }
    /// <summary>Full finetuning: save and reload the whole checkpoint.</summary>
    protected abstract TModel SaveAndLoadFull(TModel model, string dir);
    /// <summary>Checks on a saved adapter folder beyond the round trip.</summary>
    protected virtual void CheckAdapterFolder(string dir) { }
    /// <summary>Greedy generation with and without the KV cache.</summary>
    protected abstract (IReadOnlyList<int[]> Cached, IReadOnlyList<int[]> Uncached) GenerateBoth(PeftModel peft);

    private Tensor Eval(TModel model, TBatch x)
    {
        model.eval();
        using var noGrad = no_grad();
        return Forward(model, x);
    }

    private void TrainSteps(PeftModel peft, TBatch x, int steps, double lr = 5e-2)
    {
        var model = Inner(peft);
        model.train();
        var opt = optim.AdamW(model.parameters().Where(p => p.requires_grad).ToArray(), lr: lr);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            Loss(model, x).backward();
            opt.step();
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OutputUnchangedAtInitWhereItHoldsByConstruction(string method, string family)
    {
        using var scope = NewDisposeScope();
        var x = MakeBatch(family);
        var diff = Diff(Eval(CreateBase(family), x), Eval(Inner(Apply(method, family)), x));
        if (Table[method].UnchangedAtInit) Assert.True(diff < Tol, $"{method}: max diff {diff}");
        else Assert.True(diff > Tol, $"{method}: an input-side method should change the output (diff {diff})");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void OnlyMethodParametersChangeAndGetGradients(string method, string family)
    {
        using var scope = NewDisposeScope();
        var peft = Apply(method, family);
        var x = MakeBatch(family);
        var model = Inner(peft);
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        Assert.NotEmpty(trainable);
        if (method != "full") Assert.True(trainable.Count < before.Count);

        TrainSteps(peft, x, 1);
        foreach (var (name, p) in model.named_parameters())
            if (!trainable.Contains(name)) Assert.False(!p.detach().allclose(before[name], rtol: 0, atol: 0), $"{method}: frozen '{name}' changed");
        // A second backward: now every trainable parameter has a gradient path (LoRA's B and adapters' up are non-zero after step 1).
        if (GradientCheckInEvalMode) model.eval(); else model.train();
        foreach (var p in model.parameters()) p.grad?.zero_();
        Loss(model, x).backward();
        foreach (var (name, p) in model.named_parameters())
        {
            if (trainable.Contains(name))
            {
                Assert.True(p.grad is not null, $"{method}: trainable '{name}' has no gradient");
                Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{method}: trainable '{name}' has a zero gradient");
            }
            else Assert.True(p.grad is null, $"{method}: frozen '{name}' got a gradient");
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void SaveLoadRoundTrips(string method, string family)
    {
        using var scope = NewDisposeScope();
        var peft = Apply(method, family);
        var x = MakeBatch(family);
        TrainSteps(peft, x, 2);
        var expected = Eval(Inner(peft), x);
        var dir = TestPaths.NewTempDir();
        try
        {
            TModel reloaded;
            if (method == "full") reloaded = SaveAndLoadFull(Inner(peft), dir);
            else
            {
                peft.SaveAdapter(dir);
                CheckAdapterFolder(dir);
                reloaded = Inner(PeftModel.LoadAdapter((IPeftHost)CreateBase(family), dir));
            }
            var diff = Diff(expected, Eval(reloaded, x));
            Assert.True(diff < Tol, $"{method}: reloaded differs by {diff}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void MergedEqualsUnmergedWhereMergeable(string method, string family)
    {
        using var scope = NewDisposeScope();
        var peft = Apply(method, family);
        var x = MakeBatch(family);
        TrainSteps(peft, x, 2);
        var unmerged = Eval(Inner(peft), x);
        if (!peft.Method.CanMerge)
        {
            Assert.Throws<NotSupportedException>(() => peft.Merge());
            return;
        }
        peft.Merge();
        Assert.DoesNotContain(Inner(peft).named_parameters(), p => p.name.Contains("lora_") || p.name.Contains("ia3_l") || p.name.Contains("base_layer"));
        var diff = Diff(unmerged, Eval(Inner(peft), x));
        Assert.True(diff < Tol, $"{method}: merged differs by {diff}");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void CachedGenerationEqualsUncached(string method, string family)
    {
        using var scope = NewDisposeScope();
        var peft = Apply(method, family);
        TrainSteps(peft, MakeBatch(family), 2);
        var (cached, uncached) = GenerateBoth(peft);
        Assert.Equal(uncached, cached);
    }
}
