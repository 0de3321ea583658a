using PeftLab.Configuration;
namespace PeftLab.Peft.Lora;

/// <summary>How LoRA's A and B start.</summary>
public enum LoraInit
{
    /// <summary>A Kaiming-uniform(a=√5), B zeros (PEFT's default): the model is unchanged at start.</summary>
    Default,
    /// <summary>A ~ N(0, 1/r), B zeros.</summary>
    Gaussian,
    /// <summary>PiSSA: A and B from the top-r singular vectors of W; W keeps the residual, so the model is unchanged at start.</summary>
    Pissa,
    /// <summary>OLoRA (Büyükakyüz 2024): W = QR, A = R[:r], B = Q[:, :r] (orthonormal columns); W keeps W − s·BA, so the model is unchanged at start.</summary>
    Olora,
}

/// <summary>What the initialisations imply.</summary>
public static class LoraInits
{
    /// <summary>
    /// The init moves part of W into A and B (PiSSA, OLoRA): the trained factors only apply to the residual base, so
    /// a saved adapter is converted to one for the original base (rank 2r, see <see cref="LoraMethod.AdapterState"/>).
    /// </summary>
    public static bool ModifiesBase(this LoraInit init) => init is LoraInit.Pissa or LoraInit.Olora;
}

/// <summary>Which biases train along with LoRA.</summary>
public enum LoraBias
{
    /// <summary>No bias trains.</summary>
    None,
    /// <summary>Every bias in the model trains.</summary>
    All,
    /// <summary>Biases of the LoRA-wrapped layers train.</summary>
    LoraOnly,
}

/// <summary>LoRA: y = W x + (α/r) · B A dropout(x) (α/√r with rsLoRA); DoRA rescales each output row by a learned magnitude.</summary>
public sealed record LoraConfig : PeftConfig
{
    /// <inheritdoc/>
    public override PeftMethodKind Kind => PeftMethodKind.Lora;
    /// <summary>Rank r of the update.</summary>
    [ConfigRange(1, int.MaxValue)]
    public int R { get; init; } = 8;
    /// <summary>Scale numerator α.</summary>
    [ConfigRange(0, double.MaxValue, MinExclusive = true)]
    public double Alpha { get; init; } = 16;
    /// <summary>Dropout on the LoRA branch input.</summary>
    [ConfigRange(0, 1, MaxExclusive = true)]
    public double Dropout { get; init; }
    /// <summary>Modules to wrap (default: the model's, e.g. q_proj, v_proj for Llama and q, v for T5, as in PEFT).</summary>
    [PeftLab.Configuration.ConfigKey("target_modules")]
    public TargetSelector Targets { get; init; } = TargetSelector.ModelDefaults;
    /// <summary>Scale α/√r instead of α/r.</summary>
    public bool UseRslora { get; init; }
    /// <summary>Weight-decomposed LoRA (learned per-row magnitude).</summary>
    public bool UseDora { get; init; }
    /// <summary>Initialisation of A and B.</summary>
    public LoraInit Init { get; init; } = LoraInit.Default;
    /// <summary>Which biases train.</summary>
    public LoraBias Bias { get; init; } = LoraBias.None;
    /// <summary>Whole modules (e.g. lm_head) trained and saved alongside the adapter.</summary>
    public IReadOnlyList<string> ModulesToSave { get; init; } = [];

    /// <summary>
    /// Per-module ranks overriding <see cref="R"/> (PEFT's <c>rank_pattern</c>): a key is a module name or a regex
    /// matched against the end of the full module name after a dot, e.g. <c>down_proj</c> or <c>layers\.0\..*</c>.
    /// </summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    /// <summary>
    /// Token ids whose rows of the input embedding train alongside LoRA (PEFT's <c>trainable_token_indices</c>, e.g. new
    /// special tokens); a head tied to the embedding sees them too. Empty: none.
    /// </summary>
    public IReadOnlyList<int> TrainableTokenIndices { get; init; } = [];
    /// <summary>
    /// The embedding module <see cref="TrainableTokenIndices"/> names (PEFT's dict form, e.g. embed_tokens); null: the
    /// model's input embedding (PEFT's list form).
    /// </summary>
    public string? TrainableTokensModule { get; init; }
    /// <summary>Per-module α overriding <see cref="Alpha"/> (PEFT's <c>alpha_pattern</c>), keys as in <see cref="RankPattern"/>.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>The factor applied to B A x.</summary>
    public double Scaling => UseRslora ? Alpha / Math.Sqrt(R) : Alpha / R;

    /// <summary>This config as it applies to the module called <paramref name="module"/>: r and α from the patterns where one matches.</summary>
    public LoraConfig ForModule(string module) => this with
    {
        R = PatternKeys.ValueFor(RankPattern, module, R),
        Alpha = PatternKeys.ValueFor(AlphaPattern, module, Alpha),
    };
}
