using System.Security.Cryptography;
using PeftLab.Runtime;

namespace PeftLab.Tests.Cli;

/// <summary>Commands that write a whole folder never write over their input, and replace a non-empty folder only with --force, atomically.</summary>
public sealed class OutputFolderTests
{
    private static string CopyFixture(string name)
    {
        var dir = TestPaths.NewTempDir();
        var src = Fixtures.Dir(name);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private static string Hash(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    private static string Adapter => Path.Combine(Fixtures.Dir("llama-gqa"), "adapters", "lora-qv");

    private static void AssertRefused(CliRunner.Result r, string expected)
    {
        Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        Assert.Single(r.Stderr.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains(expected, r.Stderr);
    }

    [Fact]
    public void MergeRefusesToWriteOverTheModelFolderHoweverItIsSpelled()
    {
        var model = CopyFixture("llama-gqa");
        var before = Hash(Path.Combine(model, "model.safetensors"));
        var link = model + "-link";
        Directory.CreateSymbolicLink(link, model);
        var parentLink = Path.Combine(TestPaths.NewTempDir(), "p");
        Directory.CreateSymbolicLink(parentLink, Path.GetDirectoryName(model)!);
        foreach (var spelling in new[] { model, model + "/", Path.Combine(model, "..", Path.GetFileName(model)), link, Path.Combine(parentLink, Path.GetFileName(model)) })
            AssertRefused(CliRunner.Run("merge", "--model", model, "--adapter", Adapter, "--out", spelling, "--force"),
                $"output folder {spelling} is the model folder");
        Assert.Equal(before, Hash(Path.Combine(model, "model.safetensors")));
    }

    [Fact]
    public void MergeRefusesTheAdapterFolderAndFoldersAroundTheInputs()
    {
        var model = CopyFixture("llama-gqa");
        AssertRefused(CliRunner.Run("merge", "--model", model, "--adapter", Adapter, "--out", Adapter, "--force"), "is the adapter folder");
        AssertRefused(CliRunner.Run("merge", "--model", model, "--adapter", Adapter, "--out", Path.GetDirectoryName(model)!, "--force"),
            "contains the model folder");
        AssertRefused(CliRunner.Run("merge", "--model", model, "--adapter", Adapter, "--out", Path.Combine(model, "merged")),
            "lies inside the model folder");
    }

    [Fact]
    public void MergeIntoANonEmptyFolderNeedsForce()
    {
        var model = Fixtures.Dir("llama-gqa");
        var outDir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "keep me");
        AssertRefused(CliRunner.Run("merge", "--model", model, "--adapter", Adapter, "--out", outDir),
            $"output folder {outDir} is not empty (1 entry, e.g. notes.txt); pass --force to replace it");
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(outDir, "notes.txt")));
        CliRunner.Ok("merge", "--model", model, "--adapter", Adapter, "--out", outDir, "--force");
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(outDir, "notes.txt")));   // replaced as a whole
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(outDir)!, "." + Path.GetFileName(outDir) + "*"));   // no temp folder left
    }

    [Fact]
    public void InitModelIntoANonEmptyFolderNeedsForce()
    {
        var outDir = TestPaths.NewTempDir();
        CliRunner.Ok("init-model", "--preset", "nano", "--out", outDir, "--seed", "1");
        var first = Hash(Path.Combine(outDir, "model.safetensors"));
        AssertRefused(CliRunner.Run("init-model", "--preset", "nano", "--out", outDir, "--seed", "2"), "is not empty");
        Assert.Equal(first, Hash(Path.Combine(outDir, "model.safetensors")));
        CliRunner.Ok("init-model", "--preset", "nano", "--out", outDir, "--seed", "2", "--force");
        Assert.NotEqual(first, Hash(Path.Combine(outDir, "model.safetensors")));
    }

    [Fact]
    public void InitModelRefusesToWriteOverItsConfigFile()
    {
        var dir = TestPaths.NewTempDir();
        var config = Path.Combine(dir, "config.json");
        File.Copy(Path.Combine(Fixtures.Dir("llama-gqa"), "config.json"), config);
        AssertRefused(CliRunner.Run("init-model", "--config", config, "--out", dir, "--force"), "contains the --config file");
        Assert.True(File.Exists(config));
    }

    [Fact]
    public void AFailedWriteLeavesTheOldFolder()
    {
        var dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "a.txt"), "old");
        Assert.Throws<InvalidOperationException>(() => OutputFolder.Write(dir, force: true, [], d =>
        {
            File.WriteAllText(Path.Combine(d, "a.txt"), "half");
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(Path.Combine(dir, "a.txt")));
        Assert.Single(Directory.GetFileSystemEntries(Path.GetDirectoryName(dir)!, Path.GetFileName(dir) + "*"));
    }

    [Fact]
    public void OutputThatIsAFileIsRefused()
    {
        var file = Path.Combine(TestPaths.NewTempDir(), "f");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<OutputFolderException>(() => OutputFolder.Check(file, force: true, []));
        Assert.Equal($"output folder {file} is a file", e.Message);
    }
}
