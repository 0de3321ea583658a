using System.Diagnostics;
using PeftLab.Checkpoints;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Fixture parity through <c>peftlab logits</c> and <c>peftlab generate</c>, run as subprocesses (the CLI dispatches on model_type t5).</summary>
public sealed class T5CliTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> Variants() => [["base"], ["lora"], ["prompt"]];

    /// <summary>Runs PeftLab.Cli.dll (copied into the test output folder by the project reference) with dotnet.</summary>
    internal static (int Code, string Stdout, string Stderr) RunCli(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "PeftLab.Cli.dll");
        Assert.True(File.Exists(dll), $"PeftLab.Cli.dll not found next to the tests ({dll})");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"peftlab {string.Join(' ', args)} did not finish in 120 s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string[] AdapterArgs(string variant) => variant == "base" ? [] : ["--adapter", T5Fixtures.Adapter(variant)];

    [Theory]
    [MemberData(nameof(Variants))]
    public void LogitsCommandMatchesFixture(string variant)
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var output = Path.Combine(dir, "logits.safetensors");
            // expected.safetensors holds input_ids and decoder_input_ids; its other tensors are ignored.
            var (code, stdout, stderr) = RunCli(["logits", "--model", T5Fixtures.Dir, .. AdapterArgs(variant), "--input", T5Fixtures.ExpectedFile, "--out", output]);
            Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
            using var scope = NewDisposeScope();
            using var file = SafeTensorsFile.Open(output);
            var logits = TensorConversions.ToTensor(file, "logits");
            var expected = T5Fixtures.Expected(variant == "base" ? "logits" : "logits_" + variant);
            Assert.Equal(expected.shape, logits.shape);
            var diff = Fixtures.MaxAbsDiff(logits, expected);
            Assert.True(diff < Tolerance, $"{variant}: max diff {diff}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void GenerateCommandPrintsFixtureGreedyTokens(string variant)
    {
        var input = string.Join(' ', T5Fixtures.ExpectedIds("input_ids"));
        var expected = T5Fixtures.ExpectedIds(variant == "base" ? "greedy_tokens" : "greedy_tokens_" + variant);
        var (code, stdout, stderr) = RunCli(["generate", "--model", T5Fixtures.Dir, .. AdapterArgs(variant), "--input-ids", input,
            "--max-new-tokens", expected.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "--output-format", "ids"]);
        Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
        Assert.Equal(string.Join(' ', expected), stdout.Trim());
    }

    [Fact]
    public void LogitsCommandNamesMissingDecoderInput()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var input = Path.Combine(dir, "in.safetensors");
            using (var scope = NewDisposeScope())
                SafeTensorsWriter.Write(input, [TensorConversions.FromTensor("input_ids", tensor(new long[] { 5, 6, 1 }, [1, 3]))]);
            var (code, _, stderr) = RunCli("logits", "--model", T5Fixtures.Dir, "--input", input, "--out", Path.Combine(dir, "out.safetensors"));
            Assert.Equal(1, code);
            Assert.Contains("decoder_input_ids", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MergeFoldsAT5LoraAdapterIntoAFolderThatGivesTheAdaptersLogits()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var merged = Path.Combine(dir, "merged");
            var (code, stdout, stderr) = RunCli("merge", "--model", T5Fixtures.Dir, "--adapter", T5Fixtures.Adapter("lora"), "--out", merged);
            Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
            Assert.True(PeftLab.Models.T5Config.IsT5Folder(merged), "the merged folder is not a T5 checkpoint");
            using var scope = NewDisposeScope();
            var model = PeftLab.Models.HfT5.Load(merged);
            model.eval();
            using var _ = no_grad();
            var logits = model.Forward(T5Fixtures.Expected("input_ids"), T5Fixtures.Expected("decoder_input_ids"));
            var expected = T5Fixtures.Expected("logits_lora");
            var diff = Fixtures.MaxAbsDiff(logits, expected);
            Assert.True(diff < Tolerance, $"merged T5 LoRA: max diff {diff} against the adapter's fixture logits");
            var baseDiff = Fixtures.MaxAbsDiff(logits, T5Fixtures.Expected("logits"));
            Assert.True(baseDiff > 100 * Tolerance, $"the merged model's logits equal the base model's (max diff {baseDiff}): nothing was merged");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void DescribeCountsEveryMethodOnAT5()
    {
        foreach (var source in new[] { new[] { "--preset", "t5-tiny" }, ["--model", T5Fixtures.Dir] })
        {
            var (code, stdout, stderr) = RunCli(["describe", .. source, "--sweep", "--json"]);
            Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
            var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => System.Text.Json.JsonSerializer.Deserialize<DescribeRow>(l, new System.Text.Json.JsonSerializerOptions { PropertyNameCaseInsensitive = true })!).ToList();
            using var scope = NewDisposeScope();
            var model = source[0] == "--preset" ? new PeftLab.Models.T5ForConditionalGeneration(PeftLab.Models.T5Presets.Get("t5-tiny")) : T5Fixtures.Load();
            long total = model.parameters().Sum(p => p.numel());
            Assert.Equal(total, rows.Single(r => r.Method == "full").Trainable);
            Assert.Equal(PeftLab.Peft.PeftRegistry.All.Select(m => PeftLab.Peft.PeftRegistry.NameOf(m.Kind)).Order(), rows.Select(r => r.Method).Distinct().Order());
            Assert.All(rows, r => Assert.True(r.Trainable > 0, r.ToString()));   // (large LoRA ranks exceed the tiny fixture's own size)
        }
    }

    /// <summary>One line of <c>describe --json</c>.</summary>
    private sealed record DescribeRow(string Method, string Knobs, long Trainable, long Total);
}
