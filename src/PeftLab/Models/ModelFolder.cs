using PeftLab.Runtime;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Models;

/// <summary>Creates complete Hugging Face-layout model folders (config, weights, tokenizer) from scratch.</summary>
public static class ModelFolder
{
    /// <summary>Files besides config and weights that make a folder usable by other tools.</summary>
    public static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

    /// <summary>
    /// Writes a byte-level BPE tokenizer trained on <paramref name="corpus"/> (vocabulary = the model's), then a
    /// randomly initialised model whose BOS/EOS/PAD ids are the tokenizer's. Returns the config written.
    /// </summary>
    public static DecoderConfig Create(string outDir, DecoderConfig config, long seed, IEnumerable<string> corpus)
    {
        config.Validate("model config");
        Directory.CreateDirectory(outDir);
        BuiltinTokenizer.Write(outDir, new BuiltinTokenizerOptions { VocabSize = config.VocabSize, Corpus = corpus });
        var tokenizer = HfTokenizer.Load(outDir);
        config = config with
        {
            BosTokenId = tokenizer.BosId,
            EosTokenIds = tokenizer.EosIds.ToArray(),
            PadTokenId = tokenizer.PadId,
        };
        TorchRuntime.EnsureInitialised();
        using var scope = NewDisposeScope();
        var model = new CausalLM(config, CPU, ScalarType.Float32);
        Presets.InitializeWeights(model, seed);
        HfModel.Save(model, outDir);
        return config;
    }

    /// <summary>Copies tokenizer and generation files that exist in <paramref name="from"/> to <paramref name="to"/>.</summary>
    public static void CopyTokenizerFiles(string from, string to)
    {
        foreach (var name in TokenizerFiles)
        {
            var src = Path.Combine(from, name);
            if (File.Exists(src)) File.Copy(src, Path.Combine(to, name), overwrite: true);
        }
    }
}
