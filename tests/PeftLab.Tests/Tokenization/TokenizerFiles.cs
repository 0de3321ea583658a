using System.Text.Json.Nodes;
using PeftLab.Tokenization;

namespace PeftLab.Tests.Tokenization;

/// <summary>Hand-written Hugging Face tokenizer folders for tests.</summary>
internal static class TokenizerFiles
{
    /// <summary>Specials at ids 0-3, then the 256 byte tokens (ids 4-259), then "ab" (260, merge "a b") and "&lt;extra&gt;" (261, a non-special added token).</summary>
    public static readonly string[] Specials = ["<pad>", "<s>", "</s>", "<unk>"];

    public static int ByteId(char c) => 4 + c;

    /// <summary>A byte-level BPE tokenizer.json with the given post_processor and decoder (null: JSON null).</summary>
    public static JsonObject ByteLevelJson(JsonNode? postProcessor, JsonNode? decoder = null)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < Specials.Length; i++) vocab[Specials[i]] = i;
        for (int b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ByteToChar[b].ToString()] = 4 + b;
        vocab["ab"] = 260;
        var added = new JsonArray();
        for (int i = 0; i < Specials.Length; i++) added.Add(AddedToken(i, Specials[i], special: true));
        added.Add(AddedToken(261, "<extra>", special: false));
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(),
            ["post_processor"] = postProcessor,
            ["decoder"] = decoder ?? ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray("a b"),
            },
        };
    }

    public static JsonObject AddedToken(int id, string content, bool special) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
        ["rstrip"] = false, ["normalized"] = !special, ["special"] = special,
    };

    public static JsonObject ByteLevel() => new()
    {
        ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true,
    };

    /// <summary>A TemplateProcessing whose single template is the given pieces, "$A" standing for the sequence.</summary>
    public static JsonObject Template(params string[] single)
    {
        var pieces = new JsonArray();
        var specials = new JsonObject();
        foreach (string p in single)
        {
            if (p == "$A")
            {
                pieces.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } });
                continue;
            }
            pieces.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = p, ["type_id"] = 0 } });
            specials[p] = new JsonObject
            {
                ["id"] = p, ["ids"] = new JsonArray(Array.IndexOf(Specials, p)), ["tokens"] = new JsonArray(p),
            };
        }
        return new JsonObject
        {
            ["type"] = "TemplateProcessing", ["single"] = pieces,
            ["pair"] = new JsonArray(
                new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
            ["special_tokens"] = specials,
        };
    }

    /// <summary>Writes the given files (name to JSON or text) into a fresh folder and returns it.</summary>
    public static string Folder(params (string Name, object Content)[] files)
    {
        string dir = TestPaths.NewTempDir("peftlab-tok");
        foreach (var (name, content) in files)
            File.WriteAllText(Path.Combine(dir, name), content is JsonNode n ? n.ToJsonString() : (string)content);
        return dir;
    }

    /// <summary>Ids of plain ASCII text in <see cref="ByteLevelJson"/> tokenizers (no merges apart from "ab").</summary>
    public static int[] Bytes(string ascii) => ascii.Select(ByteId).ToArray();
}
