using System.Text.RegularExpressions;
using PeftLab.Data;
using PeftLab.Data.Chat;

namespace PeftLab.Tests.Data;

public sealed partial class LossMaskingTests
{
    private static readonly Dictionary<string, int> Specials = new()
    {
        ["<|begin_of_text|>"] = 1, ["<|start_header_id|>"] = 2, ["<|end_header_id|>"] = 3, ["<|eot_id|>"] = 4,
        ["<|im_start|>"] = 5, ["<|im_end|>"] = 6, ["</s>"] = 7,
    };

    [GeneratedRegex(@"<\|[a-z_]+\|>|</s>|.", RegexOptions.Singleline)]
    private static partial Regex Piece();

    // Fake tokenizer: special tokens get small ids, every other character is its own token (1000 + code).
    private static int[] Encode(string text) =>
        Piece().Matches(text).Select(m => Specials.TryGetValue(m.Value, out var id) ? id : 1000 + m.Value[0]).ToArray();

    [Fact]
    public void SegmentsAreEncodedSeparatelyAndMaskedTokenByToken()
    {
        var conv = new Conversation([new(ChatRole.User, "Hi"), new(ChatRole.Assistant, "Yo")]);
        var m = LossMasking.FromSegments(ChatTemplates.Llama3.Render(conv), Encode);
        // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n | Yo<|eot_id|>
        var expectedIds = new List<int> { 1, 2 };
        expectedIds.AddRange("user".Select(c => 1000 + c));
        expectedIds.AddRange([3, 1000 + '\n', 1000 + '\n', 1000 + 'H', 1000 + 'i', 4, 2]);
        expectedIds.AddRange("assistant".Select(c => 1000 + c));
        expectedIds.AddRange([3, 1000 + '\n', 1000 + '\n']);
        int prompt = expectedIds.Count;
        expectedIds.AddRange([1000 + 'Y', 1000 + 'o', 4]);
        Assert.Equal(expectedIds, m.Ids);
        Assert.Equal(Enumerable.Range(0, expectedIds.Count).Select(i => i >= prompt), m.Trainable);
        Assert.Equal(3, m.TrainableCount);
    }

    [Fact]
    public void ChatMLMasksTheNewlineAfterTheEndMarker()
    {
        var conv = new Conversation([new(ChatRole.User, "a"), new(ChatRole.Assistant, "b"), new(ChatRole.User, "c"), new(ChatRole.Assistant, "d")]);
        var m = LossMasking.FromSegments(ChatTemplates.ChatML.Render(conv), Encode, bosId: 99);
        var text = ChatTemplates.ChatML.RenderText(conv);
        Assert.Equal(99, m.Ids[0]);
        Assert.False(m.Trainable[0]);
        Assert.Equal(Encode(text), m.Ids.Skip(1));
        // Trainable tokens, in order: b <|im_end|> d <|im_end|>
        Assert.Equal([1000 + 'b', 6, 1000 + 'd', 6], m.Ids.Where((_, i) => m.Trainable[i]));
        int firstEnd = Array.IndexOf(m.Ids, 6, Array.IndexOf(m.Ids, 1000 + 'b'));
        Assert.True(m.Trainable[firstEnd]);
        Assert.Equal(1000 + '\n', m.Ids[firstEnd + 1]);
        Assert.False(m.Trainable[firstEnd + 1]);
    }

    [Fact]
    public void SourceTargetEosMasksTargetAndEosOnly()
    {
        var m = LossMasking.FromSourceTarget("Q: ", "ab", Encode, eosId: 7);
        Assert.Equal([1000 + 'Q', 1000 + ':', 1000 + ' ', 1000 + 'a', 1000 + 'b', 7], m.Ids);
        Assert.Equal([false, false, false, true, true, true], m.Trainable);

        var empty = LossMasking.FromSourceTarget([5, 6], [], 2);
        Assert.Equal([5, 6, 2], empty.Ids);
        Assert.Equal([false, false, true], empty.Trainable);

        Assert.Throws<ArgumentException>(() => new MaskedSequence([1, 2], [true]));
    }
}
