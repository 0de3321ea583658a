using PeftLab.Data;

namespace PeftLab.Tokenization;

/// <summary>A real tokenizer as the prompt builder's token counter (budgets in model tokens, as Tk-Instruct counts them).</summary>
public sealed class TokenizerCounter(ITokenizer tokenizer) : ITokenCounter
{
    /// <inheritdoc/>
    public int Count(string text) => tokenizer.CountTokens(text);

    /// <inheritdoc/>
    public string TruncateToTokens(string text, int maxTokens) => tokenizer.TruncateToTokens(text, maxTokens);
}
