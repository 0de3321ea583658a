namespace PeftLab.Tokenization;

/// <summary>
/// A text tokenizer as PeftLab's models, prompt builders and generation loop see it. Implementations are
/// thread-safe for concurrent <see cref="Encode"/> / <see cref="Decode"/> calls.
/// </summary>
public interface ITokenizer
{
    /// <summary>
    /// Encodes <paramref name="text"/> to token ids. Special tokens written literally in the text (e.g. <c>&lt;/s&gt;</c>)
    /// are recognised as such, as Hugging Face tokenizers do. With <paramref name="addSpecialTokens"/> the tokens the
    /// tokenizer adds around a single sequence (typically BOS) are added; without it only the text's own tokens come back.
    /// </summary>
    int[] Encode(string text, bool addSpecialTokens = false);

    /// <summary>
    /// Decodes token ids to text. With <paramref name="skipSpecialTokens"/> special tokens (see <see cref="IsSpecial"/>)
    /// are dropped. Ids with no token (e.g. padding rows of a model's embedding beyond the tokenizer's vocabulary) are skipped.
    /// </summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true);

    /// <summary>Number of token ids the tokenizer can produce: the highest id plus one (the embedding rows a model needs).</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence token id, or null when the tokenizer has none.</summary>
    int? BosId { get; }

    /// <summary>
    /// End-of-sequence ids, primary first: the tokenizer's own EOS token (appended to training targets), followed by any
    /// further ids that end generation (generation_config.json may list several). Empty when none is known.
    /// </summary>
    IReadOnlyList<int> EosIds { get; }

    /// <summary>Padding token id, or null when the tokenizer has none.</summary>
    int? PadId { get; }

    /// <summary>Unknown-token id, or null when the tokenizer has none.</summary>
    int? UnkId { get; }

    /// <summary>The Jinja chat template shipped with the tokenizer, or null.</summary>
    string? ChatTemplate { get; }

    /// <summary>The id of a vocabulary token given in its stored form (e.g. <c>Ġhello</c> for byte-level BPE); throws <see cref="KeyNotFoundException"/> when absent.</summary>
    int TokenToId(string token);

    /// <summary>The stored form of the token with this id, or null when no token has it.</summary>
    string? IdToToken(int id);

    /// <summary>Whether the id is a special token (control tokens such as BOS/EOS/PAD, dropped by <see cref="Decode"/> when skipping specials).</summary>
    bool IsSpecial(int id);
}
