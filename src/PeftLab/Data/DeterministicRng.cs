using System.Text;

namespace PeftLab.Data;

/// <summary>
/// SplitMix64 pseudo-random generator. Used for every seeded data decision (splits, shuffles, target choice)
/// because its output is fixed by this code, unlike <see cref="System.Random"/> whose algorithm may change
/// between .NET versions. Not thread-safe; not for cryptography.
/// </summary>
public sealed class DeterministicRng
{
    private ulong _state;

    /// <summary>Starts the generator at <paramref name="seed"/> (SplitMix64 state).</summary>
    public DeterministicRng(ulong seed) => _state = seed;

    /// <summary>
    /// An independent generator for one named purpose (e.g. "task-order", "instances/task001"). Streams for
    /// different names do not depend on each other or on how many numbers another stream drew.
    /// </summary>
    public static DeterministicRng ForStream(long seed, string stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var first = new DeterministicRng(unchecked((ulong)seed)).NextUInt64();
        return new DeterministicRng(first ^ StableHash(stream));
    }

    /// <summary>64-bit FNV-1a over the UTF-8 bytes: a stable string hash (string.GetHashCode is randomised per process).</summary>
    public static ulong StableHash(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            h ^= b;
            h = unchecked(h * 1099511628211UL);
        }
        return h;
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        unchecked
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>), without modulo bias.</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "must be positive");
        ulong bound = (ulong)maxExclusive;
        // Reject the top partial block so every residue is equally likely.
        ulong limit = ulong.MaxValue - (ulong.MaxValue % bound);
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (int)(r % bound);
    }

    /// <summary>In-place Fisher–Yates shuffle.</summary>
    public void Shuffle<T>(IList<T> list)
    {
        ArgumentNullException.ThrowIfNull(list);
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    /// <summary>A shuffled copy of 0..count-1.</summary>
    public int[] Permutation(int count)
    {
        var p = new int[count];
        for (int i = 0; i < count; i++) p[i] = i;
        Shuffle(p);
        return p;
    }
}
