namespace PeftLab.Checkpoints;

/// <summary>
/// A checkpoint file (safetensors file or shard index) is malformed or inconsistent. The message
/// always starts with the file path and names the tensor at fault when there is one.
/// </summary>
public sealed class CheckpointFormatException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> is prefixed with the file path.</summary>
    public CheckpointFormatException(string filePath, string message, string? tensorName = null, Exception? inner = null)
        : base($"{filePath}: {message}", inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, when the problem concerns one.</summary>
    public string? TensorName { get; }
}
