using PeftLab.Models;
using static TorchSharp.torch;

namespace PeftLab.Checkpoints;

/// <summary>Safetensors files (one file or a possibly sharded model folder) as a named tensor source for loaders.</summary>
public sealed class CheckpointSource : ITensorSource, IDisposable
{
    private readonly CheckpointDirectory? directory;
    private readonly SafeTensorsFile? file;

    private CheckpointSource(CheckpointDirectory? directory, SafeTensorsFile? file, string description)
    {
        this.directory = directory;
        this.file = file;
        Description = description;
    }

    /// <summary>A model folder with model.safetensors or model.safetensors.index.json.</summary>
    public static CheckpointSource OpenModel(string dir) => new(CheckpointDirectory.Open(dir), null, dir);

    /// <summary>A single safetensors file.</summary>
    public static CheckpointSource OpenFile(string path) => new(null, SafeTensorsFile.Open(path), path);

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public IReadOnlyCollection<string> Names => directory?.Names ?? file!.Names;

    /// <inheritdoc/>
    public long[] Shape(string name) => (directory?.Tensors ?? file!.Tensors)[name].Shape.ToArray();

    /// <inheritdoc/>
    public Tensor Read(string name, ScalarType dtype, Device device) => directory is not null
        ? TensorConversions.ToTensor(directory, name, dtype, device)
        : TensorConversions.ToTensor(file!, name, dtype, device);

    /// <inheritdoc/>
    public void Dispose()
    {
        directory?.Dispose();
        file?.Dispose();
    }
}
