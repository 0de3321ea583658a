using PeftLab.Runtime;
using TorchSharp;

namespace PeftLab.Tests.Runtime;

public sealed class NativeLoaderTests
{
    private static string BridgePath()
    {
        var p = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(p), $"missing {p}");
        return p;
    }

    [Fact]
    public void PatcherMarksOnlyTheNamedVersionWeak()
    {
        var bytes = File.ReadAllBytes(BridgePath());
        var before = ElfVersionPatcher.ReadVersionNeeds(bytes);
        Assert.Contains(before, v => v.Version == "GLIBCXX_3.4.32" && (v.Flags & 2) == 0);

        int changed = ElfVersionPatcher.MarkWeak(bytes, new HashSet<string> { "GLIBCXX_3.4.32" });
        Assert.Equal(1, changed);
        var after = ElfVersionPatcher.ReadVersionNeeds(bytes);
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            bool target = before[i].Version == "GLIBCXX_3.4.32";
            Assert.Equal(target ? before[i].Flags | 2 : before[i].Flags, after[i].Flags);
        }
        Assert.Equal(0, ElfVersionPatcher.MarkWeak(bytes, new HashSet<string> { "GLIBCXX_3.4.32" }));
    }

    [Fact]
    public void PatcherRejectsNonElf()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadVersionNeeds(new byte[100]));
        Assert.Contains("not an ELF file", ex.Message);
    }

    [Fact]
    public void TorchLoadsAndComputes()
    {
        TorchRuntime.EnsureInitialised();
        Assert.Contains("loaded", NativeLoader.Report);
        using var a = torch.ones(3, 3, device: TorchRuntime.Device);
        Assert.Equal(9f, a.sum().item<float>());
    }

    [Fact]
    public void AllocatorTuningIsReportedAndCanBeTurnedOff()
    {
        // a fresh process each: mallopt settings are process-wide
        var tuned = CliRunner.Ok("doctor");
        Assert.Contains("allocator: glibc malloc keeps freed tensor buffers (mmap off, trim threshold 2 GiB)", tuned);
        var plain = CliRunner.RunWith(new Dictionary<string, string> { ["PEFTLAB_MALLOC"] = "default" }, "doctor");
        Assert.Equal(0, plain.ExitCode);
        Assert.Contains("allocator: glibc defaults (PEFTLAB_MALLOC=default)", plain.Stdout);
    }
}
