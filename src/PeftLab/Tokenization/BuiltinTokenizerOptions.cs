namespace PeftLab.Tokenization;

/// <summary>Settings for <see cref="BuiltinTokenizer.Write"/>: the byte-level BPE tokenizer of PeftLab's built-in tiny models.</summary>
public sealed record BuiltinTokenizerOptions
{
    /// <summary>Smallest allowed vocabulary: the 256 byte tokens plus the four special tokens.</summary>
    public const int MinVocabSize = 256 + 4;

    /// <summary>Largest supported vocabulary.</summary>
    public const int MaxVocabSize = 32000;

    /// <summary>
    /// Exact vocabulary size of the written tokenizer (it becomes the model's vocab_size): 4 special tokens, 256 byte
    /// tokens, learned merges, and unused filler tokens when the corpus yields too few merges. Between
    /// <see cref="MinVocabSize"/> and <see cref="MaxVocabSize"/>.
    /// </summary>
    public int VocabSize { get; init; } = 512;

    /// <summary>Padding token, id 0.</summary>
    public string PadToken { get; init; } = "<pad>";

    /// <summary>Beginning-of-sequence token, id 1.</summary>
    public string BosToken { get; init; } = "<s>";

    /// <summary>End-of-sequence token, id 2.</summary>
    public string EosToken { get; init; } = "</s>";

    /// <summary>Unknown token, id 3 (never produced: every byte has a token; kept for tooling that expects one).</summary>
    public string UnkToken { get; init; } = "<unk>";

    /// <summary>Texts to learn merges from; empty gives a pure byte tokenizer. Enumerated once.</summary>
    public IEnumerable<string> Corpus { get; init; } = [];

    /// <summary>A pair must occur at least this often (weighted by word frequency) to be merged.</summary>
    public int MinPairFrequency { get; init; } = 2;

    /// <summary>Whether encoding with special tokens prepends BOS (a TemplateProcessing post-processor), as Llama does.</summary>
    public bool AddBosToken { get; init; } = true;

    /// <summary>Optional Jinja chat template stored in tokenizer_config.json.</summary>
    public string? ChatTemplate { get; init; }
}
