using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

/// <summary>A trained built-in tokenizer (512 ids) and an untrained byte-only one, shared by a test class.</summary>
public sealed class BuiltinTokenizerFixture : IDisposable
{
    public HfTokenizer Trained { get; } = HfTokenizer.Load(BuiltinTokenizerTests.Write(new BuiltinTokenizerOptions { VocabSize = 512, Corpus = BuiltinTokenizerTests.Corpus }));
    public HfTokenizer BytesOnly { get; } = HfTokenizer.Load(BuiltinTokenizerTests.Write(new BuiltinTokenizerOptions { VocabSize = 260 }));

    public void Dispose()
    {
        Trained.Dispose();
        BytesOnly.Dispose();
    }
}
