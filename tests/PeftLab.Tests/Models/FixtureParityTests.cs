using PeftLab.Models;
using PeftLab.Peft;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>Base-model and adapter parity with transformers/PEFT on ../shared/fixtures/hf through the library API.</summary>
public sealed class FixtureParityTests
{
    private const double Tolerance = 1e-4;

    [Theory]
    [MemberData(nameof(Fixtures.Models), MemberType = typeof(Fixtures))]
    public void BaseLogitsMatch(string fixture)
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.Load(fixture);
        var ids = Fixtures.Expected(fixture, "input_ids");
        using var noGrad = no_grad();
        var logits = model.Forward(ids);
        var expected = Fixtures.Expected(fixture, "logits");
        Assert.Equal(expected.shape, logits.shape);
        Assert.True(Fixtures.MaxAbsDiff(logits, expected) < Tolerance, $"max diff {Fixtures.MaxAbsDiff(logits, expected)}");
    }

    [Theory]
    [MemberData(nameof(Fixtures.Models), MemberType = typeof(Fixtures))]
    public void BaseGreedyTokensMatch(string fixture)
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.Load(fixture);
        AssertGreedy(model, fixture, "greedy_tokens");
    }

    [Theory]
    [MemberData(nameof(Fixtures.Adapters), MemberType = typeof(Fixtures))]
    public void AdapterLogitsAndGreedyMatch(string fixture, string adapter)
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.Load(fixture);
        var peft = PeftModel.LoadAdapter(model, Path.Combine(Fixtures.Dir(fixture), "adapters", adapter));
        var ids = Fixtures.Expected(fixture, "input_ids");
        using (no_grad())
        {
            var logits = peft.Model.Forward(ids);
            var expected = Fixtures.Expected(fixture, "logits_" + adapter);
            Assert.Equal(expected.shape, logits.shape);
            Assert.True(Fixtures.MaxAbsDiff(logits, expected) < Tolerance, $"max diff {Fixtures.MaxAbsDiff(logits, expected)}");
        }
        AssertGreedy(peft.Model, fixture, "greedy_tokens_" + adapter);
    }

    private static void AssertGreedy(CausalLM model, string fixture, string key)
    {
        var ids = Fixtures.Expected(fixture, "input_ids");
        var prompt = ids[0].narrow(0, 0, 6).data<long>().Select(x => (int)x).ToArray();
        var expected = Fixtures.Expected(fixture, key)[0].data<long>().Select(x => (int)x).ToArray();
        foreach (var cache in new[] { true, false })
        {
            var got = TextGenerator.Generate(model, [prompt], new SamplingConfig(MaxNewTokens: expected.Length), eosIds: [], padId: 0, useCache: cache)[0];
            Assert.Equal(expected, got);
        }
    }
}
