using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

/// <summary>The incremental trainer against a plain reference that recounts every pair before each merge.</summary>
public sealed class BpeTrainerTests
{
    private static List<string> ReferenceMerges(IReadOnlyDictionary<string, long> wordCounts, int maxNewTokens, int minFrequency)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ByteToChar[b].ToString()).ToList();
        var words = wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Symbols: System.Text.Encoding.UTF8.GetBytes(kv.Key).Select(b => (int)b).ToList(), Count: kv.Value)).ToList();
        var merges = new List<string>();
        int created = 0;
        while (created < maxNewTokens)
        {
            var counts = new Dictionary<(int, int), long>();
            foreach (var (sym, count) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                    counts[(sym[i], sym[i + 1])] = counts.GetValueOrDefault((sym[i], sym[i + 1])) + count;
            if (counts.Count == 0) break;
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2).First();
            if (best.Value < minFrequency) break;
            var (a, b) = best.Key;
            string merged = tokens[a] + tokens[b];
            int z = tokens.IndexOf(merged);
            if (z < 0) { z = tokens.Count; tokens.Add(merged); created++; }
            merges.Add(tokens[a] + " " + tokens[b]);
            foreach (var (sym, _) in words)
                for (int i = 0; i + 1 < sym.Count; i++)
                    if (sym[i] == a && sym[i + 1] == b) { sym[i] = z; sym.RemoveAt(i + 1); }
        }
        return merges;
    }

    [Theory]
    [InlineData(11, 1)]
    [InlineData(12, 2)]
    [InlineData(13, 3)]
    public void MatchesTheReferenceOnRandomWords(int seed, int minFrequency)
    {
        var rng = new Random(seed);
        const string alphabet = "aab cde  é😀\n";
        var counts = new Dictionary<string, long>();
        for (int i = 0; i < 300; i++)
        {
            string w = string.Concat(Enumerable.Range(0, rng.Next(1, 9)).Select(_ => alphabet[rng.Next(alphabet.Length - 2)].ToString()));
            if (rng.Next(5) == 0) w += "😀";
            counts[w] = counts.GetValueOrDefault(w) + rng.Next(1, 4);
        }
        var expected = ReferenceMerges(counts, 150, minFrequency);
        var actual = BpeTrainer.Train(counts, 150, minFrequency).Select(m => m.Left + " " + m.Right).ToList();
        Assert.True(expected.Count > 20);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void OverlappingRunsOfOneSymbolMergeLeftToRight()
    {
        var merges = BpeTrainer.Train(new Dictionary<string, long> { ["aaaaa"] = 1 }, 10, 1);
        // aaaaa: "a a" (4 overlapping pairs) -> aa aa a; then "aa a" and "aa aa" tie at 1 and ("aa", "a") has the
        // smaller ids -> aa aaa; then "aa aaa".
        Assert.Equal(["a a", "aa a", "aa aaa"], merges.Select(m => m.Left + " " + m.Right));
    }
}
