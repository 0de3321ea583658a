using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
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
    /// <c>peftlab init-model</c>: <see cref="Create"/> into <paramref name="outDir"/> through <see cref="OutputFolder"/> (never over
    /// <paramref name="inputs"/>, a non-empty folder only with <paramref name="force"/>, written to a temp folder and renamed).
    /// </summary>
    public static DecoderConfig Init(string outDir, DecoderConfig config, long seed, IEnumerable<string> corpus, bool force,
        IEnumerable<(string What, string? Path)> inputs, string? tokenizerDir = null)
    {
        DecoderConfig written = config;
        OutputFolder.Write(outDir, force, inputs, dir => written = Create(dir, config, seed, corpus, tokenizerDir));
        return written;
    }

    /// <summary>
    /// Writes a byte-level BPE tokenizer trained on <paramref name="corpus"/> (vocabulary = the model's, at most
    /// <see cref="BuiltinTokenizerOptions.MaxVocabSize"/>), then a
    /// randomly initialised model whose BOS/EOS/PAD ids are the tokenizer's. Returns the config written.
    /// </summary>
    /// With <paramref name="tokenizerDir"/> that folder's tokenizer files are used instead (its ids must fit the model's vocabulary).
    public static DecoderConfig Create(string outDir, DecoderConfig config, long seed, IEnumerable<string> corpus, string? tokenizerDir = null)
    {
        config.Validate("model config");
        // the random model is built in float32 and written once more as its checkpoint
        Runtime.MemoryBudget.EnsureFits(config.ParameterCount * 4 * 2, $"a {config.ModelType} model of {config.ParameterCount:N0} parameters");
        Directory.CreateDirectory(outDir);
        // a real-size vocabulary (Qwen2.5: 151,936) is beyond what a BPE trained on a small corpus can fill: the trained
        // tokenizer then uses the first 32,000 ids and the rest of the table stays unused (pass --tokenizer for the real one)
        if (tokenizerDir is null) BuiltinTokenizer.Write(outDir, new BuiltinTokenizerOptions { VocabSize = Math.Min(config.VocabSize, BuiltinTokenizerOptions.MaxVocabSize), Corpus = corpus });
        else
        {
            if (!File.Exists(Path.Combine(tokenizerDir, "tokenizer.json")))
                throw new FileNotFoundException($"--tokenizer {tokenizerDir}: no tokenizer.json there");
            using (var given = HfTokenizer.Load(tokenizerDir))
                if (given.VocabSize > config.VocabSize)
                    throw new ArgumentException($"--tokenizer {tokenizerDir}: its ids reach {given.VocabSize - 1}, but the model's vocab_size is {config.VocabSize}; use a config with vocab_size >= {given.VocabSize}");
            CopyTokenizerFiles(tokenizerDir, outDir);
        }
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

    /// <summary>
    /// Writes config.json and the model's weights (sorted, sharded above <paramref name="maxShardBytes"/>, optionally
    /// converted to <paramref name="saveDtype"/>) for every model family. Refuses a model that still holds PEFT modules.
    /// </summary>
    public static void WriteCheckpoint(TorchSharp.torch.nn.Module model, JsonObject config, string dir, long maxShardBytes, ScalarType? saveDtype)
    {
        var state = model.state_dict();
        var foreign = state.Keys.FirstOrDefault(k => k.Contains(".base_layer.") || k.Contains("lora_") || k.StartsWith("prompt_encoder", StringComparison.Ordinal)
            || k.Contains("ia3_l") || k.Contains(".adapter."));
        if (foreign is not null) throw new InvalidOperationException($"the model still holds PEFT modules ('{foreign}'); merge the adapter before saving a checkpoint");
        Directory.CreateDirectory(dir);
        if (saveDtype == ScalarType.BFloat16) config["torch_dtype"] = "bfloat16";
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        using var scope = NewDisposeScope();
        var entries = state.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => TensorConversions.FromTensor(kv.Key, saveDtype is { } dt ? kv.Value.to_type(dt) : kv.Value))
            .ToList();
        CheckpointDirectory.WriteSharded(dir, entries, maxShardBytes);
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
