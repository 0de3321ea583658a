namespace PeftLab.Tests;

/// <summary>Locates the repository and the read-only ../shared folder (fixtures, SuperNI subset) from a test run.</summary>
public static class TestPaths
{
    /// <summary>Repository root (the folder holding PeftLab.slnx).</summary>
    public static string RepoRoot { get; } = FindRoot();

    /// <summary>The shared folder beside the checkout; $PEFTLAB_SHARED overrides.</summary>
    public static string Shared
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("PEFTLAB_SHARED");
            var path = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            if (!Directory.Exists(path))
                throw new DirectoryNotFoundException($"shared folder not found at {path}; set PEFTLAB_SHARED");
            return path;
        }
    }

    public static string HfFixtures => Path.Combine(Shared, "fixtures", "hf");
    public static string T5Fixtures => Path.Combine(Shared, "fixtures", "t5");
    public static string SuperNi => Path.Combine(Shared, "data", "superni");

    /// <summary>A fresh temporary folder, deleted by the OS temp cleanup (tests may also delete it).</summary>
    public static string NewTempDir(string prefix = "peftlab-test")
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PeftLab.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root (PeftLab.slnx) not found above " + AppContext.BaseDirectory);
    }
}
