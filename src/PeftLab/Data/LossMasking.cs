namespace PeftLab.Data;

/// <summary>
/// One tokenised training example: token ids and, per token, whether the loss is computed on it.
/// Both arrays have the same length; the record does not copy them, so do not mutate them afterwards.
/// </summary>
public sealed record MaskedSequence
{
    /// <summary>Token ids.</summary>
    public int[] Ids { get; }

    /// <summary><c>Trainable[i]</c> is true when token <c>i</c> is a prediction target.</summary>
    public bool[] Trainable { get; }

    public MaskedSequence(int[] ids, bool[] trainable)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(trainable);
        if (ids.Length != trainable.Length)
            throw new ArgumentException($"ids ({ids.Length}) and trainable mask ({trainable.Length}) differ in length");
        Ids = ids;
        Trainable = trainable;
    }

    /// <summary>Number of tokens.</summary>
    public int Length => Ids.Length;

    /// <summary>Number of trainable tokens.</summary>
    public int TrainableCount => Trainable.Count(t => t);
}

/// <summary>
/// Builds token ids plus a loss mask without knowing the tokenizer: each text segment is encoded on its own and the
/// pieces are concatenated, so the mask boundary is exact. The price is that a BPE merge across a segment boundary
/// cannot happen; the encoder must therefore not add special tokens (BOS/EOS) by itself, or they would repeat for
/// every segment — pass them explicitly instead.
/// </summary>
public static class LossMasking
{
    /// <summary>
    /// Encodes each segment separately and concatenates; tokens of trainable segments are trainable.
    /// </summary>
    /// <param name="segments">Rendered text, e.g. from a chat template.</param>
    /// <param name="encode">Text to ids, without automatically added special tokens.</param>
    /// <param name="bosId">If given, prepended once as a non-trainable token (for tokenizers whose template does not render BOS).</param>
    public static MaskedSequence FromSegments(IReadOnlyList<TextSegment> segments, Func<string, int[]> encode, int? bosId = null)
    {
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(encode);
        var ids = new List<int>();
        var mask = new List<bool>();
        if (bosId is { } bos)
        {
            ids.Add(bos);
            mask.Add(false);
        }
        for (int s = 0; s < segments.Count; s++)
        {
            var seg = segments[s] ?? throw new ArgumentException($"segment {s} is null", nameof(segments));
            if (seg.Text.Length == 0) continue;
            var part = encode(seg.Text) ?? throw new InvalidOperationException($"encode returned null for segment {s}");
            ids.AddRange(part);
            for (int i = 0; i < part.Length; i++) mask.Add(seg.Trainable);
        }
        return new MaskedSequence(ids.ToArray(), mask.ToArray());
    }

    /// <summary>
    /// SuperNI-style example for a decoder-only model: source ids, then target ids, then EOS; only the target and
    /// EOS are trainable (the model learns to stop after the answer).
    /// </summary>
    public static MaskedSequence FromSourceTarget(IReadOnlyList<int> sourceIds, IReadOnlyList<int> targetIds, int eosId)
    {
        ArgumentNullException.ThrowIfNull(sourceIds);
        ArgumentNullException.ThrowIfNull(targetIds);
        int n = sourceIds.Count + targetIds.Count + 1;
        var ids = new int[n];
        var mask = new bool[n];
        int k = 0;
        foreach (var id in sourceIds) ids[k++] = id;
        foreach (var id in targetIds)
        {
            mask[k] = true;
            ids[k++] = id;
        }
        ids[k] = eosId;
        mask[k] = true;
        return new MaskedSequence(ids, mask);
    }

    /// <summary>Encodes <paramref name="source"/> and <paramref name="target"/> separately, then as <see cref="FromSourceTarget(IReadOnlyList{int}, IReadOnlyList{int}, int)"/>.</summary>
    public static MaskedSequence FromSourceTarget(string source, string target, Func<string, int[]> encode, int eosId)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(encode);
        return FromSourceTarget(encode(source), target.Length == 0 ? [] : encode(target), eosId);
    }
}
