using System.Text.Json.Nodes;
using PeftLab.Tokenization;

namespace PeftLab.Tests.T5;

/// <summary>
/// T5's tokenizer.json (SentencePiece Unigram, Metaspace, "$A &lt;/s&gt;" post-processor, sentinel tokens) through
/// <see cref="HfTokenizer"/>. The file is hand-written with the layout transformers saves for t5-small, with a tiny
/// vocabulary and without the Precompiled (NFKC) normalizer's binary charsmap.
/// </summary>
public sealed class T5TokenizerTests
{
    private static readonly string[] Pieces = ["▁the", "▁cat", "▁sat", "▁on", "▁mat", "▁", "t", "h", "e", "c", "a", "s", "o", "n", "m", "."];
    private const int Sentinels = 3;
    private static int PieceId(string piece) => 3 + Array.IndexOf(Pieces, piece);
    private static int SentinelId(int k) => 3 + Pieces.Length + Sentinels - 1 - k;   // <extra_id_0> has the highest id, as in T5
    private static int VocabSize => 3 + Pieces.Length + Sentinels;

    private static JsonObject Added(int id, string content) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
    };

    private static JsonObject Piece(string kind, string id) => new() { [kind] = new JsonObject { ["id"] = id, ["type_id"] = 0 } };

    private static JsonObject Metaspace(string type) => new() { ["type"] = type, ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true };

    internal static string Folder()
    {
        var vocab = new JsonArray(new JsonArray("<pad>", 0.0), new JsonArray("</s>", 0.0), new JsonArray("<unk>", 0.0));
        for (int i = 0; i < Pieces.Length; i++) vocab.Add(new JsonArray(Pieces[i], -1.0 - i * 0.5));
        var added = new JsonArray(Added(0, "<pad>"), Added(1, "</s>"), Added(2, "<unk>"));
        for (int k = Sentinels - 1; k >= 0; k--)
        {
            vocab.Add(new JsonArray($"<extra_id_{k}>", 0.0));
            added.Add(Added(SentinelId(k), $"<extra_id_{k}>"));
        }
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = " {2,}" }, ["content"] = " " }),
            },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "WhitespaceSplit" }, Metaspace("Metaspace")) },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Piece("Sequence", "A"), Piece("SpecialToken", "</s>")),
                ["pair"] = new JsonArray(Piece("Sequence", "A"), Piece("SpecialToken", "</s>"), Piece("Sequence", "B"), Piece("SpecialToken", "</s>")),
                ["special_tokens"] = new JsonObject { ["</s>"] = new JsonObject { ["id"] = "</s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("</s>") } },
            },
            ["decoder"] = Metaspace("Metaspace"),
            ["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = 2, ["vocab"] = vocab, ["byte_fallback"] = false },
        };
        var sentinelNames = new JsonArray(Enumerable.Range(0, Sentinels).Select(k => (JsonNode)$"<extra_id_{k}>").ToArray());
        var config = new JsonObject
        {
            ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>", ["extra_ids"] = Sentinels,
            ["additional_special_tokens"] = sentinelNames, ["model_max_length"] = 512, ["tokenizer_class"] = "T5Tokenizer",
        };
        var map = new JsonObject { ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>", ["additional_special_tokens"] = sentinelNames.DeepClone() };
        var dir = TestPaths.NewTempDir("peftlab-t5tok");
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), map.ToJsonString());
        File.Copy(Path.Combine(T5Fixtures.Dir, "config.json"), Path.Combine(dir, "config.json"));
        return dir;
    }

    [Fact]
    public void SpecialTokensResolveAsInT5()
    {
        var dir = Folder();
        try
        {
            using var tok = HfTokenizer.Load(dir);
            Assert.Equal(VocabSize, tok.VocabSize);
            Assert.Null(tok.BosId);
            Assert.Equal(0, tok.PadId);
            Assert.Equal(1, tok.EosIds[0]);
            Assert.Equal(2, tok.UnkId);
            Assert.Empty(tok.SpecialPrefix);
            Assert.Equal([1], tok.SpecialSuffix);
            for (int k = 0; k < Sentinels; k++)
            {
                Assert.Equal(SentinelId(k), tok.TokenToId($"<extra_id_{k}>"));
                Assert.True(tok.IsSpecial(SentinelId(k)));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void EncodesWithUnigramAndAppendsEos()
    {
        var dir = Folder();
        try
        {
            using var tok = HfTokenizer.Load(dir);
            int[] words = [PieceId("▁the"), PieceId("▁cat"), PieceId("▁sat")];
            Assert.Equal(words, tok.Encode("the  cat sat"));
            Assert.Equal([.. words, 1], tok.Encode("the cat sat", addSpecialTokens: true));
            // sentinels are recognised in text; an unknown character becomes <unk>
            Assert.Equal([SentinelId(0), PieceId("▁cat"), SentinelId(1)], tok.Encode("<extra_id_0> cat<extra_id_1>"));
            Assert.Equal([PieceId("▁"), 2], tok.Encode("Z"));
            // "mat." has no piece of its own: the Unigram model segments it
            Assert.Equal([PieceId("▁mat"), PieceId(".")], tok.Encode("mat."));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void DecodesWithMetaspace()
    {
        var dir = Folder();
        try
        {
            using var tok = HfTokenizer.Load(dir);
            int[] ids = [SentinelId(0), PieceId("▁the"), PieceId("▁cat"), PieceId("▁on"), PieceId("▁mat"), PieceId("."), 1, 0];
            Assert.Equal("the cat on mat.", tok.Decode(ids));
            Assert.Equal("<extra_id_0> the cat on mat.</s><pad>", tok.Decode(ids, skipSpecialTokens: false));
        }
        finally { Directory.Delete(dir, true); }
    }
}
