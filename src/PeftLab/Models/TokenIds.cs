using System.Globalization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>A token id outside the model's vocabulary; the message names the id, its position and the vocabulary size.</summary>
public sealed class TokenIdOutOfRangeException(string message) : ArgumentException(message);

/// <summary>
/// Token ids entering a model. <see cref="Embed"/> is the one place every model family looks ids up in its embedding
/// (prompts from the command line or a file, tokenizer output, generated tokens): ids outside [0, vocab) are an error
/// here instead of a native abort inside libtorch.
/// </summary>
public static class TokenIds
{
    /// <summary>The rows of <paramref name="table"/> for <paramref name="ids"/> [B, T], after checking every id is in [0, rows).</summary>
    /// <exception cref="TokenIdOutOfRangeException">The first id out of range, with its position and the vocabulary size.</exception>
    public static Tensor Embed(TokenEmbedding table, Tensor ids, string name)
    {
        Check(ids, table.weight.shape[0], name);
        return table.forward(ids);
    }

    /// <summary>Checks that every id of <paramref name="ids"/> ([T] or [B, T], integer) is in [0, <paramref name="vocabSize"/>).</summary>
    /// <exception cref="TokenIdOutOfRangeException">The first id out of range, with its position and the vocabulary size.</exception>
    public static void Check(Tensor ids, long vocabSize, string name)
    {
        if (ids.numel() == 0) return;
        using var scope = NewDisposeScope();
        var bad = ids.lt(0).logical_or(ids.ge(vocabSize));
        if (!bad.any().item<bool>()) return;
        long first = bad.flatten().nonzero()[0, 0].item<long>();              // first offending position, row-major
        long id = ids.flatten()[first].to_type(ScalarType.Int64).item<long>();
        long width = ids.shape[^1];
        string where = ids.dim() == 2 ? $"position {first % width} of row {first / width}" : $"position {first}";
        throw new TokenIdOutOfRangeException(
            $"{name}: token id {id.ToString(CultureInfo.InvariantCulture)} at {where} is outside the vocabulary " +
            $"(vocab_size {vocabSize}: ids must be in [0, {vocabSize}))");
    }

    /// <summary>Space-separated integer ids (as <c>--input-ids</c> takes them); <paramref name="what"/> names the source in errors.</summary>
    /// <exception cref="ArgumentException">A token that is not an integer, or no ids at all.</exception>
    public static int[] Parse(string text, string what)
    {
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException($"{what}: no token ids given");
        return parts.Select(x => int.TryParse(x, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException($"{what}: '{x}' is not an integer token id")).ToArray();
    }
}
