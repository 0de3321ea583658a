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

    /// <summary>Commits <paramref name="t"/> appended positions (called once per forward, after all layers).</summary>
    public void Advance(long t) => Length += t;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}

/// <summary>
/// Input-side PEFT methods (prompt tuning, prefix tuning) plug in here rather than being special cases
/// of the model: the model asks for virtual embeddings to prepend, and per-layer key/value prefixes.
/// </summary>
public interface IInputAdapter
{
    /// <summary>Virtual tokens this adapter adds in front of the real ones.</summary>
    int NumVirtualTokens { get; }

    /// <summary>Prompt tuning: embeddings [B, n, d] to prepend to the token embeddings, or null.</summary>
    Tensor? VirtualEmbeddings(long batch, ScalarType dtype);

    /// <summary>Prefix tuning: key and value prefixes [B, H_kv, n, hd] for a layer, or null.</summary>
    (Tensor Key, Tensor Value)? LayerPrefix(int layer, long batch, ScalarType dtype);

    /// <summary>
    /// Encoder-decoder models: how many virtual positions this adapter adds on one stack (prompt tokens in front of its
    /// input, or prefix positions in its self-attention); 0 when it leaves that stack alone.
    /// </summary>
    int VirtualTokens(ModelStack stack) => throw NotForEncoderDecoder();

    /// <summary>Encoder-decoder models: embeddings [B, n, d] to prepend to one stack's input, or null.</summary>
    Tensor? VirtualEmbeddings(ModelStack stack, long batch, ScalarType dtype) => throw NotForEncoderDecoder();

    /// <summary>Encoder-decoder models: key and value prefixes [B, H, n, hd] for a self-attention layer of one stack, or null.</summary>
    (Tensor Key, Tensor Value)? LayerPrefix(ModelStack stack, int layer, long batch, ScalarType dtype) => throw NotForEncoderDecoder();

    private NotSupportedException NotForEncoderDecoder() => new($"{GetType().Name} does not support encoder-decoder models");
}
