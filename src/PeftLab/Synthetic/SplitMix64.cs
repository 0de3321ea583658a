namespace PeftLab.Synthetic;

/// <summary>
/// SplitMix64 pseudo-random generator (Steele, Lea and Flood, 2014). Used instead of System.Random so that
/// generated data is identical across .NET versions and platforms for the same seed.
/// </summary>
internal sealed class SplitMix64
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>A generator whose stream is derived from a seed and a path of stream labels.</summary>
    public static SplitMix64 Derive(ulong seed, params ulong[] path) => new(Mix(seed, path));

    public ulong NextUInt64()
    {
        _state += Golden;
        return Finalise(_state);
    }

    /// <summary>Uniform integer in [0, maxExclusive) (multiply-high mapping; bias below 2^-32 for our ranges).</summary>
    public int Next(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        return (int)Math.BigMul(NextUInt64(), (ulong)maxExclusive, out _);
    }

    /// <summary>Uniform integer in [lo, hi] (both inclusive).</summary>
    public int Range(int lo, int hi)
    {
        if (hi < lo) throw new ArgumentOutOfRangeException(nameof(hi), $"empty range [{lo}, {hi}]");
        return lo + Next(hi - lo + 1);
    }

    public bool Chance(double p) => (NextUInt64() >> 11) * (1.0 / (1UL << 53)) < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    /// <summary>Fisher-Yates shuffle of a copy.</summary>
    public List<T> Shuffle<T>(IEnumerable<T> items)
    {
        var list = items.ToList();
        for (var i = list.Count - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }

    /// <summary>Deterministically combines a seed with stream labels into one 64-bit state.</summary>
    public static ulong Mix(ulong seed, params ulong[] path)
    {
        var h = Finalise(seed ^ 0x243F6A8885A308D3UL);
        foreach (var p in path) h = Finalise(h + Golden + Finalise(p + 0x13198A2E03707344UL));
        return h;
    }

    private static ulong Finalise(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
