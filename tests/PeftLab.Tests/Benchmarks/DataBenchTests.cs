using PeftLab.Benchmarks;
using PeftLab.Training;
using Xunit;

namespace PeftLab.Tests.Benchmarks;

/// <summary>The data benchmarks run end to end and compare like with like (numbers themselves are benchmarks, not tested).</summary>
[Collection("study processes")]   // sets the process-wide thread count
public sealed class DataBenchTests
{
    [Fact]
    public void PackingBenchTrainsEveryStrategyOnTheSameTokens()
    {
        var r = DataBench.Packing(new DataBenchOptions
        {
            DataPath = TestPaths.SuperNi, Bench = new BenchOptions { Preset = "nano", Method = "lora" }, Examples = 12, BatchSize = 4, MaxLength = 256,
        });
        string[] strategies = ["padded_to_max_length", "padded", "length_grouped", "packed"];
        var real = strategies.Select(s => r[s]!["real_tokens"]!.GetValue<long>()).Distinct().ToArray();
        var targets = strategies.Select(s => r[s]!["target_tokens"]!.GetValue<long>()).Distinct().ToArray();
        Assert.Single(real);
        Assert.Single(targets);
        Assert.True(targets[0] > 0);
        // fixed-length padding fills every row to max_length; packing leaves the fewest slots empty of the padded layouts
        Assert.Equal(0.0, r["padded_to_max_length"]!["token_slots"]!.GetValue<long>() % 256);
        Assert.True(r["packed"]!["token_slots"]!.GetValue<long>() < r["padded_to_max_length"]!["token_slots"]!.GetValue<long>());
    }

    [Fact]
    public void EvalBenchGeneratesForEveryPromptAtEachBatchSize()
    {
        var r = DataBench.Eval(new DataBenchOptions
        {
            DataPath = TestPaths.SuperNi, Bench = new BenchOptions { Preset = "nano" }, Examples = 6, BatchSize = 3, MaxNewTokens = 4,
        });
        Assert.Equal(6, r["examples"]!.GetValue<int>());
        Assert.True(r["batch_1"]!["generated_tokens"]!.GetValue<long>() > 0);
        // greedy decoding is deterministic: batching (left padding) must not change what is generated
        Assert.Equal(r["batch_1"]!["generated_tokens"]!.GetValue<long>(), r["batch_3"]!["generated_tokens"]!.GetValue<long>());
    }
}
