namespace PeftLab.Tokenization;

/// <summary>Token counting and truncation for prompt building, for any <see cref="ITokenizer"/>.</summary>
public static class TokenizerExtensions
{
    /// <summary>A UTF-8 character spans at most 4 bytes, so a cut inside one leaves at most 3 dangling byte tokens.</summary>
    private const int MaxDanglingByteTokens = 3;

    /// <summary>Number of tokens <paramref name="text"/> encodes to, without the special tokens added around a sequence.</summary>
    public static int CountTokens(this ITokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(text, addSpecialTokens: false).Length;
    }

    /// <summary>
    /// The text of the first <paramref name="maxTokens"/> tokens of <paramref name="text"/> (special tokens written in the
    /// text are kept). Text that already fits is returned unchanged. Two refinements keep the result usable in a prompt:
    /// when the cut falls inside a multi-byte character, the dangling byte tokens (which would decode to U+FFFD) are
    /// dropped; and the result is shortened further if re-encoding it would exceed <paramref name="maxTokens"/> (BPE may
    /// segment a prefix differently), so <c>CountTokens(result) &lt;= maxTokens</c> always holds. For tokenizers that
    /// normalize text (lower-casing, stripping) the result is the decoded, normalized form.
    /// </summary>
    public static string TruncateToTokens(this ITokenizer tokenizer, string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        if (ids.Length <= maxTokens) return text;

        int n = maxTokens;
        string result = Decode(tokenizer, ids, n);
        for (int back = 1; back <= MaxDanglingByteTokens && n - back >= 0 && result.EndsWith('\uFFFD'); back++)
        {
            string shorter = Decode(tokenizer, ids, n - back);
            if (!shorter.EndsWith('\uFFFD'))
            {
                n -= back;
                result = shorter;
                break;
            }
        }
        while (n > 0 && tokenizer.CountTokens(result) > maxTokens) result = Decode(tokenizer, ids, --n);
        return result;
    }

    private static string Decode(ITokenizer tokenizer, int[] ids, int count) =>
        count == 0 ? "" : tokenizer.Decode(new ArraySegment<int>(ids, 0, count), skipSpecialTokens: false);

    /// <summary>Ids of a sequence as the model reads it: BOS (when the tokenizer has one) + the text's tokens, no other specials.</summary>
    public static int[] EncodeWithBos(this ITokenizer tokenizer, string text)
    {
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        return tokenizer.BosId is int b ? [b, .. ids] : ids;
    }
}
