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
}
