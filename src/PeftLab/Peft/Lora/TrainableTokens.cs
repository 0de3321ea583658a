using PeftLab.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftLab.Peft.Lora;

/// <summary>
/// PEFT's trainable tokens (<c>trainable_token_indices</c>): the rows of a few token ids of the input embedding train
/// (e.g. new special tokens) while the rest of the table stays frozen. The layer holds the rows themselves, starting as
/// copies of the table's, so the model is unchanged at start; lookups (and a head tied to the table) see them in place.
/// Saved as PEFT does: <c>&lt;embedding&gt;.token_adapter.trainable_tokens_delta</c> [n, d].
/// </summary>
public sealed class TrainableTokensLayer : nn.Module, ITokenRows
{
    private readonly Parameter trainable_tokens_delta;    // [n, d]: the rows (PEFT's name; values, not differences)
    private readonly long[] indices;

    /// <summary>Rows <paramref name="tokenIds"/> of <paramref name="table"/>, trainable.</summary>
    public TrainableTokensLayer(TokenEmbedding table, IReadOnlyList<int> tokenIds) : base(nameof(TrainableTokensLayer))
    {
        indices = tokenIds.Select(i => (long)i).ToArray();
        using (no_grad())
        using (var ids = tensor(indices, device: table.weight.device))
            trainable_tokens_delta = new Parameter(table.weight.index_select(0, ids).clone());
        RegisterComponents();
    }

    /// <inheritdoc/>
    public Tensor Indices => tensor(indices, device: trainable_tokens_delta.device);

    /// <inheritdoc/>
    public Tensor Values => trainable_tokens_delta;

    /// <summary>The saved tensor's name under the embedding module.</summary>
    public const string TensorName = TokenEmbedding.AdapterName + ".trainable_tokens_delta";

    /// <summary>
    /// Attaches trainable rows <paramref name="tokenIds"/> to the model's token embedding (the only
    /// <see cref="TokenEmbedding"/>; PEFT's list form targets the input embedding, its dict form names it as
    /// <paramref name="module"/>). Errors name the ids out of range or repeated, and a module that is not the embedding.
    /// </summary>
    public static void Attach(IPeftHost model, IReadOnlyList<int> tokenIds, string? module)
    {
        if (tokenIds.Count == 0) return;
        var (name, table) = InputEmbedding(model);
        if (module is not null && name != module && !name.EndsWith("." + module, StringComparison.Ordinal))
            throw new PeftConfigException($"trainable_token_indices: '{module}' is not the model's token embedding ({name}); only the input embedding (and a head tied to it) can have trainable tokens");
        long vocab = table.weight.shape[0];
        if (tokenIds.Where(i => i < 0 || i >= vocab).Cast<int?>().FirstOrDefault() is int bad)
            throw new PeftConfigException($"trainable_token_indices: token id {bad} is outside the vocabulary (0 to {vocab - 1})");
        if (tokenIds.GroupBy(i => i).FirstOrDefault(g => g.Count() > 1) is { } dup)
            throw new PeftConfigException($"trainable_token_indices: token id {dup.Key} is listed twice");
        var layer = new TrainableTokensLayer(table, tokenIds);
        table.SetTokenRows(layer);
        foreach (var p in layer.parameters()) p.requires_grad = true;
    }

    /// <summary>The model's token embedding and its module name (e.g. model.embed_tokens, shared).</summary>
    public static (string Name, TokenEmbedding Module) InputEmbedding(IPeftHost model)
    {
        var tables = model.Module.named_modules().Where(m => m.module is TokenEmbedding).ToArray();
        if (tables.Length != 1)
            throw new PeftConfigException($"trainable_token_indices: the model has {tables.Length} token embeddings; exactly one is supported");
        return (tables[0].name, (TokenEmbedding)tables[0].module);
    }

    /// <summary>Writes attached rows into the table and removes the layer.</summary>
    public static void Merge(IPeftHost model)
    {
        foreach (var (_, m) in model.Module.named_modules().ToArray())
            if (m is TokenEmbedding table) table.MergeTokenRows();
    }
}
