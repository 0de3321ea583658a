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

    /// <summary>Takes the run folder's lock, or throws <see cref="IOException"/> naming the folder and the holder.</summary>
    public static RunLock Acquire(RunFiles files)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(files.Lock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException e)
        {
            throw new IOException($"{files.Dir} is in use by another training run; wait for it to finish or choose another output folder", e);
        }
        return new RunLock(stream);
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}
