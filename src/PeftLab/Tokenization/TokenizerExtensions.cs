using System.Runtime.CompilerServices;

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

    /// <summary>
    /// A prompt and its continuation as a decoder reads them, the continuation spelled as in running text. Encoded
    /// apart, a byte-level BPE turns "Output: " + "Kate" into [.. ":" "Ġ"] + ["K" "ate"]: a lone space token, then a
    /// word-initial token the model never read after one and that differs from the "ĠK" it reads in the input, so
    /// copying a word from the input means learning its spelling twice (a tuned built-in base answered "Enna" for
    /// "Anna", "Mack" for "Jack"). For such tokenizers (<see cref="MovesPromptSpace"/>) the prompt's trailing
    /// whitespace moves to the continuation and the continuation's ids are those that encoding the whole text gives
    /// after the prompt's (lm-evaluation-harness's context/continuation rule): [.. ":"] + ["ĠK" "ate"]. A tokenizer that
    /// already spells a continuation as in running text (sentencepiece's prepended "▁": "Kate" is "▁Kate" either way),
    /// a prompt without trailing whitespace, or a whole text whose ids do not start with the prompt's (a merge across
    /// the boundary) keeps the two encoded apart. Generation reads <see cref="EncodePrompt"/>, the same prompt ids.
    /// </summary>
    public static (int[] Prompt, int[] Continuation) EncodePair(this ITokenizer tokenizer, string prompt, string continuation)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(continuation);
        var head = tokenizer.EncodePrompt(prompt);
        var moved = prompt[prompt.TrimEnd().Length..];
        if (moved.Length == 0 || !tokenizer.MovesPromptSpace()) return (head, continuation.Length == 0 ? [] : tokenizer.Encode(continuation, addSpecialTokens: false));
        moved += continuation;
        var whole = tokenizer.EncodeWithBos(prompt.TrimEnd() + moved);
        return whole.Length > head.Length && whole.AsSpan(0, head.Length).SequenceEqual(head)
            ? (head, whole[head.Length..])
            : (head, tokenizer.Encode(moved, addSpecialTokens: false));
    }

    /// <summary>
    /// The prompt's ids as <see cref="EncodePair"/> gives them: BOS + the prompt, without its trailing whitespace where
    /// the tokenizer <see cref="MovesPromptSpace"/>.
    /// </summary>
    public static int[] EncodePrompt(this ITokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return tokenizer.EncodeWithBos(tokenizer.MovesPromptSpace() ? prompt.TrimEnd() : prompt);
    }

    /// <summary>
    /// Whether a word encoded on its own is spelled differently from the same word after a space in running text (true
    /// for byte-level BPE, false for sentencepiece-style tokenizers that prepend "▁"); probed once per tokenizer.
    /// </summary>
    public static bool MovesPromptSpace(this ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return SpaceProbe.GetValue(tokenizer, t => new StrongBox<bool>(new[] { "Kate", "42", "the" }.Any(word =>
        {
            var head = t.Encode("Output:", addSpecialTokens: false);
            var whole = t.Encode("Output: " + word, addSpecialTokens: false);
            return !whole.Skip(head.Length).SequenceEqual(t.Encode(word, addSpecialTokens: false));
        }))).Value;
    }

    private static readonly ConditionalWeakTable<ITokenizer, StrongBox<bool>> SpaceProbe = new();
}
