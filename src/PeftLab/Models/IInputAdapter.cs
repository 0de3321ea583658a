using static TorchSharp.torch;

namespace PeftLab.Models;

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

/// <summary>
/// The virtual-token steps both families take, in one place: prompt embeddings in front of the real ones, masks that
/// keep virtual positions visible, and virtual positions dropped from the output.
/// </summary>
public static class VirtualTokens
{
    /// <summary><paramref name="h"/> [B, T, d] with <paramref name="embeddings"/> [B, n, d] in front ([B, n + T, d]), and n (0 without embeddings).</summary>
    public static (Tensor Hidden, long Count) Prepend(Tensor h, Tensor? embeddings) =>
        embeddings is null ? (h, 0) : (cat([embeddings, h], 1), embeddings.shape[1]);

    /// <summary>A mask [B, K] with <paramref name="n"/> always-visible positions in front: [B, n + K].</summary>
    public static Tensor VisibleInFront(Tensor mask, long n) =>
        n > 0 ? cat([ones(mask.shape[0], n, dtype: mask.dtype, device: mask.device), mask], 1) : mask;

    /// <summary><paramref name="h"/> [B, n + T, d] without its first <paramref name="n"/> (virtual) positions: [B, T, d].</summary>
    public static Tensor Drop(Tensor h, long n) => n > 0 ? h.narrow(1, n, h.shape[1] - n) : h;
}
