using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>Batched generation for encoder-decoder models: the encoder runs once, the decoder step by step.</summary>
public static class Seq2SeqGenerator
{
    /// <summary>
    /// Generates an output for each input. Inputs are right-padded into one batch (T5's relative positions make
    /// that exact) and masked; the decoder starts from <c>decoder_start_token_id</c>. With a cache, the decoder's
    /// self-attention keys/values accumulate step by step and the cross-attention keys/values are computed once;
    /// without, every step reruns encoder and decoder on everything so far (the reference the cache is tested against).
    /// A sequence stops at any of <paramref name="eosIds"/> (the EOS is included in its output; null = the config's)
    /// or after MaxNewTokens; finished rows are fed <paramref name="padId"/> (null = the config's). Tokens are chosen
    /// by <see cref="TextGenerator.Choose"/>. Returns the generated ids without the decoder start token.
    /// </summary>
    public static IReadOnlyList<int[]> Generate(T5ForConditionalGeneration model, IReadOnlyList<int[]> inputs, SamplingConfig cfg,
        IReadOnlyCollection<int>? eosIds = null, int? padId = null, bool useCache = true)
    {
        cfg.Validate();
        if (inputs.Count == 0) return [];
        if (inputs.Any(p => p.Length == 0)) throw new ArgumentException("every input needs at least one token");
        var c = model.Config;
        var eos = eosIds ?? c.EosTokenIds;
        int pad = padId ?? c.PadTokenId;
        var device = model.EmbedTokens.weight!.device;
        int b = inputs.Count, s = inputs.Max(x => x.Length);
        var outputs = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var finished = new bool[b];
        var generator = cfg.Seed is long seed ? new Generator((ulong)seed, device) : null;

        var ids = new long[b * s];
        var mask = new long[b * s];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < s; j++)
            {
                bool real = j < inputs[i].Length;
                ids[i * s + j] = real ? inputs[i][j] : pad;
                mask[i * s + j] = real ? 1 : 0;
            }

        bool wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        using var outer = NewDisposeScope();
        var inputIds = tensor(ids, [b, s], device: device);
        var attentionMask = tensor(mask, [b, s], device: device);
        var adapter = model.InputAdapter;
        long virtualTokens = adapter?.VirtualTokens(ModelStack.Decoder) ?? 0;
        using var cache = useCache
            ? new T5DecoderCache(c, b, virtualTokens + 1 + cfg.MaxNewTokens, model.EmbedTokens.weight!.dtype, device)
            : null;
        var encoded = useCache ? model.Encode(inputIds, attentionMask) : null;
        var decoded = Enumerable.Range(0, b).Select(_ => new List<long> { c.DecoderStartTokenId }).ToArray();
        try
        {
            for (int step = 0; step < cfg.MaxNewTokens && !finished.All(f => f); step++)
            {
                using var scope = NewDisposeScope();
                Tensor logits;
                if (cache is not null)
                {
                    var last = tensor(decoded.Select(d => d[^1]).ToArray(), [b, 1], device: device);
                    logits = model.Decode(last, encoded!, cache: cache, mode: LogitsMode.Last);
                }
                else
                {
                    var all = tensor(decoded.SelectMany(d => d).ToArray(), [b, decoded[0].Count], device: device);
                    logits = model.Decode(all, model.Encode(inputIds, attentionMask), mode: LogitsMode.Last);
                }
                var next = TextGenerator.Choose(logits.squeeze(1).to_type(ScalarType.Float32), cfg, generator);
                for (int i = 0; i < b; i++)
                {
                    if (finished[i]) { decoded[i].Add(pad); continue; }
                    decoded[i].Add(next[i]);
                    outputs[i].Add((int)next[i]);
                    if (eos.Contains((int)next[i]) || outputs[i].Count >= cfg.MaxNewTokens) finished[i] = true;
                }
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        return outputs.Select(o => o.ToArray()).ToArray();
    }
}
