using PeftLab.Configuration;
using System.Text.Json.Nodes;
using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.PromptTuning;

/// <summary>How the soft prompt starts.</summary>
public enum PromptInit
{
    /// <summary>N(0, 1) like a fresh nn.Embedding (PEFT's RANDOM).</summary>
    Random,
    /// <summary>The embeddings of a given text's tokens, repeated to length (PEFT's TEXT).</summary>
    Text,
}

/// <summary>
/// Prompt tuning: n learned embeddings P are prepended to the token embeddings, h = [P; E(x)]. On encoder-decoder
/// models the prompt goes in front of the encoder input, and with two transformer submodules a second one in front
/// of the decoder input.
/// </summary>
public sealed record PromptTuningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.PromptTuning;
    /// <summary>Number of virtual tokens n (per prompted stack).</summary>
    [ConfigRange(1, int.MaxValue)]
    public int NumVirtualTokens { get; init; } = 20;
    /// <summary>
    /// PEFT's <c>num_transformer_submodules</c>: 1 = prompt the (encoder) input only (Lester et al.; the only choice
    /// for decoder-only models); 2 = encoder-decoder models also get n decoder-side virtual tokens, rows n..2n-1 of the
    /// table. Unlike the Python PEFT library, whose generate() drops the decoder-side prompt, PeftLab uses it in
    /// generation too, so training and generation agree. PEFT picks 2 for SEQ_2_SEQ_LM when unset; PeftLab's default is 1.
    /// </summary>
    [ConfigRange(1, 2)]
    public int NumTransformerSubmodules { get; init; } = 1;
    /// <summary>Initialisation.</summary>
    public PromptInit Init { get; init; } = PromptInit.Random;
    /// <summary>Text whose token embeddings initialise the prompt when <see cref="Init"/> is Text.</summary>
    public string? InitText { get; init; }
}

/// <summary>The soft prompt: an embedding table of n rows per prompted stack (encoder rows first); also the model's input adapter.</summary>
public sealed class PromptEncoder : nn.Module, IInputAdapter
{
    private readonly Embedding embedding; // [submodules · n, d]
    private readonly int n, submodules;

    /// <summary>Creates <paramref name="submodules"/> · n × d virtual token embeddings.</summary>
    public PromptEncoder(int n, long dim, Device device, ScalarType dtype, int submodules = 1) : base(nameof(PromptEncoder))
    {
        this.n = n;
        this.submodules = submodules;
        embedding = nn.Embedding((long)n * submodules, dim, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The [submodules · n, d] table.</summary>
    public Parameter Weight => embedding.weight!;

    /// <inheritdoc/>
    public int NumVirtualTokens => n;

    /// <inheritdoc/>
    public Tensor? VirtualEmbeddings(long batch, ScalarType dtype) =>
        embedding.weight!.to_type(dtype).unsqueeze(0).expand(batch, -1, -1);             // [B, n, d]

    /// <inheritdoc/>
    public (Tensor Key, Tensor Value)? LayerPrefix(int layer, long batch, ScalarType dtype) => null;

    /// <inheritdoc/>
    public int VirtualTokens(ModelStack stack) => stack == ModelStack.Encoder || submodules == 2 ? n : 0;

    /// <inheritdoc/>
    public Tensor? VirtualEmbeddings(ModelStack stack, long batch, ScalarType dtype)
    {
        if (VirtualTokens(stack) == 0) return null;
        var rows = embedding.weight!.narrow(0, stack == ModelStack.Encoder ? 0 : n, n);  // PEFT: prompts[:, :n] encoder, [:, n:] decoder
        return rows.to_type(dtype).unsqueeze(0).expand(batch, -1, -1);                  // [B, n, d]
    }

    /// <inheritdoc/>
    public (Tensor Key, Tensor Value)? LayerPrefix(ModelStack stack, int layer, long batch, ScalarType dtype) => null;
}

/// <summary>Prompt tuning in the Python PEFT library's PROMPT_TUNING format (<c>prompt_embeddings</c> [submodules · n, d]).</summary>
public sealed class PromptTuningMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.PromptTuning;
    /// <inheritdoc/>
    public string Name => "prompt_tuning";
    /// <inheritdoc/>
    public IReadOnlyList<string> Aliases => ["prompt"];
    /// <inheritdoc/>
    public string? PeftType => "PROMPT_TUNING";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new PromptTuningConfig();
    /// <inheritdoc/>
    public CapacityKnob? Capacity { get; } = new("prompt_tokens", "num_virtual_tokens", "virtual tokens");
    /// <inheritdoc/>
    public bool IsInputSide => true;

    /// <inheritdoc/>
    public bool InReferenceStudy => true;
    /// <inheritdoc/>
    public IReadOnlyList<(string Knobs, PeftConfig Config)> ReferenceSweep { get; } =
        new[] { 10, 20, 50, 100 }.Select(n => ($"num_virtual_tokens={n}", (PeftConfig)new PromptTuningConfig { NumVirtualTokens = n })).ToArray();
    /// <inheritdoc/>
    public bool CanMerge => false;

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        int submodules = j.Int("num_transformer_submodules", 1);
        if (submodules is not (1 or 2))
            throw new PeftConfigException($"{j.Source}: num_transformer_submodules={submodules} is not valid (1, or 2 for encoder-decoder models)");
        j.Known("num_attention_heads", "num_layers", "token_dim", "tokenizer_name_or_path", "tokenizer_kwargs", "modules_to_save");
        var init = j.String("prompt_tuning_init", "RANDOM") switch
        {
            "RANDOM" => PromptInit.Random,
            "TEXT" => PromptInit.Text,
            var s => throw new PeftConfigException($"{j.Source}: prompt_tuning_init '{s}' is not supported; supported: RANDOM, TEXT"),
        };
        return new PromptTuningConfig
        {
            NumVirtualTokens = j.Int("num_virtual_tokens", 20),
            Init = init,
            InitText = j.String("prompt_tuning_init_text"),
            NumTransformerSubmodules = submodules,
        };
    }

    /// <inheritdoc/>
    public JsonObject WriteAdapterConfig(PeftConfig config, IPeftHost model)
    {
        var c = (PromptTuningConfig)config;
        return new JsonObject
        {
            ["num_attention_heads"] = model.NumHeads,
            ["num_layers"] = model.NumLayers,
            ["num_transformer_submodules"] = c.NumTransformerSubmodules,
            ["num_virtual_tokens"] = c.NumVirtualTokens,
            ["prompt_tuning_init"] = c.Init == PromptInit.Text ? "TEXT" : "RANDOM",
            ["prompt_tuning_init_text"] = c.InitText,
            ["token_dim"] = model.HiddenSize,
            ["tokenizer_name_or_path"] = null,
        };
    }

    /// <inheritdoc/>
    public void Attach(IPeftHost model, PeftConfig config, AttachContext context)
    {
        var c = (PromptTuningConfig)config;
        if (c.NumVirtualTokens <= 0) throw new PeftConfigException($"num_virtual_tokens must be > 0 (got {c.NumVirtualTokens})");
        if (c.NumTransformerSubmodules is not (1 or 2))
            throw new PeftConfigException($"num_transformer_submodules must be 1 or 2 (got {c.NumTransformerSubmodules})");
        if (c.NumTransformerSubmodules == 2 && model.NumDecoderLayers is null)
            throw new PeftConfigException("num_transformer_submodules=2 (a decoder-side prompt) needs an encoder-decoder model; decoder-only models use 1");
        var table = model.EmbeddingWeight;
        int total = c.NumVirtualTokens * c.NumTransformerSubmodules;
        var encoder = new PromptEncoder(c.NumVirtualTokens, table.shape[1], table.device, table.dtype, c.NumTransformerSubmodules);
        using (no_grad())
        {
            if (c.Init == PromptInit.Text)
            {
                if (string.IsNullOrEmpty(c.InitText)) throw new PeftConfigException("prompt tuning init TEXT needs init_text");
                var tokenize = context.Tokenize ?? throw new PeftConfigException("prompt tuning init TEXT needs the model's tokenizer");
                var ids = tokenize(c.InitText);
                if (ids.Length == 0) throw new PeftConfigException($"init_text '{c.InitText}' encodes to no tokens");
                // PEFT repeats the text's tokens until the table's length (n per submodule) and cuts there
                var chosen = Enumerable.Range(0, total).Select(i => (long)ids[i % ids.Length]).ToArray();
                using var idx = tensor(chosen, device: table.device);
                encoder.Weight.copy_(table.index_select(0, idx));
            }
            else
                encoder.Weight.copy_(randn(encoder.Weight.shape, generator: context.Generator).to_type(table.dtype));
        }
        model.SetInputAdapter(encoder);
        encoder.Weight.requires_grad = true;
    }

    private static PromptEncoder Encoder(IPeftHost model) =>
        model.InputAdapter as PromptEncoder ?? throw new InvalidOperationException("prompt tuning is not attached to this model");

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, Tensor> AdapterState(IPeftHost model, PeftConfig config) =>
        new Dictionary<string, Tensor> { ["prompt_embeddings"] = Encoder(model).Weight };

    /// <inheritdoc/>
    public void LoadAdapterState(IPeftHost model, PeftConfig config, ITensorSource source) =>
        PeftState.LoadStrict(AdapterState(model, config), source);

    /// <inheritdoc/>
    public void Merge(IPeftHost model, PeftConfig config) =>
        throw new NotSupportedException("prompt tuning cannot be merged into the base weights (it adds input tokens)");
}
