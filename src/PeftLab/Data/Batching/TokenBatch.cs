namespace PeftLab.Data.Batching;

/// <summary>
/// A batch of token rows, all arrays row-major [<see cref="Batch"/>, <see cref="Length"/>].
/// <list type="bullet">
/// <item><see cref="Labels"/> are aligned with <see cref="InputIds"/> (not shifted; the loss shifts by one, as in
/// Hugging Face) and are -100 where no loss is taken: padding, non-trainable tokens and the first token of every example.</item>
/// <item><see cref="PositionIds"/> restart at 0 at the first token of every example (padding: 0).</item>
/// <item><see cref="SegmentIds"/> number the examples within a row 0, 1, 2, ... (padding: -1); attention must not cross
/// segment boundaries, so a packed row needs a block-diagonal causal mask.</item>
/// <item><see cref="AttentionMask"/> is true for real tokens, false for padding.</item>
/// </list>
/// </summary>
public sealed record TokenBatch(int Batch, int Length, long[] InputIds, long[] Labels, long[] PositionIds, int[] SegmentIds, bool[] AttentionMask) : IModelBatch
{
    /// <summary>Label value that the loss ignores.</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Segment id of padding.</summary>
    public const int PaddingSegment = -1;

    /// <summary>For each row, the indices (into the batcher's input list) of the examples it holds, in row order.</summary>
    public IReadOnlyList<int[]> RowExamples { get; init; } = [];

    /// <inheritdoc/>
    public long RealTokens => AttentionMask.LongCount(m => m);

    /// <summary>Flat index of (row, column).</summary>
    public int At(int row, int column) => row * Length + column;

    /// <summary>Target tokens: labels other than <see cref="IgnoreIndex"/> after each row's first column (nothing predicts a row's first token).</summary>
    public long TargetCount
    {
        get
        {
            long n = 0;
            for (int r = 0; r < Batch; r++)
                for (int c = 1; c < Length; c++)
                    if (Labels[r * Length + c] != IgnoreIndex) n++;
            return n;
        }
    }

    /// <summary>Checks array sizes and the documented invariants; throws <see cref="InvalidOperationException"/> if broken.</summary>
    public void Validate()
    {
        int n = Batch * Length;
        if (Batch < 0 || Length < 0) throw new InvalidOperationException($"negative shape [{Batch}, {Length}]");
        if (InputIds.Length != n || Labels.Length != n || PositionIds.Length != n || SegmentIds.Length != n || AttentionMask.Length != n)
            throw new InvalidOperationException($"array lengths do not match shape [{Batch}, {Length}]");
        for (int i = 0; i < n; i++)
        {
            bool pad = SegmentIds[i] == PaddingSegment;
            if (pad == AttentionMask[i]) throw new InvalidOperationException($"attention mask and segment id disagree at flat index {i}");
            if (pad && Labels[i] != IgnoreIndex) throw new InvalidOperationException($"padding has a label at flat index {i}");
            if (Labels[i] != IgnoreIndex && Labels[i] != InputIds[i]) throw new InvalidOperationException($"label differs from input id at flat index {i}");
        }
    }
}
