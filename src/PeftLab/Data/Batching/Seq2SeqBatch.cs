namespace PeftLab.Data.Batching;

/// <summary>A batch as a model family consumes it: the trainer counts its tokens and hands it back to the family's loss.</summary>
public interface IModelBatch
{
    /// <summary>Tokens that carry a loss.</summary>
    long TargetCount { get; }
    /// <summary>Real (non-padding) tokens of the examples it holds, after truncation.</summary>
    long RealTokens { get; }
}

/// <summary>How an encoder-decoder model frames a batch: the decoder's start id, padding, and the source of an example that has none.</summary>
/// <param name="DecoderStartId">First decoder input (<c>decoder_start_token_id</c>); the decoder reads it + labels shifted right.</param>
/// <param name="PadId">Padding of sources and decoder inputs.</param>
/// <param name="EmptySourceId">The single source token of an example whose tokens are all targets (EOS).</param>
public sealed record Seq2SeqLayout(long DecoderStartId, long PadId, long EmptySourceId);

/// <summary>
/// An encoder-decoder batch, built from the examples directly: each example's prompt tokens are the encoder input and
/// its target tokens (EOS included) the labels. Arrays are row-major: <see cref="InputIds"/> and
/// <see cref="AttentionMask"/> [<see cref="Batch"/>, <see cref="SourceLength"/>] (right padding, mask 1 = real),
/// <see cref="DecoderInputIds"/> and <see cref="Labels"/> [<see cref="Batch"/>, <see cref="TargetLength"/>] (labels
/// <see cref="TokenBatch.IgnoreIndex"/> past each row's end; decoder inputs are the start id + labels shifted right).
/// </summary>
public sealed record Seq2SeqBatch(int Batch, int SourceLength, int TargetLength, long[] InputIds, long[] AttentionMask,
    long[] DecoderInputIds, long[] Labels, long TargetCount, long RealTokens) : IModelBatch
{
    /// <summary>
    /// Builds one batch from examples cut to <paramref name="lengths"/> tokens. A token is a target when the example marks
    /// it trainable and it is not the example's first (as in <see cref="TokenBatch"/>'s labels); every other is source.
    /// </summary>
    public static Seq2SeqBatch Build(IReadOnlyList<MaskedSequence> examples, IReadOnlyList<int> rows, IReadOnlyList<int> lengths, Seq2SeqLayout layout)
    {
        var sources = new List<long[]>(rows.Count);
        var targets = new List<long[]>(rows.Count);
        long real = 0;
        foreach (var i in rows)
        {
            var ex = examples[i];
            var src = new List<long>();
            var tgt = new List<long>();
            for (int k = 0; k < lengths[i]; k++)
                (ex.Trainable[k] && k > 0 ? tgt : src).Add(ex.Ids[k]);
            real += lengths[i];
            if (src.Count == 0) src.Add(layout.EmptySourceId);
            sources.Add([.. src]);
            targets.Add([.. tgt]);
        }
        int b = rows.Count, s = sources.Max(x => x.Length), t = Math.Max(1, targets.Max(x => x.Length));
        var ids = new long[b * s];
        var mask = new long[b * s];
        var dec = new long[b * t];
        var lab = new long[b * t];
        for (int r = 0; r < b; r++)
        {
            for (int j = 0; j < s; j++)
            {
                bool isReal = j < sources[r].Length;
                ids[r * s + j] = isReal ? sources[r][j] : layout.PadId;
                mask[r * s + j] = isReal ? 1 : 0;
            }
            for (int j = 0; j < t; j++)
            {
                lab[r * t + j] = j < targets[r].Length ? targets[r][j] : TokenBatch.IgnoreIndex;
                dec[r * t + j] = j == 0 ? layout.DecoderStartId : (j - 1 < targets[r].Length ? targets[r][j - 1] : layout.PadId);
            }
        }
        return new Seq2SeqBatch(b, s, t, ids, mask, dec, lab, targets.Sum(x => (long)x.Length), real);
    }
}
