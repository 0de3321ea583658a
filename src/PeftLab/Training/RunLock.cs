namespace PeftLab.Training;

/// <summary>
/// An exclusive lock on a run folder for the lifetime of one training run, so a second run into the same folder is
/// refused instead of interleaving its checkpoints and metrics with the first's. The lock is an open file handle, so
/// a killed process releases it.
/// </summary>
public sealed class RunLock : IDisposable
{
    private readonly FileStream _stream;

    private RunLock(FileStream stream) => _stream = stream;

    /// <summary>
    /// Takes the run folder's lock, waiting up to <paramref name="wait"/> (default 10 s: a killed predecessor's open
    /// files are closed in no fixed order, so a study's trial lock can be free a moment before this one), else throws
    /// <see cref="IOException"/> naming the folder.
    /// </summary>
    public static RunLock Acquire(RunFiles files, TimeSpan? wait = null)
    {
        var deadline = DateTime.UtcNow + (wait ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            try
            {
                return new RunLock(new FileStream(files.Lock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose));
            }
            catch (IOException e)
            {
                if (DateTime.UtcNow < deadline) { Thread.Sleep(100); continue; }
                throw new IOException($"{files.Dir} is in use by another training run; wait for it to finish or choose another output folder", e);
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}
