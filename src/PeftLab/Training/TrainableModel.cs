using PeftLab.Checkpoints;
using PeftLab.Data.Batching;
using PeftLab.Models;
using PeftLab.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary>
/// The architecture-specific pieces the one trainer needs: the loss of a batch, generation, and whole-model
/// save/load. Decoder-only and encoder-decoder models differ only here; the trainer and evaluators do not branch.
/// </summary>
public interface ITrainableModel
{
    /// <summary>The model as PEFT methods see it.</summary>
    IPeftHost Host { get; }
    /// <summary>Can several examples share a row (decoder-only: yes, with segment masks).</summary>
    bool SupportsPacking { get; }
    /// <summary>Sum of cross entropy over the batch's target tokens; <paramref name="targets"/> gets their count.</summary>
    Tensor BatchLoss(TokenBatch batch, out long targets);
    /// <summary>Greedy (or sampled) continuations of prompts; generated ids only.</summary>
    IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad);
    /// <summary>Writes the whole model as a Hugging Face checkpoint (config + weights).</summary>
    void SaveFull(string dir);
    /// <summary>Loads whole-model weights saved by <see cref="SaveFull"/> (strict).</summary>
    void LoadFull(string dir);
}

/// <summary>Loading models of any supported family from a folder.</summary>
public static class TrainableModels
{
    /// <summary>Opens the model in <paramref name="dir"/> (llama / mistral / qwen2 / t5 by config.json's model_type).</summary>
    public static ITrainableModel Load(string dir, ScalarType dtype, Device device) =>
        T5Config.IsT5Folder(dir) ? new Seq2SeqModel(HfT5.Load(dir, dtype, device)) : new DecoderOnlyModel(HfModel.Load(dir, dtype, device));

    /// <summary>Creates a preset (decoder-only or T5) with random weights in <paramref name="dir"/>.</summary>
    public static void CreatePreset(string dir, string preset, long seed, IEnumerable<string> corpus)
    {
        if (T5Presets.All.ContainsKey(preset)) T5Init.WriteModelFolder(dir, preset, seed, corpus);
        else ModelFolder.Create(dir, Presets.Get(preset), seed, corpus);
    }

    /// <summary>Every preset name.</summary>
    public static IEnumerable<string> PresetNames => Presets.Decoder.Keys.Concat(T5Presets.All.Keys);

    /// <summary>Parameters of the model in <paramref name="dir"/>, or of <paramref name="preset"/>, from its family's config alone (nothing is built).</summary>
    public static double ParameterCount(string? dir, string? preset) =>
        dir is not null ? (T5Config.IsT5Folder(dir) ? T5Config.Load(dir).ParameterCount : DecoderConfig.Load(dir).ParameterCount)
        : preset is not null && T5Presets.All.TryGetValue(preset, out var t5) ? t5.ParameterCount
        : Presets.Get(preset ?? throw new ArgumentException("model: give model.path or model.preset")).ParameterCount;
}

/// <summary>Decoder-only LM: next-token loss over the target positions of (possibly packed) rows.</summary>
public sealed class DecoderOnlyModel(CausalLM model) : ITrainableModel
{
    /// <summary>The model.</summary>
    public CausalLM Model => model;
    /// <inheritdoc/>
    public IPeftHost Host => model;
    /// <inheritdoc/>
    public bool SupportsPacking => true;

    /// <inheritdoc/>
    public Tensor BatchLoss(TokenBatch batch, out long targets) => Trainer.BatchLoss(model, batch, out targets);

    /// <inheritdoc/>
    public IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad) =>
        TextGenerator.Generate(model, prompts, cfg, eos, pad);

    /// <inheritdoc/>
    public void SaveFull(string dir) => HfModel.Save(model, dir);

    /// <inheritdoc/>
    public void LoadFull(string dir)
    {
        using var source = CheckpointSource.OpenModel(dir);
        StrictLoader.Load(model, source);
    }
}

/// <summary>
/// Encoder-decoder (T5): a row's non-target tokens are the encoder input, its target tokens (EOS included) the
/// decoder labels; the decoder reads <c>decoder_start_token_id</c> + labels shifted right.
/// </summary>
public sealed class Seq2SeqModel(T5ForConditionalGeneration model) : ITrainableModel
{
    /// <summary>The model.</summary>
    public T5ForConditionalGeneration Model => model;
    /// <inheritdoc/>
    public IPeftHost Host => model;
    /// <inheritdoc/>
    public bool SupportsPacking => false;

    /// <inheritdoc/>
    public Tensor BatchLoss(TokenBatch batch, out long targets)
    {
        var c = model.Config;
        var sources = new List<long[]>();
        var labels = new List<long[]>();
        for (int r = 0; r < batch.Batch; r++)
        {
            var src = new List<long>();
            var tgt = new List<long>();
            for (int j = 0; j < batch.Length; j++)
            {
                int k = batch.At(r, j);
                if (!batch.AttentionMask[k]) continue;
                if (batch.Labels[k] == TokenBatch.IgnoreIndex) src.Add(batch.InputIds[k]);
                else tgt.Add(batch.Labels[k]);
            }
            if (src.Count == 0) src.Add(c.EosTokenIds[0]);
            sources.Add([.. src]);
            labels.Add([.. tgt]);
        }
        targets = labels.Sum(l => (long)l.Length);
        int s = sources.Max(x => x.Length), t = Math.Max(1, labels.Max(x => x.Length));
        var ids = new long[batch.Batch * s];
        var mask = new long[batch.Batch * s];
        var dec = new long[batch.Batch * t];
        var lab = new long[batch.Batch * t];
        for (int r = 0; r < batch.Batch; r++)
        {
            for (int j = 0; j < s; j++)
            {
                bool real = j < sources[r].Length;
                ids[r * s + j] = real ? sources[r][j] : c.PadTokenId;
                mask[r * s + j] = real ? 1 : 0;
            }
            for (int j = 0; j < t; j++)
            {
                bool real = j < labels[r].Length;
                lab[r * t + j] = real ? labels[r][j] : TokenBatch.IgnoreIndex;
                dec[r * t + j] = j == 0 ? c.DecoderStartTokenId : (j - 1 < labels[r].Length ? labels[r][j - 1] : c.PadTokenId);
            }
        }
        var device = model.EmbeddingWeight.device;
        var logits = model.Forward(tensor(ids, [batch.Batch, s], device: device), tensor(dec, [batch.Batch, t], device: device),
            tensor(mask, [batch.Batch, s], device: device));                                               // [B, T, V]
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]).to_type(ScalarType.Float32),
            tensor(lab, device: device), ignore_index: TokenBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
    }

    /// <inheritdoc/>
    public IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad) =>
        Seq2SeqGenerator.Generate(model, prompts, cfg, eos, pad);

    /// <inheritdoc/>
    public void SaveFull(string dir) => HfT5.Save(model, dir);

    /// <inheritdoc/>
    public void LoadFull(string dir)
    {
        using var source = CheckpointSource.OpenModel(dir);
        StrictLoader.Load(model, source, model.TiedKeys);
    }
}
