namespace PeftLab.Runtime;

/// <summary>A command would write its output over its input, or over a folder that holds something else.</summary>
public sealed class OutputFolderException(string message) : IOException(message);

/// <summary>
/// Folders a command writes whole (a merged checkpoint, a new model folder). The output must not be one of the
/// command's inputs, nor contain one or lie inside one (compared as full paths with symbolic links resolved); an
/// existing non-empty folder is replaced only when forced; and the folder is written to a temp sibling and renamed
/// into place (<see cref="AtomicFile.ReplaceDirectory"/>), so a failed write leaves what was there before.
/// </summary>
public static class OutputFolder
{
    /// <summary>Checks <paramref name="dir"/> against <paramref name="inputs"/> and <paramref name="force"/>, then writes it with <paramref name="fill"/>.</summary>
    /// <param name="dir">The output folder.</param>
    /// <param name="force">Replace an existing non-empty folder.</param>
    /// <param name="inputs">The command's inputs (folders or files) with what they are, e.g. ("the model folder", path).</param>
    /// <param name="fill">Writes the output into the (empty) folder it is given.</param>
    /// <exception cref="OutputFolderException">The output is an input, overlaps one, is a file, or is non-empty without <paramref name="force"/>.</exception>
    public static void Write(string dir, bool force, IEnumerable<(string What, string? Path)> inputs, Action<string> fill)
    {
        Check(dir, force, inputs);
        AtomicFile.ReplaceDirectory(dir, fill);
    }

    /// <summary>The checks of <see cref="Write"/> alone.</summary>
    public static void Check(string dir, bool force, IEnumerable<(string What, string? Path)> inputs)
    {
        var output = Canonical(dir);
        foreach (var (what, path) in inputs)
        {
            if (string.IsNullOrEmpty(path)) continue;
            var input = Canonical(path);
            if (input == output)
                throw new OutputFolderException($"output folder {dir} is {what} ({path}{(input != Path.GetFullPath(path) ? $" = {input}" : "")}): writing it would destroy the input; choose another output folder");
            if (IsInside(input, output))
                throw new OutputFolderException($"output folder {dir} contains {what} ({path}): replacing it would destroy the input; choose another output folder");
            if (IsInside(output, input))
                throw new OutputFolderException($"output folder {dir} lies inside {what} ({path}); choose an output folder outside it");
        }
        if (File.Exists(output)) throw new OutputFolderException($"output folder {dir} is a file");
        if (Directory.Exists(output) && !force && Directory.EnumerateFileSystemEntries(output).FirstOrDefault() is { } first)
        {
            int count = Directory.EnumerateFileSystemEntries(output).Count();
            throw new OutputFolderException(
                $"output folder {dir} is not empty ({count} entr{(count == 1 ? "y" : "ies")}, e.g. {Path.GetFileName(first)}); pass --force to replace it");
        }
    }

    private static bool IsInside(string inner, string outer) =>
        inner.StartsWith(outer.EndsWith(Path.DirectorySeparatorChar) ? outer : outer + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The full path with every symbolic link along it resolved (components that do not exist are kept as written).</summary>
    public static string Canonical(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var root = Path.GetPathRoot(full)!;
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                next = Canonical(target.FullName);
            current = next;
        }
        return Path.TrimEndingDirectorySeparator(current);
    }
}
