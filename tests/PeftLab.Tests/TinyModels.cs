using PeftLab.Models;
using static TorchSharp.torch;

namespace PeftLab.Tests;

/// <summary>Very small models built in code for fast tests.</summary>
public static class TinyModels
{
    public static readonly DecoderConfig Llama = new()
    {
        Family = DecoderFamily.Llama, VocabSize = 64, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2,
        NumHeads = 4, NumKeyValueHeads = 2, HeadDim = 8, RmsNormEps = 1e-5, EosTokenIds = [2], BosTokenId = 1, PadTokenId = 0,
    };

    public static readonly DecoderConfig Qwen2 = Llama with
    {
        Family = DecoderFamily.Qwen2, QkvBias = true, TieWordEmbeddings = true, Rope = new RopeConfig(1000000.0), NumKeyValueHeads = 1,
    };

    public static IReadOnlyDictionary<string, DecoderConfig> ByName { get; } = new Dictionary<string, DecoderConfig> { ["llama"] = Llama, ["qwen2"] = Qwen2 };

    /// <summary>A randomly initialised model (deterministic for a seed).</summary>
    public static CausalLM Create(DecoderConfig config, long seed = 1, ScalarType dtype = ScalarType.Float32)
    {
        var model = new CausalLM(config, CPU, dtype);
        Presets.InitializeWeights(model, seed);
        return model;
    }

    /// <summary>Deterministic token ids [B, T] in [3, vocab).</summary>
    public static Tensor Tokens(int batch, int length, int vocab, long seed = 7)
    {
        var gen = new Generator((ulong)seed, CPU);
        return randint(3, vocab, [batch, length], generator: gen, dtype: ScalarType.Int64);
    }

    /// <summary>Next-token cross entropy over all positions.</summary>
    public static Tensor LmLoss(Tensor logits, Tensor ids)
    {
        long t = ids.shape[1];
        var pred = logits.narrow(1, 0, t - 1).reshape(-1, logits.shape[^1]);
        var target = ids.narrow(1, 1, t - 1).reshape(-1);
        return nn.functional.cross_entropy(pred.to_type(ScalarType.Float32), target);
    }
}
