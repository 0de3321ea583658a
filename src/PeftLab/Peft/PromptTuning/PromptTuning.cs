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

/// <summary>Prompt tuning: n learned embeddings P are prepended to the token embeddings, h = [P; E(x)].</summary>
public sealed record PromptTuningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.PromptTuning;
    /// <summary>Number of virtual tokens n.</summary>
    public int NumVirtualTokens { get; init; } = 20;
    /// <summary>Initialisation.</summary>
    public PromptInit Init { get; init; } = PromptInit.Random;
    /// <summary>Text whose token embeddings initialise the prompt when <see cref="Init"/> is Text.</summary>
    public string? InitText { get; init; }
}

/// <summary>The soft prompt: an embedding table of n rows; also the model's input adapter.</summary>
public sealed class PromptEncoder : nn.Module, IInputAdapter
{
    private readonly Embedding embedding; // [n, d]

    /// <summary>Creates n × d virtual token embeddings.</summary>
    public PromptEncoder(int n, long dim, Device device, ScalarType dtype) : base(nameof(PromptEncoder))
    {
        embedding = nn.Embedding(n, dim, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The [n, d] table.</summary>
    public Parameter Weight => embedding.weight!;

    /// <inheritdoc/>
    public int NumVirtualTokens => (int)embedding.weight!.shape[0];

    /// <inheritdoc/>
    public Tensor? VirtualEmbeddings(long batch, ScalarType dtype) =>
        embedding.weight!.to_type(dtype).unsqueeze(0).expand(batch, -1, -1);             // [B, n, d]

    /// <inheritdoc/>
    public (Tensor Key, Tensor Value)? LayerPrefix(int layer, long batch, ScalarType dtype) => null;
}

/// <summary>Prompt tuning in the Python PEFT library's PROMPT_TUNING format (<c>prompt_embeddings</c> [n, d]).</summary>
public sealed class PromptTuningMethod : IPeftMethod
{
    /// <inheritdoc/>
    public PeftMethodKind Kind => PeftMethodKind.PromptTuning;
    /// <inheritdoc/>
    public string? PeftType => "PROMPT_TUNING";
    /// <inheritdoc/>
    public PeftConfig DefaultConfig => new PromptTuningConfig();
    /// <inheritdoc/>
    public bool CanMerge => false;

    /// <inheritdoc/>
    public PeftConfig ReadAdapterConfig(AdapterJson j)
    {
        int submodules = j.Int("num_transformer_submodules", 1);
        if (submodules != 1)
            throw new PeftConfigException($"{j.Source}: num_transformer_submodules={submodules} is not supported for decoder-only models (expected 1)");
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
            ["num_transformer_submodules"] = 1,
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
        var table = model.EmbeddingWeight;
        var encoder = new PromptEncoder(c.NumVirtualTokens, table.shape[1], table.device, table.dtype);
        using (no_grad())
        {
            if (c.Init == PromptInit.Text)
            {
                if (string.IsNullOrEmpty(c.InitText)) throw new PeftConfigException("prompt tuning init TEXT needs init_text");
                var tokenize = context.Tokenize ?? throw new PeftConfigException("prompt tuning init TEXT needs the model's tokenizer");
                var ids = tokenize(c.InitText);
                if (ids.Length == 0) throw new PeftConfigException($"init_text '{c.InitText}' encodes to no tokens");
                // PEFT repeats the text's tokens until n and cuts at n
                var chosen = Enumerable.Range(0, c.NumVirtualTokens).Select(i => (long)ids[i % ids.Length]).ToArray();
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
