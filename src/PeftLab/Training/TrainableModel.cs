using PeftLab.Checkpoints;
using PeftLab.Data;
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
    /// <summary>
    /// The family's batches of <paramref name="examples"/> for an epoch, in <paramref name="batcher"/>'s order (packed
    /// rows when <paramref name="pack"/>, which only families with <see cref="SupportsPacking"/> accept).
    /// </summary>
    IReadOnlyList<IModelBatch> Batches(Batcher batcher, IReadOnlyList<MaskedSequence> examples, int epoch, bool pack);
    /// <summary>Sum of cross entropy over the target tokens of one of this family's batches; <paramref name="targets"/> gets their count.</summary>
    Tensor BatchLoss(IModelBatch batch, out long targets);
    /// <summary>Greedy (or sampled) continuations of prompts; generated ids only.</summary>
    IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad);
    /// <summary>
    /// The log-likelihood of each request's continuation given its context, and whether the continuation is what greedy
    /// decoding would produce token by token (lm-evaluation-harness's <c>loglikelihood</c> requests), float32, without
    /// gradients; <paramref name="batchSize"/> requests per forward.
    /// </summary>
    IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<ContinuationRequest> requests, int batchSize);
    /// <summary>The tokens of a (context, continuation) text pair as this family scores it (the harness's <c>_encode_pair</c>).</summary>
    ContinuationRequest Encode(Tokenization.ITokenizer tokenizer, string context, string continuation);
    /// <summary>The tokens of a context alone, as this family reads a prompt to generate from in harness tasks.</summary>
    int[] EncodeContext(Tokenization.ITokenizer tokenizer, string context);
    /// <summary>Writes the whole model as a Hugging Face checkpoint (config + weights).</summary>
    void SaveFull(string dir);
    /// <summary>Loads whole-model weights saved by <see cref="SaveFull"/> (strict).</summary>
    void LoadFull(string dir);
    /// <summary>
    /// Float32 logits of the inputs a safetensors file holds, as <c>peftlab logits</c> reads them: the family decides
    /// which tensors it needs (decoder-only: I64 <c>input_ids</c> [batch, T]; T5 also <c>decoder_input_ids</c>), and a
    /// missing or misshapen one is an error naming <paramref name="path"/> and the tensor.
    /// </summary>
    Tensor Logits(SafeTensorsFile input, string path);
    /// <summary>End-of-sequence ids from config.json (used when the tokenizer names none).</summary>
    IReadOnlyList<int> ConfigEosIds { get; }
    /// <summary>Padding id from config.json (0 when it names none).</summary>
    int ConfigPadId { get; }
    /// <summary>How training trades compute for memory (activation checkpointing, chunked loss); off until set.</summary>
    MemorySettings Memory { get; set; }
}

/// <summary>A continuation to score after a context (token ids; the context non-empty, the continuation non-empty).</summary>
public sealed record ContinuationRequest(int[] Context, int[] Continuation);

/// <summary>The summed log-probability of a continuation's tokens, and whether each was the most likely next token.</summary>
public sealed record ContinuationScore(double LogLikelihood, bool IsGreedy);

/// <summary>Execution settings that trade compute for memory; they change no result.</summary>
/// <param name="CheckpointEvery">Activation checkpointing: 0 = off, k = every k-th block recomputes in backward.</param>
/// <param name="ChunkedLoss">When the LM head and its loss run chunk by chunk (families whose head allows it).</param>
public sealed record MemorySettings(int CheckpointEvery = 0, ChunkedLoss ChunkedLoss = ChunkedLoss.Never)
{
    /// <summary>What a run's <c>train:</c> section asks for.</summary>
    public static MemorySettings From(LoopSection train) => new(train.ActivationCheckpointing.Every, train.ChunkedLoss);
}

/// <summary>Reading the model inputs of <see cref="ITrainableModel.Logits"/> from a safetensors file.</summary>
internal static class ModelInputs
{
    /// <summary>An I64 [batch, length] tensor; null when absent and not <paramref name="required"/>; <paramref name="like"/> fixes its shape.</summary>
    public static Tensor? Read(SafeTensorsFile file, string path, string name, bool required, string need, Tensor? like = null)
    {
        if (!file.Contains(name))
            return required ? throw new ArgumentException($"{path}: no tensor named '{name}' (found: {string.Join(", ", file.Names)}); {need}") : null;
        var info = file.GetInfo(name);
        if (info.DType != SafeDType.I64 || info.Shape.Length != 2)
            throw new ArgumentException($"{path}: {name} must be I64 [batch, length] (got {info.DType} {info.ShapeText})");
        if (like is not null && !info.Shape.SequenceEqual(like.shape))
            throw new ArgumentException($"{path}: {name} has shape {info.ShapeText} but must match [{string.Join(", ", like.shape)}]");
        return TensorConversions.ToTensor(file, name, device: Runtime.TorchRuntime.Device);
    }
}

/// <summary>
/// One architecture family, the single seam through which a family plugs in: which folders and presets are its, how
/// it loads, builds from its config alone (counting, describing), creates a preset, and how many parameters a config
/// holds. Everything else (loss, generation, save) is on the <see cref="ITrainableModel"/> it returns.
/// </summary>
public interface IModelFamily
{
    /// <summary>Name in messages, e.g. "decoder-only", "t5".</summary>
    string Name { get; }
    /// <summary>Whether the folder's config.json is this family's (by <c>model_type</c>).</summary>
    bool Owns(string modelDir);
    /// <summary>The family's preset names.</summary>
    IEnumerable<string> PresetNames { get; }
    /// <summary>Opens the checkpoint in <paramref name="dir"/> (strictly: every key, every shape).</summary>
    ITrainableModel Load(string dir, ScalarType dtype, Device device);
    /// <summary>Builds the model a folder's config.json, or a preset, describes, with fresh weights and without reading any checkpoint.</summary>
    ITrainableModel Build(string? dir, string? preset, ScalarType dtype, Device device);
    /// <summary>Parameters of the model in <paramref name="dir"/>, or of <paramref name="preset"/>, from its config alone (nothing is built).</summary>
    double ParameterCount(string? dir, string? preset);
    /// <summary>Writes a preset with random weights (and a tokenizer trained on <paramref name="corpus"/>) to <paramref name="dir"/>.</summary>
    void CreatePreset(string dir, string preset, long seed, IEnumerable<string> corpus);
}

/// <summary>Decoder-only families (llama, mistral, qwen2): <see cref="CausalLM"/>.</summary>
public sealed class DecoderFamily : IModelFamily
{
    /// <inheritdoc/>
    public string Name => "decoder-only";
    /// <inheritdoc/>
    public bool Owns(string modelDir) => !T5Config.IsT5Folder(modelDir);   // the last resort: its loader names an unsupported model_type
    /// <inheritdoc/>
    public IEnumerable<string> PresetNames => Presets.Decoder.Keys;
    /// <inheritdoc/>
    public ITrainableModel Load(string dir, ScalarType dtype, Device device) => new DecoderOnlyModel(HfModel.Load(dir, dtype, device));
    /// <inheritdoc/>
    public ITrainableModel Build(string? dir, string? preset, ScalarType dtype, Device device) =>
        new DecoderOnlyModel(new CausalLM(dir is not null ? DecoderConfig.Load(dir) : Presets.Get(preset!), device, dtype));
    /// <inheritdoc/>
    public double ParameterCount(string? dir, string? preset) => (dir is not null ? DecoderConfig.Load(dir) : Presets.Get(preset!)).ParameterCount;
    /// <inheritdoc/>
    public void CreatePreset(string dir, string preset, long seed, IEnumerable<string> corpus) => ModelFolder.Create(dir, Presets.Get(preset), seed, corpus);
}

/// <summary>The encoder-decoder T5 family: <see cref="T5ForConditionalGeneration"/>.</summary>
public sealed class T5Family : IModelFamily
{
    /// <inheritdoc/>
    public string Name => "t5";
    /// <inheritdoc/>
    public bool Owns(string modelDir) => T5Config.IsT5Folder(modelDir);
    /// <inheritdoc/>
    public IEnumerable<string> PresetNames => T5Presets.All.Keys;
    /// <inheritdoc/>
    public ITrainableModel Load(string dir, ScalarType dtype, Device device) => new Seq2SeqModel(HfT5.Load(dir, dtype, device));
    /// <inheritdoc/>
    public ITrainableModel Build(string? dir, string? preset, ScalarType dtype, Device device) =>
        new Seq2SeqModel(new T5ForConditionalGeneration(dir is not null ? T5Config.Load(dir) : T5Presets.Get(preset!), device, dtype));
    /// <inheritdoc/>
    public double ParameterCount(string? dir, string? preset) => (dir is not null ? T5Config.Load(dir) : T5Presets.Get(preset!)).ParameterCount;
    /// <inheritdoc/>
    public void CreatePreset(string dir, string preset, long seed, IEnumerable<string> corpus) => T5Init.WriteModelFolder(dir, preset, seed, corpus);
}

/// <summary>The registered model families, and models of any of them by folder or preset.</summary>
public static class TrainableModels
{
    /// <summary>Every family, in the order folders are matched (the decoder-only family last: it takes what no other claims).</summary>
    public static IReadOnlyList<IModelFamily> Families { get; } = [new T5Family(), new DecoderFamily()];

    /// <summary>The family of the model in <paramref name="dir"/>.</summary>
    public static IModelFamily FamilyOf(string dir) => Families.First(f => f.Owns(dir));

    /// <summary>The family of a folder, else of a preset (an unknown preset names the known ones).</summary>
    public static IModelFamily FamilyOf(string? dir, string? preset) =>
        dir is not null ? FamilyOf(dir)
        : Families.FirstOrDefault(f => f.PresetNames.Contains(preset ?? throw new ArgumentException("model: give model.path or model.preset")))
          ?? throw new ArgumentException($"unknown preset '{preset}'; known: {string.Join(", ", PresetNames)}");

    /// <summary>Opens the model in <paramref name="dir"/> (llama / mistral / qwen2 / t5 by config.json's model_type).</summary>
    public static ITrainableModel Load(string dir, ScalarType dtype, Device device) => FamilyOf(dir).Load(dir, dtype, device);

    /// <summary>Creates a preset (decoder-only or T5) with random weights in <paramref name="dir"/>.</summary>
    public static void CreatePreset(string dir, string preset, long seed, IEnumerable<string> corpus) => FamilyOf(null, preset).CreatePreset(dir, preset, seed, corpus);

    /// <summary>Every preset name.</summary>
    public static IEnumerable<string> PresetNames => Families.SelectMany(f => f.PresetNames);

    /// <summary>Parameters of the model in <paramref name="dir"/>, or of <paramref name="preset"/>, from its family's config alone (nothing is built).</summary>
    public static double ParameterCount(string? dir, string? preset) => FamilyOf(dir, preset).ParameterCount(dir, preset);
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
    public IReadOnlyList<IModelBatch> Batches(Batcher batcher, IReadOnlyList<MaskedSequence> examples, int epoch, bool pack) =>
        (pack ? batcher.Pack(examples, epoch) : batcher.Batches(examples, epoch)).Batches;

    /// <inheritdoc/>
    public Tensor BatchLoss(IModelBatch modelBatch, out long targets)
    {
        var batch = modelBatch as TokenBatch ?? throw new ArgumentException($"a decoder-only model takes token rows, not a {modelBatch.GetType().Name}", nameof(modelBatch));
        var device = model.EmbeddingWeight.device;
        var ids = tensor(batch.InputIds, [batch.Batch, batch.Length], device: device);
        var labels = tensor(batch.Labels, [batch.Batch, batch.Length], device: device);
        bool packed = batch.RowExamples.Any(r => r.Length > 1);
        model.CheckpointEvery = Memory.CheckpointEvery;
        // right padding needs no mask: causal attention never lets a real token see the padding after it
        var hidden = packed
            ? model.Hidden(ids, positionIds: tensor(batch.PositionIds, [batch.Batch, batch.Length], device: device),
                segmentIds: tensor(batch.SegmentIds.Select(x => (long)x).ToArray(), [batch.Batch, batch.Length], device: device))
            : model.Hidden(ids);                                                                           // [B, T, d]
        var rows = TargetRows(batch);
        targets = rows?.Length ?? batch.TargetCount;
        if (rows is not null)
        {
            // only the positions that predict a target reach the head                                      // [N] of B·T
            var index = tensor(rows, device: device);
            var selected = hidden.reshape(-1, hidden.shape[^1]).index_select(0, index);                    // [N, d]
            return LossSum(model, selected, labels.reshape(-1).index_select(0, index + 1), Memory.ChunkedLoss);
        }
        var target = labels.narrow(1, 1, batch.Length - 1).reshape(-1);                                    // [B·(T-1)]
        var h = hidden.narrow(1, 0, batch.Length - 1);                                                     // [B, T-1, d]
        return LossSum(model, h.reshape(-1, h.shape[^1]), target, Memory.ChunkedLoss);
    }

    /// <summary>
    /// The flat positions b·T + t (t &lt; T − 1) whose next token is a target, when they are under half of all
    /// B·(T − 1) positions; else null (every position goes through the head). In instruction data the prompt is most of
    /// a row (a quickstart row holds about 65 tokens, its answer 2-10), and the head's [positions, vocab] matmul, the
    /// float32 log-softmax and their backward over prompt positions add nothing to the loss: skipping them raised a
    /// quickstart full-finetuning trial from 1934 to 2076 training tokens/s (+7 %, paired, 2 threads). Mostly-target
    /// rows (packed pretraining text) keep the whole-tensor path, which a copy would only slow, and which the shipped
    /// bases were pretrained with bit for bit.
    /// </summary>
    public static long[]? TargetRows(TokenBatch batch)
    {
        int t = batch.Length;
        var rows = new List<long>();
        for (int b = 0; b < batch.Batch; b++)
            for (int i = 0; i < t - 1; i++)
                if (batch.Labels[batch.At(b, i + 1)] != TokenBatch.IgnoreIndex) rows.Add(batch.At(b, i));
        return 2L * rows.Count < (long)batch.Batch * (t - 1) ? [.. rows] : null;
    }

    /// <summary>
    /// Sum of next-token cross entropy of final hidden states <paramref name="hidden"/> [N, d] against
    /// <paramref name="targets"/> [N] (<see cref="TokenBatch.IgnoreIndex"/> adds nothing), float32: through the
    /// chunked head when <see cref="Chunks"/> says so, else whole logits.
    /// </summary>
    public static Tensor LossSum(CausalLM model, Tensor hidden, Tensor targets, ChunkedLoss mode)
    {
        long vocab = model.Config.VocabSize;
        if (Chunks(model, mode, targets.shape[0]))
            return ChunkedCrossEntropy.Sum(hidden, model.PlainHeadWeight!, targets, ChunkedCrossEntropy.ChunkTokens(vocab));
        var pred = model.Head(hidden).reshape(-1, vocab).to_type(ScalarType.Float32);                      // [N, V]
        return nn.functional.cross_entropy(pred, targets, ignore_index: TokenBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
    }

    /// <summary>Whether <see cref="LossSum"/> of <paramref name="tokens"/> positions runs chunk by chunk (needs a plain head).</summary>
    public static bool Chunks(CausalLM model, ChunkedLoss mode, long tokens) =>
        model.PlainHeadWeight is not null && UseChunks(mode, tokens, model.Config.VocabSize);

    /// <summary>Whether <paramref name="tokens"/> positions' loss runs chunk by chunk under <paramref name="mode"/>.</summary>
    public static bool UseChunks(ChunkedLoss mode, long tokens, long vocab) => mode switch
    {
        ChunkedLoss.Always => true,
        ChunkedLoss.Never => false,
        _ => tokens > ChunkedCrossEntropy.ChunkTokens(vocab),
    };

    /// <inheritdoc/>
    public MemorySettings Memory { get; set; } = new();


    /// <inheritdoc/>
    public IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad) =>
        TextGenerator.Generate(model, prompts, cfg, eos, pad);

    /// <inheritdoc/>
    /// <remarks>
    /// As the harness encodes for causal models: trailing spaces of the context move to the continuation, the pair is
    /// encoded whole without special tokens, and the continuation is what follows the context's own tokens; an empty
    /// context becomes the start token (BOS, else EOS).
    /// </remarks>
    public ContinuationRequest Encode(Tokenization.ITokenizer tokenizer, string context, string continuation)
    {
        if (context.Length == 0) return new ContinuationRequest(EncodeContext(tokenizer, context), tokenizer.Encode(continuation));
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0) (context, continuation) = (context[..^spaces], context[^spaces..] + continuation);
        var whole = tokenizer.Encode(context + continuation);
        var ctx = tokenizer.Encode(context);
        return new ContinuationRequest(ctx, whole[Math.Min(ctx.Length, whole.Length)..]);
    }

    /// <inheritdoc/>
    /// <remarks>Without special tokens, as the harness's causal models; an empty context is the start token (BOS, else EOS).</remarks>
    public int[] EncodeContext(Tokenization.ITokenizer tokenizer, string context) =>
        context.Length > 0 ? tokenizer.Encode(context)
        : [tokenizer.BosId ?? (tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0] : throw new ArgumentException("an empty context needs a BOS or EOS token, and the tokenizer has neither"))];

    /// <inheritdoc/>
    /// <remarks>
    /// Each row is context + continuation without its last token, truncated from the left to the model's positions,
    /// right-padded (causal attention never lets a real token see the padding after it); only the continuation's
    /// positions go through the head.
    /// </remarks>
    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<ContinuationRequest> requests, int batchSize)
    {
        int maxInput = model.Config.MaxPositionEmbeddings;
        var rows = requests.Select((r, i) =>
        {
            ContinuationChecks.Check(r, i, maxInput + 1);
            int[] all = [.. r.Context, .. r.Continuation];
            var input = all[..^1];
            return input.Length > maxInput ? input[^maxInput..] : input;                                   // the context loses its start
        }).ToArray();
        return ContinuationChecks.Batched(requests, batchSize, (start, count) =>
        {
            var device = model.EmbeddingWeight.device;
            // Requests whose input rows are equal share one row: the choices of a multiple-choice question that are one
            // token each (MMLU's " A" … " D") all read the logits after the same context, so a question costs one forward row.
            var unique = new Dictionary<int[], int>(ContinuationChecks.SameTokens);
            var rowOf = new int[count];
            for (int b = 0; b < count; b++)
                rowOf[b] = unique.TryGetValue(rows[start + b], out int u) ? u : unique[rows[start + b]] = unique.Count;
            var distinct = unique.OrderBy(kv => kv.Value).Select(kv => kv.Key).ToArray();
            int B = distinct.Length, T = distinct.Max(r => r.Length);
            var ids = new long[B * T];
            for (int r = 0; r < B; r++)
                for (int t = 0; t < distinct[r].Length; t++) ids[r * T + t] = distinct[r][t];
            var positions = new List<long>();                                                               // flat (row, t) of each continuation token
            var targets = new List<long>();
            for (int b = 0; b < count; b++)
            {
                int row = rowOf[b], length = distinct[row].Length;
                var cont = requests[start + b].Continuation;
                for (int j = 0; j < cont.Length; j++) { positions.Add(row * T + length - cont.Length + j); targets.Add(cont[j]); }
            }
            var hidden = model.Hidden(tensor(ids, [B, T], device: device));                              // [B, T, d]
            var h = hidden.reshape(-1, hidden.shape[^1]).index_select(0, tensor(positions.ToArray(), device: device));   // [N, d]
            return (model.Head(h).to_type(ScalarType.Float32), tensor(targets.ToArray(), device: device));                // [N, V], [N]
        });
    }

    /// <inheritdoc/>
    public void SaveFull(string dir) => HfModel.Save(model, dir);

    /// <inheritdoc/>
    public Tensor Logits(SafeTensorsFile input, string path)
    {
        var ids = ModelInputs.Read(input, path, "input_ids", required: true, "a decoder-only model needs input_ids [batch, T]")!;
        using (no_grad()) return model.Forward(ids).to_type(ScalarType.Float32);                           // [B, T, V]
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> ConfigEosIds => model.Config.EosTokenIds;
    /// <inheritdoc/>
    public int ConfigPadId => model.Config.PadTokenId ?? 0;

    /// <inheritdoc/>
    public void LoadFull(string dir)
    {
        using var source = CheckpointSource.OpenModel(dir);
        StrictLoader.Load(model, source);
    }
}

/// <summary>
/// Encoder-decoder (T5): batches come from the data as <see cref="Seq2SeqBatch"/>es — an example's prompt is the
/// encoder input, its target tokens (EOS included) the decoder labels; the decoder reads <c>decoder_start_token_id</c>
/// + labels shifted right.
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
    public IReadOnlyList<IModelBatch> Batches(Batcher batcher, IReadOnlyList<MaskedSequence> examples, int epoch, bool pack) =>
        pack ? throw new ArgumentException("data.packing: not supported for encoder-decoder models")
        : batcher.Seq2SeqBatches(examples, new Seq2SeqLayout(model.Config.DecoderStartTokenId, model.Config.PadTokenId, model.Config.EosTokenIds[0]), epoch);

    /// <inheritdoc/>
    public Tensor BatchLoss(IModelBatch modelBatch, out long targets)
    {
        var b = modelBatch as Seq2SeqBatch ?? throw new ArgumentException($"a T5 model takes encoder-decoder batches (its Batches), not a {modelBatch.GetType().Name}", nameof(modelBatch));
        targets = b.TargetCount;
        var device = model.EmbeddingWeight.device;
        model.CheckpointEvery = Memory.CheckpointEvery;
        var logits = model.Forward(tensor(b.InputIds, [b.Batch, b.SourceLength], device: device), tensor(b.DecoderInputIds, [b.Batch, b.TargetLength], device: device),
            tensor(b.AttentionMask, [b.Batch, b.SourceLength], device: device));                           // [B, T, V]
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]).to_type(ScalarType.Float32),
            tensor(b.Labels, device: device), ignore_index: TokenBatch.IgnoreIndex, reduction: nn.Reduction.Sum);
    }

    /// <inheritdoc/>
    /// <remarks>The chunked loss is decoder-only: T5's vocabulary (32k) keeps its logits small, and its tied head rescales.</remarks>
    public MemorySettings Memory { get; set; } = new();

    /// <inheritdoc/>
    public IReadOnlyList<int[]> Generate(IReadOnlyList<int[]> prompts, SamplingConfig cfg, IReadOnlyCollection<int> eos, int pad) =>
        Seq2SeqGenerator.Generate(model, prompts, cfg, eos, pad);

    /// <inheritdoc/>
    /// <remarks>As the harness encodes for encoder-decoder models: context and continuation each on their own, with the tokenizer's special tokens (EOS).</remarks>
    public ContinuationRequest Encode(Tokenization.ITokenizer tokenizer, string context, string continuation) =>
        new(tokenizer.Encode(context, addSpecialTokens: true), tokenizer.Encode(continuation, addSpecialTokens: true));

    /// <inheritdoc/>
    public int[] EncodeContext(Tokenization.ITokenizer tokenizer, string context) => tokenizer.Encode(context, addSpecialTokens: true);

    /// <inheritdoc/>
    /// <remarks>
    /// The context is the encoder's input, the continuation the decoder's labels after the decoder start token (as the
    /// harness scores encoder-decoder models); contexts longer than the relative-position model was trained on still run.
    /// </remarks>
    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<ContinuationRequest> requests, int batchSize)
    {
        for (int i = 0; i < requests.Count; i++) ContinuationChecks.Check(requests[i], i, int.MaxValue);
        return ContinuationChecks.Batched(requests, batchSize, (start, count) =>
        {
            var device = model.EmbeddingWeight.device;
            var batch = requests.Skip(start).Take(count).ToArray();
            int S = batch.Max(r => r.Context.Length), T = batch.Max(r => r.Continuation.Length);
            long pad = model.Config.PadTokenId;
            var src = new long[count * S];
            var mask = new long[count * S];
            var dec = new long[count * T];
            Array.Fill(src, pad);
            Array.Fill(dec, pad);
            var positions = new List<long>();
            var targets = new List<long>();
            for (int b = 0; b < count; b++)
            {
                var (ctx, cont) = (batch[b].Context, batch[b].Continuation);
                for (int t = 0; t < ctx.Length; t++) { src[b * S + t] = ctx[t]; mask[b * S + t] = 1; }
                dec[b * T] = model.Config.DecoderStartTokenId;
                for (int j = 0; j < cont.Length; j++)
                {
                    if (j + 1 < cont.Length) dec[b * T + j + 1] = cont[j];
                    positions.Add(b * T + j);
                    targets.Add(cont[j]);
                }
            }
            var logits = model.Forward(tensor(src, [count, S], device: device), tensor(dec, [count, T], device: device),
                tensor(mask, [count, S], device: device));                                                  // [B, T, V]
            var picked = logits.reshape(-1, logits.shape[^1]).index_select(0, tensor(positions.ToArray(), device: device));
            return (picked.to_type(ScalarType.Float32), tensor(targets.ToArray(), device: device));
        });
    }

    /// <inheritdoc/>
    public void SaveFull(string dir) => HfT5.Save(model, dir);

    /// <inheritdoc/>
    public Tensor Logits(SafeTensorsFile input, string path)
    {
        const string need = "a T5 model needs input_ids and decoder_input_ids";
        var ids = ModelInputs.Read(input, path, "input_ids", required: true, need)!;                         // [B, S]
        var decoderIds = ModelInputs.Read(input, path, "decoder_input_ids", required: true, need)!;          // [B, T]
        if (ids.shape[0] != decoderIds.shape[0])
            throw new ArgumentException($"{path}: input_ids has batch {ids.shape[0]} but decoder_input_ids has batch {decoderIds.shape[0]}");
        var mask = ModelInputs.Read(input, path, "attention_mask", required: false, need, like: ids);
        var decoderMask = ModelInputs.Read(input, path, "decoder_attention_mask", required: false, need, like: decoderIds);
        using (no_grad()) return model.Forward(ids, decoderIds, mask, decoderMask).to_type(ScalarType.Float32);   // [B, T, V]
    }

    /// <inheritdoc/>
    public IReadOnlyList<int> ConfigEosIds => model.Config.EosTokenIds;
    /// <inheritdoc/>
    public int ConfigPadId => model.Config.PadTokenId;

    /// <inheritdoc/>
    public void LoadFull(string dir)
    {
        using var source = CheckpointSource.OpenModel(dir);
        StrictLoader.Load(model, source, model.TiedKeys);
    }
}

/// <summary>What both families' <see cref="ITrainableModel.ScoreContinuations"/> share: request checks and the batched log-softmax.</summary>
internal static class ContinuationChecks
{
    /// <summary>Token sequences compared by content (one forward row per distinct input).</summary>
    public static readonly IEqualityComparer<int[]> SameTokens = new TokenComparer();

    private sealed class TokenComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? x, int[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);
        public int GetHashCode(int[] obj)
        {
            var h = new HashCode();
            foreach (var t in obj) h.Add(t);
            return h.ToHashCode();
        }
    }

    /// <summary>Throws when a request cannot be scored.</summary>
    public static void Check(ContinuationRequest r, int index, int maxTokens)
    {
        if (r.Context.Length == 0) throw new ArgumentException($"request {index}: the context is empty (give at least a start token)");
        if (r.Continuation.Length == 0) throw new ArgumentException($"request {index}: the continuation is empty");
        if (r.Continuation.Length > maxTokens - 1)
            throw new ArgumentException($"request {index}: the continuation has {r.Continuation.Length} tokens, more than the model's {maxTokens - 1} positions");
    }

    /// <summary>
    /// Runs <paramref name="logitsOf"/> per batch of requests under no_grad and a dispose scope; it returns the logits of
    /// every continuation token, in request order, [N, V] float32, and those tokens [N].
    /// </summary>
    public static IReadOnlyList<ContinuationScore> Batched(IReadOnlyList<ContinuationRequest> requests, int batchSize,
        Func<int, int, (Tensor Logits, Tensor Targets)> logitsOf)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be >= 1");
        var scores = new ContinuationScore[requests.Count];
        using var noGrad = no_grad();
        for (int start = 0; start < requests.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(batchSize, requests.Count - start);
            var (logits, targets) = logitsOf(start, count);
            var logp = logits.log_softmax(-1);                                                              // [N, V]
            var chosen = logp.gather(1, targets.unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray();   // [N]
            var greedy = logp.argmax(-1).eq(targets).cpu().data<bool>().ToArray();
            int k = 0;
            for (int b = 0; b < count; b++)
            {
                int n = requests[start + b].Continuation.Length;
                double sum = 0;
                bool all = true;
                for (int j = 0; j < n; j++, k++) { sum += chosen[k]; all &= greedy[k]; }
                scores[start + b] = new ContinuationScore(sum, all);
            }
        }
        return scores;
    }
}
