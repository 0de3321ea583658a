using System.Globalization;

namespace PeftLab.Runtime;

/// <summary>
/// Refuses to build a model the machine cannot hold, before any allocation: the native allocator would otherwise
/// abort the process (terabytes from a mistyped hidden_size) or leave it to the out-of-memory killer.
/// </summary>
public static class MemoryBudget
{
    /// <summary>Bytes the machine can still give this process: Linux's MemAvailable, else what the GC reports.</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb))
                    return kb * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>Throws <see cref="MemoryBudgetException"/> when <paramref name="bytes"/> exceed what is available.</summary>
    /// <param name="bytes">Estimated bytes (saturating: any value above what is available is refused).</param>
    /// <param name="what">What would be built, for the message ("the model of config.json (…)").</param>
    public static void EnsureFits(double bytes, string what)
    {
        long available = AvailableBytes();
        if (bytes > available)
            throw new MemoryBudgetException(
                $"{what} needs about {Gib(bytes)} for its weights alone; this machine has {Gib(available)} available. Check the config's sizes");
    }

    private static string Gib(double bytes) => bytes >= 1L << 40 ? $"{bytes / (1L << 40):F1} TiB" : $"{bytes / (1L << 30):F2} GiB";
}

/// <summary>What was asked for does not fit in this machine's memory (a user error: the sizes asked for are the cause).</summary>
public sealed class MemoryBudgetException(string message) : Exception(message);
