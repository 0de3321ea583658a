using PeftLab.Models;
using PeftLab.Peft;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Base-model and adapter parity with transformers' modeling_t5 and PEFT on ../shared/fixtures/t5 through the library API.</summary>
public sealed class T5FixtureParityTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> Variants() => [["base"], ["lora"], ["prompt"]];

    private static T5ForConditionalGeneration Load(string variant)
    {
        var model = T5Fixtures.Load();
        if (variant != "base") PeftModel.LoadAdapter(model, T5Fixtures.Adapter(variant));
        model.eval();
        return model;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void LogitsMatch(string variant)
    {
        using var scope = NewDisposeScope();
        var model = Load(variant);
        Tensor logits;
        using (no_grad()) logits = model.Forward(T5Fixtures.Expected("input_ids"), T5Fixtures.Expected("decoder_input_ids"));
        var expected = T5Fixtures.Expected(variant == "base" ? "logits" : "logits_" + variant);
        Assert.Equal(expected.shape, logits.shape);
        var diff = Fixtures.MaxAbsDiff(logits, expected);
        Assert.True(diff < Tolerance, $"{variant}: max diff {diff}");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void GreedyTokensMatchWithAndWithoutCache(string variant)
    {
        using var scope = NewDisposeScope();
        var model = Load(variant);
        var input = T5Fixtures.ExpectedIds("input_ids");
        var expected = T5Fixtures.ExpectedIds(variant == "base" ? "greedy_tokens" : "greedy_tokens_" + variant);
        foreach (var cache in new[] { true, false })
        {
            var got = Seq2SeqGenerator.Generate(model, [input], new SamplingConfig(MaxNewTokens: expected.Length), eosIds: [], useCache: cache)[0];
            Assert.Equal(expected, got);
        }
    }
}
