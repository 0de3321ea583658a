using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>
/// Key/value cache preallocated to its full capacity, so decoding writes into place instead of
/// concatenating (no per-token reallocation). Layout per layer: [B, H_kv, capacity, hd].
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] keys, values;

    /// <summary>Allocates an empty cache.</summary>
    public KvCache(int layers, long batch, int kvHeads, long capacity, int headDim, ScalarType dtype, Device device)
    {
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            keys[i] = zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device).DetachFromDisposeScope();
            values[i] = zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device).DetachFromDisposeScope();
        }
        Capacity = capacity;
    }

    /// <summary>Positions filled so far (virtual/prefix tokens included).</summary>
    public long Length { get; private set; }

    /// <summary>Maximum number of positions.</summary>
    public long Capacity { get; }

    /// <summary>Number of leading prefix-tuning positions written by <see cref="CausalLM"/>.</summary>
    public long PrefixLength { get; internal set; }

    /// <summary>Writes k, v [B, H_kv, T, hd] at the current end and returns views of everything so far.</summary>
    public (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        long t = key.shape[2];
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KV cache capacity {Capacity} exceeded (have {Length}, adding {t})");
        keys[layer].narrow(2, Length, t).copy_(key);
        values[layer].narrow(2, Length, t).copy_(value);
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Layer <paramref name="layer"/>'s whole key and value storage, [B, H_kv, capacity, hd], for code that writes in place.</summary>
    internal (Tensor Key, Tensor Value) Storage(int layer) => (keys[layer], values[layer]);

    /// <summary>Commits <paramref name="t"/> appended positions (called once per forward, after all layers).</summary>
    public void Advance(long t) => Length += t;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
