namespace PeftLab.Data;

/// <summary>
/// The tokenizer view the text-level data layer needs (prompt token budgets). The model's tokenizer implements it;
/// <see cref="WhitespaceTokenCounter"/> is a simple stand-in for tests.
/// </summary>
public interface ITokenCounter
{
    /// <summary>
    /// Number of tokens <paramref name="text"/> encodes to, counted exactly as the model input will be encoded
    /// (including any special tokens the encoder adds automatically, as Tk-Instruct's <c>len(tokenizer(text)["input_ids"])</c>).
    /// </summary>
    int Count(string text);

    /// <summary>The text of the first <paramref name="maxTokens"/> tokens (encode, keep a prefix, decode without special tokens).</summary>
    string TruncateToTokens(string text, int maxTokens);

    /// <summary>
    /// An upper bound on the characters one token stands for, so a text can be cut to <c>maxTokens × MaxCharsPerToken</c>
    /// characters before it is encoded without changing its first <c>maxTokens</c> tokens; <see cref="int.MaxValue"/>
    /// when there is no bound.
    /// </summary>
    int MaxCharsPerToken => int.MaxValue;
}

/// <summary>Counts maximal runs of non-whitespace characters as tokens. For tests and rough estimates only.</summary>
public sealed class WhitespaceTokenCounter : ITokenCounter
{
    /// <summary>A shared instance (the counter has no state).</summary>
    public static WhitespaceTokenCounter Instance { get; } = new();

    /// <inheritdoc />
    public int Count(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int n = 0;
        bool inToken = false;
        foreach (var c in text)
        {
            bool ws = char.IsWhiteSpace(c);
            if (!ws && !inToken) n++;
            inToken = !ws;
        }
        return n;
    }

    /// <inheritdoc />
    /// <remarks>Keeps the text up to the end of the last kept token (trailing whitespace after it is dropped).</remarks>
    public string TruncateToTokens(string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "must be >= 0");
        int n = 0;
        bool inToken = false;
        for (int i = 0; i < text.Length; i++)
        {
            bool ws = char.IsWhiteSpace(text[i]);
            if (!ws && !inToken)
            {
                if (n == maxTokens) return text[..i].TrimEnd();
                n++;
            }
            inToken = !ws;
        }
        return text;
    }
}
