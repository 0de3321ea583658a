using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>How tokens are chosen during generation.</summary>
/// <param name="MaxNewTokens">Upper bound on generated tokens per sequence.</param>
/// <param name="Greedy">Argmax decoding; when false, sample with the knobs below.</param>
/// <param name="Temperature">Logits are divided by this before sampling (must be &gt; 0).</param>
/// <param name="TopK">Keep only the k most likely tokens (0 = off).</param>
/// <param name="TopP">Nucleus sampling: keep the smallest set with probability mass ≥ p (1 = off).</param>
/// <param name="Seed">Seed of the sampling generator (null = nondeterministic).</param>
public sealed record SamplingConfig(int MaxNewTokens = 128, bool Greedy = true, double Temperature = 1.0, int TopK = 0, double TopP = 1.0, long? Seed = null)
{
    /// <summary>Throws on values that make no sense.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"max_new_tokens must be >= 0 (got {MaxNewTokens})");
        if (!Greedy && Temperature <= 0) throw new ArgumentException($"temperature must be > 0 (got {Temperature})");
        if (TopK < 0) throw new ArgumentException($"top_k must be >= 0 (got {TopK})");
        if (TopP is <= 0 or > 1) throw new ArgumentException($"top_p must be in (0, 1] (got {TopP})");
    }
}

/// <summary>Batched autoregressive generation for decoder-only models, with or without a KV cache.</summary>
public static class TextGenerator
{
    /// <summary>
    /// Generates a continuation for each prompt. Prompts are left-padded into one batch; a sequence stops at any
    /// of <paramref name="eosIds"/> (the EOS is included in its output) or after MaxNewTokens.
    /// Returns the generated ids only, without the prompt.
    /// </summary>
    public static IReadOnlyList<int[]> Generate(CausalLM model, IReadOnlyList<int[]> prompts, SamplingConfig cfg,
        IReadOnlyCollection<int> eosIds, int padId, bool useCache = true)
    {
        cfg.Validate();
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Length == 0)) throw new ArgumentException("every prompt needs at least one token");
        var device = model.EmbedTokens.weight!.device;
        int b = prompts.Count, p = prompts.Max(x => x.Length);
        var outputs = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var finished = new bool[b];
        var generator = cfg.Seed is long seed ? new Generator((ulong)seed, device) : null;

        // Left padding keeps every sequence's last token at the same column.
        var ids = new long[b * p];
        var mask = new long[b * p];
        for (int i = 0; i < b; i++)
        {
            int offset = p - prompts[i].Length;
            for (int j = 0; j < prompts[i].Length; j++) { ids[i * p + offset + j] = prompts[i][j]; mask[i * p + offset + j] = 1; }
            for (int j = 0; j < offset; j++) ids[i * p + j] = padId;
        }

        bool wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        var c = model.Config;
        int virtualTokens = model.InputAdapter?.NumVirtualTokens ?? 0;
        using var cache = useCache
            ? new KvCache(c.NumLayers, b, c.NumKeyValueHeads, virtualTokens + p + cfg.MaxNewTokens, c.HeadDim, model.EmbedTokens.weight!.dtype, device)
            : null;
        var allIds = new List<long>(ids);   // uncached path: the whole sequence so far, row-major [B, len]
        var allMask = new List<long>(mask);
        int len = p;
        long[] next = [];
        IDisposable? decoding = null;
        try
        {
            for (int step = 0; step < cfg.MaxNewTokens && !finished.All(f => f); step++)
            {
                // batch-1 cached steps after the prefill: one row per projection, streamed (StreamedGemv)
                if (step == 1 && b == 1 && cache is not null) decoding = StreamedGemv.SingleRowDecoding();
                using var scope = NewDisposeScope();
                Tensor logits;
                if (cache is not null)
                {
                    var stepIds = step == 0 ? tensor(ids, [b, p], device: device) : tensor(next, [b, 1], device: device);
                    var stepMask = tensor(allMask.ToArray(), [b, len], device: device);
                    logits = model.Forward(stepIds, stepMask, cache: cache, mode: LogitsMode.Last);
                }
                else
                {
                    logits = model.Forward(tensor(allIds.ToArray(), [b, len], device: device),
                        tensor(allMask.ToArray(), [b, len], device: device), mode: LogitsMode.Last);
                }
                next = Choose(logits.squeeze(1).to_type(ScalarType.Float32), cfg, generator);
                for (int i = 0; i < b; i++)
                {
                    if (finished[i]) { next[i] = padId; continue; }
                    outputs[i].Add((int)next[i]);
                    if (eosIds.Contains((int)next[i]) || outputs[i].Count >= cfg.MaxNewTokens) finished[i] = true;
                }
                // Append the new column to the row-major [B, len] buffers.
                allIds = Interleave(allIds, next, b, len);
                allMask = Interleave(allMask, Enumerable.Repeat(1L, b).ToArray(), b, len);
                len++;
            }
        }
        finally
        {
            decoding?.Dispose();
            if (wasTraining) model.train();
        }
        return outputs.Select(o => o.ToArray()).ToArray();
    }

    private static List<long> Interleave(List<long> rows, long[] column, int b, int len)
    {
        var result = new List<long>(b * (len + 1));
        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < len; j++) result.Add(rows[i * len + j]);
            result.Add(column[i]);
        }
        return result;
    }

    /// <summary>Picks the next token per row of <paramref name="logits"/> [B, V] (float32).</summary>
    public static long[] Choose(Tensor logits, SamplingConfig cfg, Generator? generator)
    {
        using var scope = NewDisposeScope();
        if (cfg.Greedy) return logits.argmax(-1).data<long>().ToArray();
        var scores = logits / cfg.Temperature;
        if (cfg.TopK > 0 && cfg.TopK < scores.shape[^1])
        {
            var kth = scores.topk(cfg.TopK, dim: -1).values.narrow(-1, cfg.TopK - 1, 1);   // [B, 1]
            scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
        }
        if (cfg.TopP < 1.0)
        {
            var (sorted, order) = scores.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            // drop a token when the mass before it already reaches p (the top token always stays)
            var drop = (probs.cumsum(-1) - probs).gt(cfg.TopP);
            var dropOriginal = zeros_like(drop).scatter(-1, order, drop);
            scores = scores.masked_fill(dropOriginal, double.NegativeInfinity);
        }
        return multinomial(scores.softmax(-1), 1, generator: generator).squeeze(-1).data<long>().ToArray();
    }
}
