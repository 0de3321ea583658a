using System.Text.Json.Nodes;
using PeftLab.Models;

namespace PeftLab.Tests.T5;

/// <summary>config.json parsing for model_type t5: defaults as in transformers, errors naming the file and key.</summary>
public sealed class T5ConfigTests
{
    private static JsonObject Minimal() => new()
    {
        ["model_type"] = "t5", ["vocab_size"] = 100, ["d_model"] = 32, ["d_kv"] = 8, ["d_ff"] = 64, ["num_layers"] = 2, ["num_heads"] = 4,
    };

    private static T5Config Parse(JsonObject json) => T5Config.Parse(json.ToJsonString(), "test/config.json");

    [Fact]
    public void FixtureConfigParses()
    {
        var c = T5Config.Load(T5Fixtures.Dir);
        Assert.Equal((101, 32, 8, 64, 2, 2, 4), (c.VocabSize, c.HiddenSize, c.HeadDim, c.FeedForwardSize, c.NumLayers, c.NumDecoderLayers, c.NumHeads));
        Assert.True(c.IsGated);
        Assert.Equal(T5Activation.GeluNew, c.Activation);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal((0, 0), (c.PadTokenId, c.DecoderStartTokenId));
        Assert.Equal([1], c.EosTokenIds);
    }

    [Fact]
    public void MissingKeysTakeTransformersDefaults()
    {
        var c = Parse(Minimal());
        Assert.Equal("relu", c.FeedForwardProj);
        Assert.False(c.IsGated);
        Assert.True(c.TieWordEmbeddings);                      // original T5: tied, scaled head
        Assert.Equal(2, c.NumDecoderLayers);                    // = num_layers
        Assert.Equal((32, 128), (c.RelativeAttentionNumBuckets, c.RelativeAttentionMaxDistance));
        Assert.Equal((0, 0), (c.PadTokenId, c.DecoderStartTokenId));   // decoder start falls back to pad
        Assert.Equal([1], c.EosTokenIds);
        var j = Minimal();
        j["pad_token_id"] = 5;
        Assert.Equal(5, Parse(j).DecoderStartTokenId);
    }

    [Theory]
    [InlineData("relu", T5Activation.Relu, false)]
    [InlineData("gated-gelu", T5Activation.GeluNew, true)]  // transformers maps gated-gelu to gelu_new
    [InlineData("gelu", T5Activation.Gelu, false)]
    [InlineData("gated-relu", T5Activation.Relu, true)]
    [InlineData("gated-silu", T5Activation.Silu, true)]
    [InlineData("gelu_new", T5Activation.GeluNew, false)]
    public void FeedForwardProjParses(string value, T5Activation activation, bool gated)
    {
        var j = Minimal();
        j["feed_forward_proj"] = value;
        var c = Parse(j);
        Assert.Equal((activation, gated), (c.Activation, c.IsGated));
    }

    [Theory]
    [InlineData("gated-swoosh", "activation 'swoosh'")]
    [InlineData("tanh", "activation 'tanh'")]
    [InlineData("double-gelu", "optionally prefixed by 'gated-'")]
    [InlineData("gated-gelu-x", "optionally prefixed by 'gated-'")]
    public void UnknownFeedForwardProjIsAClearError(string value, string expected)
    {
        var j = Minimal();
        j["feed_forward_proj"] = value;
        var e = Assert.Throws<ModelConfigException>(() => Parse(j));
        Assert.Contains("test/config.json", e.Message);
        Assert.Contains($"feed_forward_proj '{value}'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("d_kv", null, "missing required key 'd_kv'")]
    [InlineData("num_heads", 0, "num_heads must be > 0")]
    [InlineData("relative_attention_num_buckets", 2, "relative_attention_num_buckets must be >= 4")]
    [InlineData("relative_attention_max_distance", 16, "relative_attention_max_distance (16) must exceed")]
    [InlineData("decoder_start_token_id", 100, "decoder_start_token_id 100 is outside the vocabulary")]
    [InlineData("is_encoder_decoder", false, "is_encoder_decoder is false")]
    [InlineData("model_type", "llama", "model_type 'llama' is not t5")]
    public void BadValuesAreClearErrors(string key, object? value, string expected)
    {
        var j = Minimal();
        if (value is null) j.Remove(key);
        else j[key] = JsonValue.Create(value);
        var e = Assert.Throws<ModelConfigException>(() => Parse(j));
        Assert.Contains("test/config.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void DecoderOnlyLoaderPointsToT5()
    {
        var e = Assert.Throws<ModelConfigException>(() => DecoderConfig.Parse(Minimal().ToJsonString(), "x/config.json"));
        Assert.Contains("t5", e.Message);
        Assert.True(T5Config.IsT5Folder(T5Fixtures.Dir));
        Assert.False(T5Config.IsT5Folder(Path.Combine(TestPaths.HfFixtures, Directory.GetDirectories(TestPaths.HfFixtures).Select(Path.GetFileName).First()!)));
    }

    [Fact]
    public void HfJsonRoundTrips()
    {
        var c = T5Presets.Get("t5-small-shape") with { EosTokenIds = [2, 7], TieWordEmbeddings = true, FeedForwardProj = "relu" };
        var back = T5Config.Parse(c.ToHfJson().ToJsonString(), "roundtrip");
        Assert.Equal(c.ToHfJson().ToJsonString(), back.ToHfJson().ToJsonString());
        Assert.Equal([2, 7], back.EosTokenIds);
    }
}
