using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Tests.T5;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>Token ids outside [0, vocab) are an error naming the id, its position and the vocabulary size, wherever they come from.</summary>
public sealed class TokenIdRangeTests
{
    [Theory]
    [InlineData(new long[] { 3, 4, 64 }, "input_ids: token id 64 at position 2 of row 0 is outside the vocabulary (vocab_size 64: ids must be in [0, 64))")]
    [InlineData(new long[] { -1, 4, 5 }, "input_ids: token id -1 at position 0 of row 0 is outside the vocabulary (vocab_size 64")]
    [InlineData(new long[] { 3, 100000, 5 }, "input_ids: token id 100000 at position 1 of row 0 is outside the vocabulary (vocab_size 64")]
    public void DecoderModelInputIsRangeChecked(long[] ids, string expected)
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        using var g = no_grad();
        var e = Assert.Throws<TokenIdOutOfRangeException>(() => model.Forward(tensor(ids).view(1, -1)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void PositionNamesTheRowOfABatch()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Qwen2);
        using var g = no_grad();
        var ids = tensor(new long[] { 3, 4, 5, 6, 7, 70 }).view(2, 3);
        var e = Assert.Throws<TokenIdOutOfRangeException>(() => model.Forward(ids));
        Assert.Contains("token id 70 at position 2 of row 1", e.Message);
    }

    [Fact]
    public void EncoderAndDecoderInputsOfT5AreRangeChecked()
    {
        using var scope = NewDisposeScope();
        var model = T5TinyModels.Create(T5TinyModels.Gated);
        using var g = no_grad();
        var good = tensor(new long[] { 3, 4 }).view(1, 2);
        var e = Assert.Throws<TokenIdOutOfRangeException>(() => model.Forward(tensor(new long[] { 3, 64 }).view(1, 2), good));
        Assert.Contains("input_ids: token id 64 at position 1 of row 0 is outside the vocabulary (vocab_size 64", e.Message);
        e = Assert.Throws<TokenIdOutOfRangeException>(() => model.Forward(good, tensor(new long[] { 0, -7 }).view(1, 2)));
        Assert.Contains("decoder_input_ids: token id -7 at position 1 of row 0", e.Message);
    }

    [Theory]
    [InlineData("1 5000", "token id 5000 at position 1 of row 0 is outside the vocabulary (vocab_size 97")]
    [InlineData("-1", "token id -1 at position 0 of row 0 is outside the vocabulary (vocab_size 97")]
    [InlineData("1 2 97", "token id 97 at position 2 of row 0 is outside the vocabulary (vocab_size 97")]
    public void GenerateInputIdsOutOfRangeIsOneErrorLine(string ids, string expected)
    {
        var r = CliRunner.Run("generate", "--model", Fixtures.Dir("llama-gqa"), "--input-ids", ids, "--output-format", "ids", "--max-new-tokens", "2");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.Single(r.Stderr.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void T5GenerateInputIdsOutOfRange()
    {
        var r = CliRunner.Run("generate", "--model", T5Fixtures.Dir, "--input-ids", "3 101", "--output-format", "ids", "--max-new-tokens", "2");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: input_ids: token id 101 at position 1 of row 0 is outside the vocabulary (vocab_size 101", r.Stderr);
    }

    [Fact]
    public void LogitsInputFileOutOfRange()
    {
        var dir = TestPaths.NewTempDir();
        var input = Path.Combine(dir, "in.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(input, [TensorConversions.FromTensor("input_ids", tensor(new long[] { 1, 2, 3, 4, 500, 6 }).view(2, 3))]);
        var r = CliRunner.Run("logits", "--model", Fixtures.Dir("llama-gqa"), "--input", input, "--out", Path.Combine(dir, "out.safetensors"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: input_ids: token id 500 at position 1 of row 1 is outside the vocabulary (vocab_size 97", r.Stderr);
        Assert.False(File.Exists(Path.Combine(dir, "out.safetensors")));
    }

    [Fact]
    public void TokenizerLargerThanTheModelVocabularyFailsAtLoad()
    {
        var dir = TestPaths.NewTempDir();
        ModelFolder.Create(dir, Presets.Get("nano"), seed: 1, PeftLab.Synthetic.SyntheticCorpus.Generate(new PeftLab.Synthetic.CorpusOptions(Documents: 50)));
        var configPath = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["vocab_size"] = 300;
        File.WriteAllText(configPath, config.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir));
        Assert.Contains("the tokenizer has ids up to 511 (512 tokens) but", e.Message);
        Assert.Contains("says vocab_size 300", e.Message);
    }
}
