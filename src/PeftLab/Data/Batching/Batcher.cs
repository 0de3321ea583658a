namespace PeftLab.Data.Batching;

/// <summary>Where padding goes in a padded batch.</summary>
public enum PaddingSide
{
    /// <summary>After the tokens (training).</summary>
    Right,

    /// <summary>Before the tokens (batched generation, so every prompt ends at the last column).</summary>
    Left,
}

/// <summary>Batching settings.</summary>
public sealed record BatchingConfig
{
    /// <summary>
    /// Longest sequence (and packed row) in tokens. An example longer than this is truncated to its first
    /// <see cref="MaxLength"/> tokens and counted in <see cref="BatchingReport"/>; examples are never split across rows.
    /// </summary>
    public int MaxLength { get; init; } = 2048;

    /// <summary>Examples per padded batch, or rows per packed batch.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Id written into padding positions (they are masked out, so any valid id works).</summary>
    public long PadId { get; init; }

    public PaddingSide PaddingSide { get; init; } = PaddingSide.Right;

    /// <summary>Shuffle examples (and batches) with <see cref="Seed"/> and the epoch number.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Group examples of similar length into the same padded batch to reduce padding.</summary>
    public bool GroupByLength { get; init; }

    /// <summary>Mega-batch size, in batches, within which examples are sorted by length when <see cref="GroupByLength"/> is on.</summary>
    public int MegaBatchFactor { get; init; } = 50;

    public long Seed { get; init; } = 42;

    /// <summary>Round each batch's length up to a multiple of this (capped at MaxLength) so few shapes occur; 1 = off.</summary>
    public int PadToMultipleOf { get; init; } = 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (MaxLength <= 0) throw new ArgumentException($"MaxLength must be positive, got {MaxLength}");
        if (BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {BatchSize}");
        if (MegaBatchFactor <= 0) throw new ArgumentException($"MegaBatchFactor must be positive, got {MegaBatchFactor}");
        if (!Enum.IsDefined(PaddingSide)) throw new ArgumentException($"unknown padding side {(int)PaddingSide}");
    }
}

/// <summary>Counts of what batching did, with a warning line for anything lossy.</summary>
public sealed record BatchingReport(int ExampleCount, int TruncatedCount, int NoTargetAfterTruncationCount, long RealTokens,
    long PaddingTokens, IReadOnlyList<string> Warnings);

/// <summary>Batches plus their report.</summary>
public sealed record BatchingResult(IReadOnlyList<TokenBatch> Batches, BatchingReport Report);

/// <summary>
/// Turns tokenised examples into padded or packed <see cref="TokenBatch"/>es. Pure arrays, no tensors; deterministic for
/// a seed and epoch.
/// </summary>
public sealed class Batcher
{
    private readonly BatchingConfig _config;

    public Batcher(BatchingConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        _config = config;
    }

    public BatchingConfig Config => _config;

    /// <summary>
    /// The order of example indices per batch. Without length grouping: (optionally shuffled) order cut into batches.
    /// With it: shuffle, cut into mega-batches of <c>BatchSize * MegaBatchFactor</c>, sort each by length (longest
    /// first, stable), cut into batches, then shuffle the batches.
    /// </summary>
    public IReadOnlyList<int[]> PlanBatches(IReadOnlyList<int> lengths, int epoch = 0)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        var rng = DeterministicRng.ForStream(_config.Seed, $"batches/epoch{epoch}");
        var idx = Enumerable.Range(0, lengths.Count).ToArray();
        if (_config.Shuffle) rng.Shuffle(idx);
        if (_config.GroupByLength)
        {
            int mega = _config.BatchSize * _config.MegaBatchFactor;
            for (int s = 0; s < idx.Length; s += mega)
            {
                int n = Math.Min(mega, idx.Length - s);
                var sorted = idx.Skip(s).Take(n).OrderByDescending(i => lengths[i]).ToArray(); // stable
                Array.Copy(sorted, 0, idx, s, n);
            }
        }
        var batches = idx.Chunk(_config.BatchSize).ToList();
        if (_config.GroupByLength && _config.Shuffle) rng.Shuffle(batches);
        return batches;
    }

    /// <summary>Padded batches, one example per row, ordered by <see cref="PlanBatches"/>.</summary>
    public BatchingResult Batches(IReadOnlyList<MaskedSequence> examples, int epoch = 0)
    {
        var stats = new Stats(examples, _config.MaxLength);
        var plan = PlanBatches(stats.Lengths, epoch);
        var batches = plan.Select(b => Build(examples, b.Select(i => new[] { i }).ToList(), stats)).ToList();
        return new BatchingResult(batches, stats.Report(batches));
    }

    /// <summary>
    /// Encoder-decoder batches, one example per row, in the same order as <see cref="Batches"/> (the same plan and
    /// truncation): each example's prompt is its row's encoder input and its targets the row's labels.
    /// </summary>
    public IReadOnlyList<Seq2SeqBatch> Seq2SeqBatches(IReadOnlyList<MaskedSequence> examples, Seq2SeqLayout layout, int epoch = 0)
    {
        var stats = new Stats(examples, _config.MaxLength);
        return PlanBatches(stats.Lengths, epoch).Select(b => Seq2SeqBatch.Build(examples, b, stats.Lengths, layout)).ToList();
    }

    /// <summary>
    /// Packed batches: examples are placed whole into rows of at most <see cref="BatchingConfig.MaxLength"/> tokens by
    /// best-fit decreasing (over the seeded shuffled order), rows are shuffled and grouped <see cref="BatchingConfig.BatchSize"/>
    /// per batch. Each batch is as long as its fullest row.
    /// </summary>
    public BatchingResult Pack(IReadOnlyList<MaskedSequence> examples, int epoch = 0)
    {
        var stats = new Stats(examples, _config.MaxLength);
        var rng = DeterministicRng.ForStream(_config.Seed, $"pack/epoch{epoch}");
        var order = Enumerable.Range(0, examples.Count).ToArray();
        if (_config.Shuffle) rng.Shuffle(order);
        var byLength = order.OrderByDescending(i => stats.Lengths[i]).ToArray(); // stable: ties keep shuffled order

        var rows = new List<List<int>>();
        var free = new SortedSet<(int Free, int Row)>();
        foreach (var i in byLength)
        {
            int len = stats.Lengths[i];
            // Best fit: the row with the least free space that still holds the example.
            (int Free, int Row)? found = null;
            foreach (var candidate in free.GetViewBetween((len, -1), (int.MaxValue, int.MaxValue)))
            {
                found = candidate; // the smallest; enumerating a view is O(log n) per step, Count would be O(n)
                break;
            }
            if (found is { } best)
            {
                free.Remove(best);
                rows[best.Row].Add(i);
                free.Add((best.Free - len, best.Row));
            }
            else
            {
                rows.Add([i]);
                free.Add((_config.MaxLength - len, rows.Count - 1));
            }
        }
        if (_config.Shuffle) rng.Shuffle(rows);
        var batches = rows.Chunk(_config.BatchSize)
            .Select(chunk => Build(examples, chunk.Select(r => r.ToArray()).ToList(), stats)).ToList();
        return new BatchingResult(batches, stats.Report(batches));
    }

    private TokenBatch Build(IReadOnlyList<MaskedSequence> examples, IReadOnlyList<int[]> rows, Stats stats)
    {
        int length = rows.Max(r => r.Sum(i => stats.Lengths[i]));
        // Few distinct row lengths: each new shape costs the CPU kernels a slow first call (measured: seconds).
        if (_config.PadToMultipleOf > 1)
            length = Math.Max(length, Math.Min(_config.MaxLength, (length + _config.PadToMultipleOf - 1) / _config.PadToMultipleOf * _config.PadToMultipleOf));
        int b = rows.Count, n = b * length;
        var ids = new long[n];
        var labels = new long[n];
        var pos = new long[n];
        var seg = new int[n];
        var att = new bool[n];
        Array.Fill(ids, _config.PadId);
        Array.Fill(labels, TokenBatch.IgnoreIndex);
        Array.Fill(seg, TokenBatch.PaddingSegment);
        for (int r = 0; r < b; r++)
        {
            int used = rows[r].Sum(i => stats.Lengths[i]);
            int k = r * length + (_config.PaddingSide == PaddingSide.Left ? length - used : 0);
            for (int s = 0; s < rows[r].Length; s++)
            {
                var ex = examples[rows[r][s]];
                int len = stats.Lengths[rows[r][s]];
                for (int t = 0; t < len; t++, k++)
                {
                    ids[k] = ex.Ids[t];
                    // The first token of an example is never predicted from inside the example; in a packed row it would
                    // otherwise be "predicted" from the previous example's last token.
                    labels[k] = ex.Trainable[t] && t > 0 ? ex.Ids[t] : TokenBatch.IgnoreIndex;
                    pos[k] = t;
                    seg[k] = s;
                    att[k] = true;
                }
            }
        }
        return new TokenBatch(b, length, ids, labels, pos, seg, att) { RowExamples = rows };
    }

    // Per-example lengths after truncation, and what truncation cost.
    private sealed class Stats
    {
        public int[] Lengths { get; }
        private readonly int _truncated;
        private readonly int _noTarget;
        private readonly int _maxLength;

        public Stats(IReadOnlyList<MaskedSequence> examples, int maxLength)
        {
            ArgumentNullException.ThrowIfNull(examples);
            if (examples.Count == 0) throw new ArgumentException("no examples to batch", nameof(examples));
            _maxLength = maxLength;
            Lengths = new int[examples.Count];
            for (int i = 0; i < examples.Count; i++)
            {
                var ex = examples[i] ?? throw new ArgumentException($"example {i} is null", nameof(examples));
                if (ex.Length == 0) throw new ArgumentException($"example {i} has no tokens", nameof(examples));
                if (ex.Length > maxLength)
                {
                    _truncated++;
                    bool hadTarget = ex.Trainable.Skip(1).Any(t => t);
                    bool keepsTarget = ex.Trainable.Skip(1).Take(maxLength - 1).Any(t => t);
                    if (hadTarget && !keepsTarget) _noTarget++;
                }
                Lengths[i] = Math.Min(ex.Length, maxLength);
            }
        }

        public BatchingReport Report(IReadOnlyList<TokenBatch> batches)
        {
            long real = Lengths.Sum(l => (long)l);
            long total = batches.Sum(b => (long)b.Batch * b.Length);
            var warnings = new List<string>();
            if (_truncated > 0)
                warnings.Add($"{_truncated} of {Lengths.Length} examples were longer than MaxLength={_maxLength} tokens and were truncated to their first {_maxLength} tokens"
                    + (_noTarget > 0 ? $"; {_noTarget} of them lost every trainable token and contribute no loss" : ""));
            return new BatchingReport(Lengths.Length, _truncated, _noTarget, real, total - real, warnings);
        }
    }
}
