using PeftLab.Data;
using PeftLab.Data.Batching;

namespace PeftLab.Tests.Data;

public sealed class BatcherTests
{
    // Example i has length lens[i]; ids encode (example, position) so every token can be traced back.
    private static List<MaskedSequence> Examples(IEnumerable<int> lens, int promptLen = 2) =>
        lens.Select((len, i) => new MaskedSequence(
            Enumerable.Range(0, len).Select(t => i * 1000 + t + 1).ToArray(),
            Enumerable.Range(0, len).Select(t => t >= promptLen).ToArray())).ToList();

    private static List<int> RandomLengths(int n, int max, ulong seed)
    {
        var rng = new DeterministicRng(seed);
        return Enumerable.Range(0, n).Select(_ => 1 + rng.NextInt(max)).ToList();
    }

    // Checks every documented invariant of every row against the source examples; returns example -> count of appearances.
    private static int[] CheckRows(BatchingResult result, List<MaskedSequence> examples, int maxLength, PaddingSide side = PaddingSide.Right)
    {
        var seen = new int[examples.Count];
        foreach (var b in result.Batches)
        {
            b.Validate();
            Assert.Equal(b.Batch, b.RowExamples.Count);
            Assert.True(b.Length <= maxLength);
            for (int r = 0; r < b.Batch; r++)
            {
                var row = b.RowExamples[r];
                int used = row.Sum(i => Math.Min(examples[i].Length, maxLength));
                Assert.True(used <= maxLength);
                int k = side == PaddingSide.Left ? b.Length - used : 0;
                for (int c = 0; c < (side == PaddingSide.Left ? k : 0); c++) AssertPad(b, r, c);
                for (int s = 0; s < row.Length; s++)
                {
                    var ex = examples[row[s]];
                    seen[row[s]]++;
                    int len = Math.Min(ex.Length, maxLength);
                    for (int t = 0; t < len; t++, k++)
                    {
                        int at = b.At(r, k);
                        Assert.Equal(ex.Ids[t], b.InputIds[at]);
                        Assert.Equal(t, b.PositionIds[at]);
                        Assert.Equal(s, b.SegmentIds[at]);
                        Assert.True(b.AttentionMask[at]);
                        Assert.Equal(ex.Trainable[t] && t > 0 ? ex.Ids[t] : TokenBatch.IgnoreIndex, b.Labels[at]);
                    }
                }
                if (side == PaddingSide.Right)
                    for (; k < b.Length; k++) AssertPad(b, r, k);
            }
        }
        return seen;
    }

    private static void AssertPad(TokenBatch b, int r, int c)
    {
        int at = b.At(r, c);
        Assert.Equal(TokenBatch.PaddingSegment, b.SegmentIds[at]);
        Assert.False(b.AttentionMask[at]);
        Assert.Equal(TokenBatch.IgnoreIndex, b.Labels[at]);
        Assert.Equal(0, b.PositionIds[at]);
        Assert.Equal(-1L, b.InputIds[at]);
    }

    [Fact]
    public void PaddedBatchesHoldEveryExampleOnceWithMaskedLabels()
    {
        var ex = Examples(RandomLengths(53, 40, 1));
        var cfg = new BatchingConfig { MaxLength = 64, BatchSize = 4, PadId = -1, Seed = 5 };
        var res = new Batcher(cfg).Batches(ex);
        Assert.Equal(14, res.Batches.Count);
        Assert.All(CheckRows(res, ex, 64), n => Assert.Equal(1, n));
        Assert.All(res.Batches, b => Assert.Equal(b.RowExamples.Max(r => ex[r[0]].Length), b.Length));
        Assert.Equal(0, res.Report.TruncatedCount);
        Assert.Equal(ex.Sum(e => e.Length), res.Report.RealTokens);
        Assert.Equal(res.Batches.Sum(b => (long)b.Batch * b.Length) - res.Report.RealTokens, res.Report.PaddingTokens);

        // Deterministic per seed and epoch; epochs differ.
        var again = new Batcher(cfg).Batches(ex);
        Assert.Equal(res.Batches.SelectMany(b => b.RowExamples.Select(r => r[0])), again.Batches.SelectMany(b => b.RowExamples.Select(r => r[0])));
        var epoch1 = new Batcher(cfg).Batches(ex, epoch: 1);
        Assert.NotEqual(res.Batches.SelectMany(b => b.RowExamples.Select(r => r[0])), epoch1.Batches.SelectMany(b => b.RowExamples.Select(r => r[0])));

        var ordered = new Batcher(cfg with { Shuffle = false }).Batches(ex);
        Assert.Equal(Enumerable.Range(0, 53), ordered.Batches.SelectMany(b => b.RowExamples.Select(r => r[0])));
    }

    [Fact]
    public void LeftPaddingPutsPromptsAtTheEnd()
    {
        var ex = Examples([3, 7, 5]);
        var res = new Batcher(new BatchingConfig { MaxLength = 16, BatchSize = 3, PadId = -1, Shuffle = false, PaddingSide = PaddingSide.Left }).Batches(ex);
        var b = Assert.Single(res.Batches);
        Assert.Equal(7, b.Length);
        CheckRows(res, ex, 16, PaddingSide.Left);
        Assert.Equal(ex[0].Ids[^1], b.InputIds[b.At(0, 6)]);
    }

    [Fact]
    public void LengthGroupingSortsWithinMegaBatchesAndShufflesBatches()
    {
        var lens = RandomLengths(200, 100, 2);
        var cfg = new BatchingConfig { BatchSize = 5, MegaBatchFactor = 4, GroupByLength = true, Seed = 3 };
        var batcher = new Batcher(cfg);
        var plan = batcher.PlanBatches(lens);
        Assert.Equal(40, plan.Count);
        Assert.Equal(Enumerable.Range(0, 200), plan.SelectMany(b => b).Order());
        // Within each batch lengths are non-increasing (each batch is a slice of a sorted mega-batch).
        Assert.All(plan, b => Assert.Equal(b.Select(i => lens[i]).OrderByDescending(l => l), b.Select(i => lens[i])));
        // Grouping reduces padding compared to plain shuffling.
        long Padding(IReadOnlyList<int[]> p) => p.Sum(b => (long)b.Length * b.Max(i => lens[i]) - b.Sum(i => lens[i]));
        var plain = new Batcher(cfg with { GroupByLength = false }).PlanBatches(lens);
        Assert.True(Padding(plan) < Padding(plain) / 2, $"grouped padding {Padding(plan)} vs plain {Padding(plain)}");
        // Batches are shuffled: the batch order is not the mega-batch order (descending within each run of 4 batches).
        Assert.Contains(Enumerable.Range(0, 10), m => !plan.Skip(4 * m).Take(4).Select(b => lens[b[0]]).SequenceEqual(plan.Skip(4 * m).Take(4).Select(b => lens[b[0]]).OrderByDescending(l => l)));
        Assert.Equal(plan.Select(b => b.ToArray()), batcher.PlanBatches(lens).Select(b => b.ToArray()));
        Assert.NotEqual(plan.Select(b => b[0]), new Batcher(cfg with { Seed = 4 }).PlanBatches(lens).Select(b => b[0]));
    }

    [Fact]
    public void PackingKeepsExamplesWholeAndRestartsPositions()
    {
        var ex = Examples(RandomLengths(300, 60, 3));
        var cfg = new BatchingConfig { MaxLength = 128, BatchSize = 4, PadId = -1, Seed = 11 };
        var res = new Batcher(cfg).Pack(ex);
        Assert.All(CheckRows(res, ex, 128), n => Assert.Equal(1, n));
        int rows = res.Batches.Sum(b => b.Batch);
        long real = ex.Sum(e => e.Length);
        Assert.True(rows <= real / 128.0 * 1.1 + 1, $"{rows} rows for {real} tokens: packing is too loose");
        Assert.Contains(res.Batches, b => b.RowExamples.Any(r => r.Length > 2));
        Assert.Equal(0, res.Report.TruncatedCount);

        // Positions restart at 0 at each example boundary, segment ids count up within a row.
        var b0 = res.Batches[0];
        for (int r = 0; r < b0.Batch; r++)
        {
            int starts = 0;
            for (int c = 0; c < b0.Length; c++)
                if (b0.AttentionMask[b0.At(r, c)] && b0.PositionIds[b0.At(r, c)] == 0)
                {
                    Assert.Equal(starts, b0.SegmentIds[b0.At(r, c)]);
                    Assert.Equal(TokenBatch.IgnoreIndex, b0.Labels[b0.At(r, c)]);
                    starts++;
                }
            Assert.Equal(b0.RowExamples[r].Length, starts);
        }

        var again = new Batcher(cfg).Pack(ex);
        Assert.Equal(res.Batches.SelectMany(b => b.RowExamples).Select(r => string.Join(",", r)),
            again.Batches.SelectMany(b => b.RowExamples).Select(r => string.Join(",", r)));
    }

    [Fact]
    public void OverLongExamplesAreTruncatedAndCounted()
    {
        // Example 1 is too long but keeps targets; example 2 loses all of its targets (prompt of 12 tokens).
        var ex = new List<MaskedSequence>
        {
            new([1, 2, 3], [false, true, true]),
            new(Enumerable.Range(1, 20).ToArray(), Enumerable.Range(0, 20).Select(t => t >= 2).ToArray()),
            new(Enumerable.Range(1, 15).ToArray(), Enumerable.Range(0, 15).Select(t => t >= 12).ToArray()),
        };
        foreach (var packed in new[] { false, true })
        {
            var batcher = new Batcher(new BatchingConfig { MaxLength = 10, BatchSize = 2, PadId = -1, Seed = 1 });
            var res = packed ? batcher.Pack(ex) : batcher.Batches(ex);
            Assert.All(CheckRows(res, ex, 10), n => Assert.Equal(1, n));
            Assert.Equal(2, res.Report.TruncatedCount);
            Assert.Equal(1, res.Report.NoTargetAfterTruncationCount);
            var w = Assert.Single(res.Report.Warnings);
            Assert.Contains("2 of 3 examples were longer than MaxLength=10 tokens and were truncated to their first 10 tokens; 1 of them lost every trainable token", w);
            Assert.All(res.Batches, b => Assert.True(b.Length <= 10));
        }
    }

    [Fact]
    public void RejectsBadInput()
    {
        var batcher = new Batcher(new BatchingConfig());
        Assert.Throws<ArgumentException>(() => batcher.Batches([]));
        Assert.Throws<ArgumentException>(() => batcher.Pack([new MaskedSequence([], [])]));
        var e = Assert.Throws<ArgumentException>(() => new Batcher(new BatchingConfig { BatchSize = 0 }));
        Assert.Contains("BatchSize", e.Message);
    }

    [Fact]
    public void Seq2SeqBatchesCarryPromptsAsSourcesAndTargetsAsLabelsInTheSameOrder()
    {
        // prompt 10 11 12 | target 20 21 1 ; prompt 30 | target 40 1 ; all-target example: its source is the EOS
        MaskedSequence Ex(int[] prompt, int[] target) => new([.. prompt, .. target], [.. prompt.Select(_ => false), .. target.Select(_ => true)]);
        var examples = new[] { Ex([10, 11, 12], [20, 21, 1]), Ex([30], [40, 1]), new MaskedSequence([50, 51], [true, true]) };
        var batcher = new Batcher(new BatchingConfig { BatchSize = 2, MaxLength = 64, Shuffle = true, Seed = 3 });
        var layout = new Seq2SeqLayout(DecoderStartId: 0, PadId: 7, EmptySourceId: 1);
        var s2s = batcher.Seq2SeqBatches(examples, layout, epoch: 1);
        var rows = batcher.Batches(examples, epoch: 1).Batches;
        Assert.Equal(rows.Select(r => r.Batch), s2s.Select(b => b.Batch));
        Assert.Equal(rows.Sum(r => r.TargetCount), s2s.Sum(b => b.TargetCount));
        Assert.Equal(rows.Sum(r => r.RealTokens), s2s.Sum(b => b.RealTokens));
        var byFirst = new Dictionary<long, (long[] Src, long[] Lab, long[] Dec)>();
        foreach (var b in s2s)
            for (int r = 0; r < b.Batch; r++)
                byFirst[b.InputIds[r * b.SourceLength]] = (
                    b.InputIds.Skip(r * b.SourceLength).Take(b.SourceLength).Where((_, j) => b.AttentionMask[r * b.SourceLength + j] == 1).ToArray(),
                    b.Labels.Skip(r * b.TargetLength).Take(b.TargetLength).Where(l => l != TokenBatch.IgnoreIndex).ToArray(),
                    b.DecoderInputIds.Skip(r * b.TargetLength).Take(b.TargetLength).ToArray());
        Assert.Equal([10L, 11, 12], byFirst[10].Src);
        Assert.Equal([20L, 21, 1], byFirst[10].Lab);
        Assert.Equal([0L, 20, 21], byFirst[10].Dec.Take(3));
        Assert.Equal([40L, 1], byFirst[30].Lab);
        Assert.Equal([50L], byFirst[50].Src);        // an example's first token is never a target
        Assert.Equal([51L], byFirst[50].Lab);
    }
}
