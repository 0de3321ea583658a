using PeftLab.Checkpoints;
using PeftLab.Configuration;
using PeftLab.Data;
using PeftLab.Data.SuperNi;
using PeftLab.Evaluation;
using PeftLab.Models;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Data;

/// <summary>Inputs that used to give a wrong result without a word now fail, naming the cause.</summary>
public sealed class SilentWrongResultTests
{
    private static string WriteBytes(string name, params byte[][] parts)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), name);
        File.WriteAllBytes(path, parts.SelectMany(p => p).ToArray());
        return path;
    }

    private static byte[] Ascii(string s) => System.Text.Encoding.ASCII.GetBytes(s);

    public static IEnumerable<object[]> BadSequences() =>
    [
        [new byte[] { 0xFF }, "0xFF"],                 // never valid
        [new byte[] { 0xE2, 0x82 }, "0xE2 0x82"],      // truncated 3-byte sequence
        [new byte[] { 0xC0, 0xAF }, "0xC0"],           // overlong encoding of '/'
        [new byte[] { 0xED, 0xA0, 0x80 }, "0xED"],     // UTF-16 surrogate
    ];

    [Theory]
    [MemberData(nameof(BadSequences))]
    public void InvalidUtf8InATaskFileNamesFileLineAndOffset(byte[] bad, string shown)
    {
        var head = Ascii("{\n  \"Definition\": [\"Copy.\"],\n  \"Instances\": [{\"id\": \"t-1\", \"input\": \"a");
        var path = WriteBytes("task001_copy.json", head, bad, Ascii("\", \"output\": [\"a\"]}]\n}\n"));
        var e = Assert.Throws<DataFormatException>(() => TaskLoader.LoadTaskFile(path, [], out _));
        Assert.Equal($"{path}:3: invalid UTF-8 at byte offset {head.Length} ({shown}); the file must be UTF-8 encoded", e.Message);
    }

    [Fact]
    public void InvalidUtf8InOtherUserFiles()
    {
        var predictions = WriteBytes("p.jsonl", Ascii("{\"id\": \"a\", \"prediction\": \"ok\"}\n{\"id\": \"b\", \"prediction\": \"caf"), [0xE9], Ascii("\"}\n"));
        Assert.Contains($"{predictions}:2: invalid UTF-8 at byte offset 62 (0xE9);", Assert.Throws<DataFormatException>(() => PredictionsFile.Read(predictions)).Message);
        var yaml = WriteBytes("train.yaml", Ascii("optim:\n  lr: 1e-4\n# "), [0xFE, 0xFF], Ascii("\n"));
        Assert.Contains($"{yaml}:3: invalid UTF-8 at byte offset 20 (0xFE);", Assert.Throws<DataFormatException>(() => ConfigNode.Load(yaml)).Message);
        // a UTF-8 byte-order mark is fine
        var bom = WriteBytes("bom.jsonl", [0xEF, 0xBB, 0xBF], Ascii("{\"id\": \"a\", \"prediction\": \"x\"}\n"));
        Assert.Equal("x", PredictionsFile.Read(bom)["a"]);
    }

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("\n\n   \n", "only blank lines")]
    public void EmptyPredictionsFileIsAnError(string text, string why)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "p.jsonl");
        File.WriteAllText(path, text);
        var e = Assert.Throws<InvalidDataException>(() => PredictionsFile.Read(path));
        Assert.Equal($"predictions file {path} holds no predictions ({why}); scoring it would report 0 for every instance", e.Message);
        var r = CliRunner.Run("score", "--predictions", path, "--tasks", MiniTasks.Write(4));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: predictions file", r.Stderr);
    }

    private static string CopyFixture(string fixture)
    {
        var dir = TestPaths.NewTempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Dir(fixture))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private static string WithTensor(string name, Func<Tensor, Tensor> edit)
    {
        var dir = CopyFixture("llama-gqa");
        using var scope = NewDisposeScope();
        Dictionary<string, Tensor> tensors;
        using (var f = CheckpointDirectory.Open(dir)) tensors = TensorConversions.ToTensors(f);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"),
            tensors.Select(kv => TensorConversions.FromTensor(kv.Key, kv.Key == name ? edit(kv.Value) : kv.Value)).ToList());
        return dir;
    }

    [Theory]
    [InlineData("model.norm.weight", double.NaN, "tensor 'model.norm.weight' holds 1 non-finite value (the first, NaN, at flat index 5)")]
    [InlineData("model.layers.0.self_attn.q_proj.weight", double.PositiveInfinity, "tensor 'model.layers.0.self_attn.q_proj.weight' holds 1 non-finite value (the first, ∞, at flat index 5)")]
    [InlineData("model.embed_tokens.weight", double.NegativeInfinity, "tensor 'model.embed_tokens.weight' holds 1 non-finite value (the first, -∞, at flat index 5)")]
    public void NonFiniteWeightsAreNamed(string tensorName, double value, string expected)
    {
        var dir = WithTensor(tensorName, t => { var c = t.clone(); c.view(-1)[5] = tensor(value, dtype: c.dtype); return c; });
        var e = Assert.Throws<CheckpointFormatException>(() => HfModel.Load(dir));
        Assert.Contains(expected, e.Message.Replace("Infinity", "∞"));
        Assert.StartsWith(dir, e.Message);
    }

    [Theory]
    [InlineData(ScalarType.Int64, "I64")]
    [InlineData(ScalarType.Int32, "I32")]
    [InlineData(ScalarType.Byte, "U8")]
    public void IntegerTensorsWhereWeightsBelongAreAnError(ScalarType dtype, string stored)
    {
        var dir = WithTensor("model.norm.weight", t => t.to_type(dtype));
        var e = Assert.Throws<CheckpointFormatException>(() => HfModel.Load(dir));
        Assert.Contains($"tensor 'model.norm.weight' is stored as {stored}, but the model expects floating-point weights there", e.Message);
    }

    private const string Config = """{"model_type":"llama","vocab_size":10,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2""";

    [Theory]
    [InlineData(""","eos_token_id":10}""", "eos_token_id 10 is outside the vocabulary (vocab_size 10)")]
    [InlineData(""","eos_token_id":[2, 99]}""", "eos_token_id 99 is outside the vocabulary (vocab_size 10)")]
    [InlineData(""","bos_token_id":12}""", "bos_token_id 12 is outside the vocabulary (vocab_size 10)")]
    [InlineData(""","pad_token_id":10}""", "pad_token_id 10 is outside the vocabulary (vocab_size 10)")]
    [InlineData(""","max_position_embeddings":0}""", "max_position_embeddings must be > 0 (got 0)")]
    [InlineData(""","max_position_embeddings":-4}""", "max_position_embeddings must be > 0 (got -4)")]
    public void ConfigJsonIdsAndPositionsAreChecked(string tail, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse(Config + tail, "c.json"));
        Assert.Contains("c.json: invalid config: " + expected, e.Message);
    }

    [Fact]
    public void NegativeSpecialIdsStillMeanUnset() =>
        Assert.Equal(-1, DecoderConfig.Parse(Config + ""","pad_token_id":-1}""", "c.json").PadTokenId);

    [Theory]
    [InlineData(true, BestMetric.RougeL, BestMetric.RougeL)]
    [InlineData(false, BestMetric.RougeL, BestMetric.Loss)]
    [InlineData(false, BestMetric.ExactMatch, BestMetric.Loss)]
    [InlineData(true, BestMetric.Loss, BestMetric.Loss)]
    public void BestMetricIsWhatReallyPicksTheCheckpoint(bool generate, BestMetric configured, BestMetric effective) =>
        Assert.Equal(effective, new EvalSection { Generate = generate, BestMetric = configured }.EffectiveBestMetric);

    [Fact]
    public void ResultJsonLabelsTheLossWhenNothingIsGenerated()
    {
        var data = MiniTasks.Write();
        var run = TestPaths.NewTempDir();
        var result = Trainer.Run(TrainConfigLoader.Load(null, MiniTasks.FastRun(data, run).Concat(["train.max_steps=2", "eval.generate=false"])));
        Assert.Equal("Loss", result.BestMetric.ToString());
        Assert.True(result.BestScore!.Value < 0);   // the negated validation loss
    }
}
