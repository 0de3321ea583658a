namespace PeftLab.Tokenization;

/// <summary>
/// Deterministic byte-level BPE training: starting from the 256 byte symbols of each pre-tokenized word, repeatedly
/// merge the most frequent adjacent pair (counts weighted by word frequency) until enough new tokens exist or no pair is
/// frequent enough. Ties go to the pair with the smaller (left id, right id), ids being byte values for bytes and
/// creation order for merged tokens, so the result depends only on the word counts. Pair counts are kept incrementally
/// with a lazily-invalidated max-heap, so training cost grows with the words a merge touches, not the corpus size.
/// </summary>
internal static class BpeTrainer
{
    /// <summary>One learned merge: the byte-level strings of both parts and of the result.</summary>
    public readonly record struct Merge(string Left, string Right, string Result);

    /// <param name="wordCounts">Pre-tokenized words (trained on as UTF-8 bytes) and how often each occurs.</param>
    /// <param name="maxNewTokens">How many new tokens to create at most.</param>
    /// <param name="minFrequency">Smallest pair count worth a merge.</param>
    public static List<Merge> Train(IReadOnlyDictionary<string, long> wordCounts, int maxNewTokens, int minFrequency)
    {
        var tokens = new List<string>(256 + maxNewTokens);
        var tokenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++)
        {
            tokens.Add(ByteLevelAlphabet.ByteToChar[b].ToString());
            tokenIds[tokens[b]] = b;
        }

        var keys = wordCounts.Keys.Order(StringComparer.Ordinal).ToArray();
        var words = new List<int>[keys.Length];
        var freq = new long[keys.Length];
        var counts = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        var raised = new HashSet<long>();
        for (int w = 0; w < keys.Length; w++)
        {
            words[w] = System.Text.Encoding.UTF8.GetBytes(keys[w]).Select(b => (int)b).ToList();
            freq[w] = wordCounts[keys[w]];
            for (int i = 0; i + 1 < words[w].Count; i++) Add(Key(words[w][i], words[w][i + 1]), freq[w], w);
        }

        var heap = new PriorityQueue<long, (long Count, long Pair)>(Comparer<(long Count, long Pair)>.Create(
            (x, y) => x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Pair.CompareTo(y.Pair)));
        foreach (var (pair, count) in counts) heap.Enqueue(pair, (count, pair));

        var merges = new List<Merge>();
        int created = 0;
        while (created < maxNewTokens && heap.TryDequeue(out long best, out var priority))
        {
            long current = counts.GetValueOrDefault(best);
            if (current != priority.Count)
            {
                if (current > 0) heap.Enqueue(best, (current, best)); // stale entry: requeue with the true count
                continue;
            }
            if (current < minFrequency) break;

            int a = (int)(best >> 32), b = (int)(best & 0xFFFFFFFF);
            string merged = tokens[a] + tokens[b];
            // Two different pairs can spell the same string; like the Hugging Face trainer, reuse that token.
            if (!tokenIds.TryGetValue(merged, out int z))
            {
                z = tokens.Count;
                tokens.Add(merged);
                tokenIds[merged] = z;
                created++;
            }
            merges.Add(new Merge(tokens[a], tokens[b], merged));

            raised.Clear();
            foreach (int w in where[best].Order().ToArray())
                MergeWord(w, a, b, z);
            where.Remove(best);
            counts.Remove(best);
            foreach (long pair in raised)
                if (counts.GetValueOrDefault(pair) is var c and > 0) heap.Enqueue(pair, (c, pair));
        }
        return merges;

        void MergeWord(int w, int a, int b, int z)
        {
            var sym = words[w];
            long f = freq[w];
            for (int i = 0; i + 1 < sym.Count; i++)
            {
                if (sym[i] != a || sym[i + 1] != b) continue;
                if (i > 0) { Add(Key(sym[i - 1], a), -f, w); Add(Key(sym[i - 1], z), f, w); }
                if (i + 2 < sym.Count) { Add(Key(b, sym[i + 2]), -f, w); Add(Key(z, sym[i + 2]), f, w); }
                Add(Key(a, b), -f, w);
                sym[i] = z;
                sym.RemoveAt(i + 1);
            }
        }

        void Add(long pair, long delta, int w)
        {
            counts[pair] = counts.GetValueOrDefault(pair) + delta;
            if (delta <= 0) return;
            raised.Add(pair);
            if (!where.TryGetValue(pair, out var set)) where[pair] = set = [];
            set.Add(w);
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
