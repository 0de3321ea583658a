using PeftLab.Checkpoints;
using static TorchSharp.torch;

namespace PeftLab.Tests.Cli;

/// <summary>The exact inspection commands external conformance checks use, against the HF fixtures.</summary>
public sealed class InspectionCommandTests
{
    public static IEnumerable<object[]> Cases() =>
        Fixtures.Models().Select(m => new object[] { m[0], "" }).Concat(Fixtures.Adapters());

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsCommandMatchesFixture(string fixture, string adapter)
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            var ids = Fixtures.Expected(fixture, "input_ids");
            var input = Path.Combine(dir, "in.safetensors");
            var output = Path.Combine(dir, "out.safetensors");
            SafeTensorsWriter.Write(input, [TensorConversions.FromTensor("input_ids", ids)]);
            var args = new List<string> { "logits", "--model", Fixtures.Dir(fixture), "--input", input, "--out", output };
            if (adapter != "") args.AddRange(["--adapter", Path.Combine(Fixtures.Dir(fixture), "adapters", adapter)]);
            CliRunner.Ok(args.ToArray());
            using var file = SafeTensorsFile.Open(output);
            Assert.Equal(SafeDType.F32, file.GetInfo("logits").DType);
            var logits = TensorConversions.ToTensor(file, "logits");
            var expected = Fixtures.Expected(fixture, adapter == "" ? "logits" : "logits_" + adapter);
            Assert.Equal(expected.shape, logits.shape);
            Assert.True(Fixtures.MaxAbsDiff(logits, expected) < 1e-4);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GenerateCommandPrintsFixtureGreedyIds(string fixture, string adapter)
    {
        using var scope = NewDisposeScope();
        var prompt = Fixtures.Expected(fixture, "input_ids")[0].narrow(0, 0, 6).data<long>().ToArray();
        var expected = Fixtures.Expected(fixture, adapter == "" ? "greedy_tokens" : "greedy_tokens_" + adapter)[0].data<long>().ToArray();
        var args = new List<string> { "generate", "--model", Fixtures.Dir(fixture), "--input-ids", string.Join(' ', prompt), "--max-new-tokens", "10", "--greedy", "--output-format", "ids" };
        if (adapter != "") args.AddRange(["--adapter", Path.Combine(Fixtures.Dir(fixture), "adapters", adapter)]);
        var stdout = CliRunner.Ok(args.ToArray());
        Assert.Equal(string.Join(' ', expected), stdout.Trim());
        Assert.Single(stdout.Trim().Split('\n'));
    }
}
