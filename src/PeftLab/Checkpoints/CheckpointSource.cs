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

    /// <summary>
    /// Reads a tensor converted to <paramref name="dtype"/>. Weights are checked on the way in: a floating-point target
    /// must be stored as floating point (an integer tensor would be converted silently) and every value must be finite.
    /// </summary>
    /// <exception cref="CheckpointFormatException">An integer-typed tensor where float weights are expected, or NaN/Inf values; names the tensor.</exception>
    public Tensor Read(string name, ScalarType dtype, Device device)
    {
        var stored = (directory?.Tensors ?? file!.Tensors)[name].DType;
        bool floatTarget = dtype is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
        if (floatTarget && !stored.IsFloatingPoint())
            throw new CheckpointFormatException(Description, $"tensor '{name}' is stored as {stored.HeaderName()}, but the model expects floating-point weights there", name);
        var t = directory is not null ? TensorConversions.ToTensor(directory, name, dtype, device) : TensorConversions.ToTensor(file!, name, dtype, device);
        if (floatTarget)
        {
            using var scope = NewDisposeScope();
            var bad = t.isfinite().logical_not();
            if (bad.any().item<bool>())
            {
                long count = bad.sum().item<long>();
                long first = bad.flatten().nonzero()[0, 0].item<long>();
                double value = t.flatten()[first].to_type(ScalarType.Float64).item<double>();
                throw new CheckpointFormatException(Description,
                    $"tensor '{name}' holds {count} non-finite value{(count == 1 ? "" : "s")} (the first, {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}, at flat index {first}); the weights are corrupt", name);
            }
        }
        return t;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        directory?.Dispose();
        file?.Dispose();
    }
}
