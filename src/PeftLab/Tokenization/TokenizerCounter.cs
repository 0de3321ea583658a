using PeftLab.Data;

namespace PeftLab.Tokenization;

/// <summary>A real tokenizer as the prompt builder's token counter (budgets in model tokens, as Tk-Instruct counts them).</summary>
public sealed class TokenizerCounter(ITokenizer tokenizer) : ITokenCounter
{
    /// <inheritdoc/>
    public int Count(string text) => tokenizer.CountTokens(text);

    /// <inheritdoc/>
    public string TruncateToTokens(string text, int maxTokens) => tokenizer.TruncateToTokens(text, maxTokens);

    private readonly Lazy<int> _maxChars = new(() =>
    {
        int max = 1;
        for (int id = 0; id < tokenizer.VocabSize; id++) max = Math.Max(max, tokenizer.Decode([id], skipSpecialTokens: false).Length);
        return max;
    });

    /// <inheritdoc/>
    /// <remarks>The longest decoded token of the vocabulary (computed once).</remarks>
    public int MaxCharsPerToken => _maxChars.Value;
}
