using System.Text.Json;
using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// One method's adapter file built by hand from the method's formula, as the Python PEFT library writes it: the
/// adapter_config.json fields (without the common ones), the tensors under PEFT's key names, and, independently of
/// the code under test, the weights of the base model that compute the same function (W' from the formula).
/// </summary>
/// <param name="PeftType">peft_type.</param>
/// <param name="Fields">Every other adapter_config.json field as PEFT writes it.</param>
/// <param name="Build">Given the base model's parameters (name → tensor) and a generator: the file's tensors and the effective parameters (name → value).</param>
/// <param name="Unsupported">A PEFT field of the method, with a value PeftLab does not implement: loading must fail naming it.</param>
public sealed record HandBuiltAdapter(
    string PeftType,
    JsonObject Fields,
    Func<IReadOnlyDictionary<string, Tensor>, Generator, (Dictionary<string, Tensor> File, Dictionary<string, Tensor> Effective)> Build,
    (string Key, JsonNode Value) Unsupported);

/// <summary>
/// For each method: PeftLab loads the hand-built file and computes the formula's output (logits within 1e-5 of the
/// base model with the formula's weights), and PeftLab's saved file has exactly the hand-built keys, shapes and fields.
/// </summary>
public sealed class PeftFileFormatTests
{
    private const string Prefix = "base_model.model.";

    /// <summary>Module paths of the tiny Llama's blocks.</summary>
    private static string Attn(int layer, string proj) => $"model.layers.{layer}.self_attn.{proj}";
    private static string Mlp(int layer, string proj) => $"model.layers.{layer}.mlp.{proj}";

    /// <summary>Hand-built adapters per case name.</summary>
    public static IReadOnlyDictionary<string, HandBuiltAdapter> Cases { get; } = new Dictionary<string, HandBuiltAdapter>
    {
        // LN tuning: the tuned gain replaces the norm's (PEFT keeps it in ln_tuning_layers).
        ["ln_tuning"] = new("LN_TUNING",
            new JsonObject
            {
                ["target_modules"] = new JsonArray("input_layernorm", "norm"),
                ["exclude_modules"] = null, ["layers_pattern"] = null, ["layers_to_transform"] = null, ["modules_to_save"] = null,
            },
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var norm in new[] { "model.layers.0.input_layernorm", "model.layers.1.input_layernorm", "model.norm" })
                {
                    var gain = 1 + 0.3 * randn([p[norm + ".weight"].shape[0]], generator: g);
                    file[Prefix + norm + ".ln_tuning_layers.weight"] = gain;
                    eff[norm + ".weight"] = gain;
                }
                return (file, eff);
            },
            ("modules_to_save", new JsonArray("lm_head"))),

        // LoRA with per-module ranks and alphas, layers_to_transform and exclude_modules: W' = W + (α_m / r_m) B A.
        ["lora_patterns"] = new("LORA",
            new JsonObject
            {
                ["alpha_pattern"] = new JsonObject { ["q_proj"] = 6.0 },
                ["bias"] = "none", ["fan_in_fan_out"] = false, ["init_lora_weights"] = true,
                ["layers_pattern"] = "layers", ["layers_to_transform"] = new JsonArray(1),
                ["lora_alpha"] = 16.0, ["lora_dropout"] = 0.0, ["modules_to_save"] = null, ["r"] = 4,
                ["rank_pattern"] = new JsonObject { ["mlp\\.down_proj"] = 2 },
                ["target_modules"] = new JsonArray("q_proj", "v_proj", "down_proj", "up_proj"),
                ["exclude_modules"] = new JsonArray("up_proj"),
                ["use_dora"] = false, ["use_rslora"] = false, ["trainable_token_indices"] = null,
            },
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var (module, r, alpha) in new[] { (Attn(1, "q_proj"), 4, 6.0), (Attn(1, "v_proj"), 4, 16.0), (Mlp(1, "down_proj"), 2, 16.0) })
                {
                    var w = p[module + ".weight"];
                    var a = 0.2 * randn([r, w.shape[1]], generator: g);
                    var b = 0.2 * randn([w.shape[0], r], generator: g);
                    file[Prefix + module + ".lora_A.weight"] = a;
                    file[Prefix + module + ".lora_B.weight"] = b;
                    eff[module + ".weight"] = w + alpha / r * b.matmul(a);
                }
                return (file, eff);
            },
            ("use_qalora", true)),

        // LoRA with a whole module trained and saved: modules_to_save's copy is saved under the module's own key.
        ["lora_modules_to_save"] = new("LORA",
            new JsonObject
            {
                ["alpha_pattern"] = new JsonObject(), ["bias"] = "none", ["fan_in_fan_out"] = false, ["init_lora_weights"] = true,
                ["layers_pattern"] = null, ["layers_to_transform"] = null, ["lora_alpha"] = 4.0, ["lora_dropout"] = 0.0,
                ["modules_to_save"] = new JsonArray("lm_head"), ["r"] = 2, ["rank_pattern"] = new JsonObject(),
                ["target_modules"] = new JsonArray("k_proj"), ["exclude_modules"] = null, ["use_dora"] = false, ["use_rslora"] = false, ["trainable_token_indices"] = null,
            },
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var layer in new[] { 0, 1 })
                {
                    var module = Attn(layer, "k_proj");
                    var w = p[module + ".weight"];
                    var a = 0.2 * randn([2, w.shape[1]], generator: g);
                    var b = 0.2 * randn([w.shape[0], 2], generator: g);
                    file[Prefix + module + ".lora_A.weight"] = a;
                    file[Prefix + module + ".lora_B.weight"] = b;
                    eff[module + ".weight"] = w + 2.0 * b.matmul(a);
                }
                var head = p["lm_head.weight"] + 0.3 * randn(p["lm_head.weight"].shape, generator: g);
                file[Prefix + "lm_head.weight"] = head;
                eff["lm_head.weight"] = head;
                return (file, eff);
            },
            ("init_lora_weights", false)),

        // LoRA with trainable tokens: the saved rows replace the embedding's rows of those ids (values, not differences).
        ["lora_trainable_tokens"] = new("LORA",
            new JsonObject
            {
                ["alpha_pattern"] = new JsonObject(), ["bias"] = "none", ["fan_in_fan_out"] = false, ["init_lora_weights"] = true,
                ["layers_pattern"] = null, ["layers_to_transform"] = null, ["lora_alpha"] = 4.0, ["lora_dropout"] = 0.0,
                ["modules_to_save"] = null, ["r"] = 2, ["rank_pattern"] = new JsonObject(),
                ["target_modules"] = new JsonArray("v_proj"), ["exclude_modules"] = null, ["use_dora"] = false, ["use_rslora"] = false,
                ["trainable_token_indices"] = new JsonObject { ["embed_tokens"] = new JsonArray(3, 17, 40) },
            },
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var layer in new[] { 0, 1 })
                {
                    var module = Attn(layer, "v_proj");
                    var w = p[module + ".weight"];
                    var a = 0.2 * randn([2, w.shape[1]], generator: g);
                    var b = 0.2 * randn([w.shape[0], 2], generator: g);
                    file[Prefix + module + ".lora_A.weight"] = a;
                    file[Prefix + module + ".lora_B.weight"] = b;
                    eff[module + ".weight"] = w + 2.0 * b.matmul(a);
                }
                var table = p["model.embed_tokens.weight"];
                var rows = randn([3, table.shape[1]], generator: g);
                file[Prefix + "model.embed_tokens.token_adapter.trainable_tokens_delta"] = rows;
                eff["model.embed_tokens.weight"] = table.index_copy(0, tensor(new long[] { 3, 17, 40 }), rows);
                return (file, eff);
            },
            ("trainable_token_indices", new JsonObject { ["embed_tokens"] = new JsonArray(1), ["lm_head"] = new JsonArray(2) })),

        // LoHa: W' = W + (α_m / r) (w1_a w1_b) ⊙ (w2_a w2_b).
        ["loha"] = new("LOHA",
            LycorisFields(r: 4, alpha: 8, alphaPattern: new JsonObject { ["v_proj"] = 2.0 }, "q_proj", "v_proj"),
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var layer in new[] { 0, 1 })
                    foreach (var (proj, alpha) in new[] { ("q_proj", 8.0), ("v_proj", 2.0) })
                    {
                        var module = Attn(layer, proj);
                        var w = p[module + ".weight"];
                        long o = w.shape[0], i = w.shape[1];
                        var (w1a, w1b, w2a, w2b) = (0.4 * randn([o, 4], generator: g), 0.4 * randn([4, i], generator: g), 0.4 * randn([o, 4], generator: g), 0.4 * randn([4, i], generator: g));
                        file[Prefix + module + ".hada_w1_a"] = w1a;
                        file[Prefix + module + ".hada_w1_b"] = w1b;
                        file[Prefix + module + ".hada_w2_a"] = w2a;
                        file[Prefix + module + ".hada_w2_b"] = w2b;
                        eff[module + ".weight"] = w + alpha / 4 * (w1a.matmul(w1b) * w2a.matmul(w2b));
                    }
                return (file, eff);
            },
            ("use_effective_conv2d", true)),

        // LoKr, decompose_factor 4: every side splits as (4, side/4); r = 2 is below half of w2's larger side, so w2 is
        // the product w2_a w2_b; v_proj's rank_pattern 8 is not, so its w2 is whole. W' = W + (α / r_m) kron(w1, w2).
        ["lokr_factor"] = new("LOKR",
            LokrFields(r: 2, alpha: 4, rankPattern: new JsonObject { ["v_proj"] = 8 }, decomposeBoth: false, decomposeFactor: 4, "q_proj", "v_proj"),
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var layer in new[] { 0, 1 })
                {
                    // q_proj [32, 32]: out (4, 8), in (4, 8)
                    var q = Attn(layer, "q_proj");
                    var (w1, w2a, w2b) = (0.4 * randn([4, 4], generator: g), 0.4 * randn([8, 2], generator: g), 0.4 * randn([2, 8], generator: g));
                    file[Prefix + q + ".lokr_w1"] = w1;
                    file[Prefix + q + ".lokr_w2_a"] = w2a;
                    file[Prefix + q + ".lokr_w2_b"] = w2b;
                    eff[q + ".weight"] = p[q + ".weight"] + 4.0 / 2 * Kron(w1, w2a.matmul(w2b));
                    // v_proj [16, 32]: out (4, 4), in (4, 8); r = 8 is not below max(4, 8) / 2
                    var v = Attn(layer, "v_proj");
                    var (v1, v2) = (0.4 * randn([4, 4], generator: g), 0.4 * randn([4, 8], generator: g));
                    file[Prefix + v + ".lokr_w1"] = v1;
                    file[Prefix + v + ".lokr_w2"] = v2;
                    eff[v + ".weight"] = p[v + ".weight"] + 4.0 / 8 * Kron(v1, v2);
                }
                return (file, eff);
            },
            ("init_weights", "lycoris")),

        // LoKr, decompose_both, sides split near √side (32 → (4, 8), 48 → (6, 8)), r = 1: both factors are low-rank products.
        ["lokr_decompose_both"] = new("LOKR",
            LokrFields(r: 1, alpha: 2, rankPattern: new JsonObject(), decomposeBoth: true, decomposeFactor: -1, "q_proj", "down_proj"),
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                foreach (var layer in new[] { 0, 1 })
                    foreach (var (module, outL, inM, outK, inN) in new[] { (Attn(layer, "q_proj"), 4, 4, 8, 8), (Mlp(layer, "down_proj"), 4, 6, 8, 8) })
                    {
                        var (w1a, w1b, w2a, w2b) = (0.4 * randn([outL, 1], generator: g), 0.4 * randn([1, inM], generator: g), 0.4 * randn([outK, 1], generator: g), 0.4 * randn([1, inN], generator: g));
                        file[Prefix + module + ".lokr_w1_a"] = w1a;
                        file[Prefix + module + ".lokr_w1_b"] = w1b;
                        file[Prefix + module + ".lokr_w2_a"] = w2a;
                        file[Prefix + module + ".lokr_w2_b"] = w2b;
                        eff[module + ".weight"] = p[module + ".weight"] + 2.0 * Kron(w1a.matmul(w1b), w2a.matmul(w2b));
                    }
                return (file, eff);
            },
            ("use_effective_conv2d", true)),

        // VeRA with its projections in the file (random here, not the key's: the file's must be the ones used), layers of
        // different shapes slicing them: W' = W + (λ_b ⊙ B[:out]) (λ_d ⊙ A[:, :in]), A [r, max_in], B [max_out, r].
        ["vera"] = new("VERA",
            VeraFields(r: 4, key: 0, saveProjection: true, layers: null, "q_proj", "v_proj", "down_proj"),
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                var (a, b) = (0.4 * randn([4, 48], generator: g), 0.4 * randn([32, 4], generator: g));   // max in: down_proj's 48; max out: q/down's 32
                file["base_model.vera_A"] = a;
                file["base_model.vera_B"] = b;
                foreach (var layer in new[] { 0, 1 })
                    foreach (var module in new[] { Attn(layer, "q_proj"), Attn(layer, "v_proj"), Mlp(layer, "down_proj") })
                        VeraLayer(p, g, module, a, b, file, eff);
                return (file, eff);
            },
            ("modules_to_save", new JsonArray("lm_head"))),

        // VeRA without its projections: PEFT redraws them from projection_prng_key (written out here as PEFT's
        // _init_vera_A_vera_B: one CPU generator, A then B, U(±√3·√2/√fan_in)); only layer 1 (layers_to_transform), so
        // max_in = 32 and max_out = up_proj's 48.
        ["vera_no_projection"] = new("VERA",
            VeraFields(r: 6, key: 1234, saveProjection: false, layers: 1, "q_proj", "up_proj"),
            (p, g) =>
            {
                var file = new Dictionary<string, Tensor>();
                var eff = new Dictionary<string, Tensor>();
                var key = new Generator(1234, CPU);
                Tensor Kaiming(long rows, long cols) => empty([rows, cols]).uniform_(-Math.Sqrt(3.0) * (Math.Sqrt(2) / Math.Sqrt(cols)), Math.Sqrt(3.0) * (Math.Sqrt(2) / Math.Sqrt(cols)), generator: key);
                var a = Kaiming(6, 32);
                var b = Kaiming(48, 6);
                foreach (var module in new[] { Attn(1, "q_proj"), Mlp(1, "up_proj") })
                    VeraLayer(p, g, module, a, b, file, eff);
                return (file, eff);
            },
            ("exclude_modules", new JsonArray("v_proj"))),

        // OFT, PEFT's defaults (Cayley–Neumann, 5 terms), block size 8: q_proj 4 blocks, down_proj (in 48) 6 blocks.
        // W' = W Rᵀ, R = blockdiag(R_i), R_i = I + 2Q + 2Q² + 2Q³ + Q⁴, Q_i skew with the row's upper triangle.
        ["oft"] = new("OFT",
            OftFields(r: 0, blockSize: 8, useNeumann: true, terms: 5, blockShare: false, coft: false, eps: 6e-5, "q_proj", "down_proj"),
            (p, g) => OftCase(p, g, [(Attn(0, "q_proj"), 4), (Attn(1, "q_proj"), 4), (Mlp(0, "down_proj"), 6), (Mlp(1, "down_proj"), 6)], 8, share: false,
                q => Neumann(q, 5)),
            ("peft_version", "0.17.0")),

        // OFT with the exact Cayley transform and one shared block per layer, given as r = 4 blocks (so b = 32/4 = 8):
        // R_i = (I − Q)(I + Q)⁻¹, the same for the 4 blocks; oft_R.weight [1, 28].
        ["oft_exact_share"] = new("OFT",
            OftFields(r: 4, blockSize: 0, useNeumann: false, terms: 5, blockShare: true, coft: false, eps: 6e-5, "k_proj", "o_proj"),
            (p, g) => OftCase(p, g, [(Attn(0, "k_proj"), 4), (Attn(1, "k_proj"), 4), (Attn(0, "o_proj"), 4), (Attn(1, "o_proj"), 4)], 8, share: true,
                q => (eye(8) - q).matmul(linalg.inv(eye(8) + q))),
            ("fan_in_fan_out", true)),

        // Constrained OFT, 3 series terms (R = I + 2Q + 2Q² + Q³), r = 2 blocks of 16: each Q larger than the ball
        // ‖Q‖_F ≤ eps/√2 is scaled onto it before use.
        ["oft_coft"] = new("OFT",
            OftFields(r: 2, blockSize: 0, useNeumann: true, terms: 3, blockShare: false, coft: true, eps: 0.3, "v_proj", "up_proj"),
            (p, g) => OftCase(p, g, [(Attn(0, "v_proj"), 2), (Attn(1, "v_proj"), 2), (Mlp(0, "up_proj"), 2), (Mlp(1, "up_proj"), 2)], 16, share: false,
                q =>
                {
                    double eps = 0.3 / Math.Sqrt(2);
                    var norm = q.pow(2).sum().sqrt().item<float>();
                    return Neumann(norm <= eps ? q : q * (eps / norm), 3);
                }),
            ("bias", "lora_only")),
    };

    /// <summary>
    /// One VeRA layer by its formula: random λ_b [out] and λ_d [r] into the file, and W + (λ_b ⊙ B[:out]) (λ_d ⊙ A[:, :in])
    /// as the layer's effective weight (A [r, max_in], B [max_out, r] the shared projections).
    /// </summary>
    private static void VeraLayer(IReadOnlyDictionary<string, Tensor> p, Generator g, string module, Tensor a, Tensor b,
        Dictionary<string, Tensor> file, Dictionary<string, Tensor> eff)
    {
        var w = p[module + ".weight"];
        long o = w.shape[0], i = w.shape[1];
        var (lb, ld) = (randn([o], generator: g), randn([a.shape[0]], generator: g));
        file[Prefix + module + ".vera_lambda_b"] = lb;
        file[Prefix + module + ".vera_lambda_d"] = ld;
        eff[module + ".weight"] = w + (lb.unsqueeze(1) * b.narrow(0, 0, o)).matmul(ld.unsqueeze(1) * a.narrow(1, 0, i));
    }

    private static JsonObject VeraFields(int r, int key, bool saveProjection, int? layers, params string[] targets) => new()
    {
        ["bias"] = "none", ["d_initial"] = 0.1, ["fan_in_fan_out"] = false, ["init_weights"] = true,
        ["layers_pattern"] = layers is null ? null : "layers", ["layers_to_transform"] = layers is int l ? new JsonArray(l) : null,
        ["modules_to_save"] = null, ["projection_prng_key"] = key, ["r"] = r, ["save_projection"] = saveProjection,
        ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()), ["vera_dropout"] = 0.0,
    };

    private static JsonObject OftFields(int r, int blockSize, bool useNeumann, int terms, bool blockShare, bool coft, double eps, params string[] targets) => new()
    {
        ["bias"] = "none", ["block_share"] = blockShare, ["coft"] = coft, ["eps"] = eps, ["exclude_modules"] = null,
        ["fan_in_fan_out"] = false, ["init_weights"] = true, ["layers_pattern"] = null, ["layers_to_transform"] = null,
        ["module_dropout"] = 0.0, ["modules_to_save"] = null, ["num_cayley_neumann_terms"] = terms, ["oft_block_size"] = blockSize,
        ["peft_version"] = "0.18.0", ["r"] = r, ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()),
        ["use_cayley_neumann"] = useNeumann,
    };

    /// <summary>
    /// An OFT file of random skew entries for (module, blocks) and the weights W Rᵀ they give: <paramref name="rotation"/>
    /// turns one block's Q [b, b] into R; with <paramref name="share"/> one row serves every block.
    /// </summary>
    private static (Dictionary<string, Tensor>, Dictionary<string, Tensor>) OftCase(IReadOnlyDictionary<string, Tensor> p, Generator g,
        (string Module, int Blocks)[] layers, int b, bool share, Func<Tensor, Tensor> rotation)
    {
        var file = new Dictionary<string, Tensor>();
        var eff = new Dictionary<string, Tensor>();
        foreach (var (module, blocks) in layers)
        {
            var vec = 0.3 * randn([share ? 1 : blocks, b * (b - 1) / 2], generator: g);
            file[Prefix + module + ".oft_R.weight"] = vec;
            var w = p[module + ".weight"];
            var full = zeros(w.shape[1], w.shape[1]);
            for (int i = 0; i < blocks; i++)
            {
                // the row fills the strict upper triangle row by row (torch.triu_indices order); Q = U − Uᵀ
                var u = zeros(b, b);
                int k = 0;
                for (int row = 0; row < b; row++)
                    for (int col = row + 1; col < b; col++)
                        u[row, col] = vec[share ? 0 : i, k++];
                full.narrow(0, i * b, b).narrow(1, i * b, b).copy_(rotation(u - u.t()));
            }
            eff[module + ".weight"] = w.matmul(full.t());
        }
        return (file, eff);
    }

    /// <summary>PEFT's series: I + 2Q, + 2Q² … + 2Q^(n−2), + Q^(n−1) (n ≥ 3; the last power at least Q³).</summary>
    private static Tensor Neumann(Tensor q, int n)
    {
        var r = eye(q.shape[0]) + 2 * q + 2 * q.matmul(q);
        var power = q.matmul(q);
        for (int k = 3; k <= n - 2; k++)
        {
            power = power.matmul(q);
            r += 2 * power;
        }
        return r + power.matmul(q);
    }

    /// <summary>kron(a, b) written out: block (i, j) of the result is a[i, j] · b.</summary>
    private static Tensor Kron(Tensor a, Tensor b) =>
        (a.unsqueeze(1).unsqueeze(3) * b.unsqueeze(0).unsqueeze(2)).reshape(a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]);

    /// <summary>The fields PEFT's LyCORIS configs (LoHa, LoKr) write.</summary>
    private static JsonObject LycorisFields(int r, double alpha, JsonObject alphaPattern, params string[] targets) => new()
    {
        ["alpha"] = alpha, ["alpha_pattern"] = alphaPattern, ["exclude_modules"] = null, ["init_weights"] = true,
        ["layers_pattern"] = null, ["layers_to_transform"] = null, ["module_dropout"] = 0.0, ["modules_to_save"] = null,
        ["r"] = r, ["rank_dropout"] = 0.0, ["rank_pattern"] = new JsonObject(), ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()),
        ["use_effective_conv2d"] = false,
    };

    private static JsonObject LokrFields(int r, double alpha, JsonObject rankPattern, bool decomposeBoth, int decomposeFactor, params string[] targets)
    {
        var json = LycorisFields(r, alpha, new JsonObject(), targets);
        json["rank_pattern"] = rankPattern;
        json["decompose_both"] = decomposeBoth;
        json["decompose_factor"] = decomposeFactor;
        json["rank_dropout_scale"] = false;
        return json;
    }

    public static TheoryData<string> Names => new(Cases.Keys.ToArray());

    private static readonly string[] CommonFields = ["base_model_name_or_path", "inference_mode", "peft_type", "revision", "task_type"];

    private static CausalLM Base() => TinyModels.Create(TinyModels.Llama, seed: 5);

    private static string WriteHandBuilt(HandBuiltAdapter c, Dictionary<string, Tensor> file)
    {
        var dir = TestPaths.NewTempDir();
        var json = (JsonObject)c.Fields.DeepClone();
        json["peft_type"] = c.PeftType;
        json["task_type"] = "CAUSAL_LM";
        json["base_model_name_or_path"] = null;
        json["inference_mode"] = true;
        json["revision"] = null;
        File.WriteAllText(Path.Combine(dir, PeftModel.ConfigFile), json.ToJsonString());
        SafeTensorsWriter.Write(Path.Combine(dir, PeftModel.WeightsFile),
            file.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => TensorConversions.FromTensor(kv.Key, kv.Value.to_type(ScalarType.Float32).contiguous())));
        return dir;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void PeftLabLoadsTheHandBuiltFileAndComputesTheFormula(string name)
    {
        using var scope = NewDisposeScope();
        var c = Cases[name];
        var reference = Base();
        var parameters = reference.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        var (file, effective) = c.Build(parameters, new Generator(11, CPU));
        var dir = WriteHandBuilt(c, file);
        try
        {
            var peft = PeftModel.LoadAdapter(Base(), dir);
            Assert.Empty(peft.Warnings);
            using (no_grad())
                foreach (var (key, value) in effective)
                {
                    Assert.True(parameters.ContainsKey(key), $"{name}: the case names '{key}', which the base model does not have");
                    parameters[key].copy_(value);
                }
            var ids = TinyModels.Tokens(2, 9, TinyModels.Llama.VocabSize);
            reference.eval();
            peft.Model.eval();
            using var noGrad = no_grad();
            var expected = reference.Forward(ids);
            var diff = Fixtures.MaxAbsDiff(expected, peft.Model.Forward(ids));
            Assert.True(diff < 1e-5, $"{name}: PeftLab's output differs from the formula's by {diff}");
            Assert.True(Fixtures.MaxAbsDiff(expected, Base().Forward(ids)) > 1e-3, $"{name}: the adapter should change the output");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void PeftLabSavesExactlyTheHandBuiltKeysShapesAndFields(string name)
    {
        using var scope = NewDisposeScope();
        var c = Cases[name];
        var parameters = Base().named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        var (file, _) = c.Build(parameters, new Generator(11, CPU));
        var dir = WriteHandBuilt(c, file);
        var saved = TestPaths.NewTempDir();
        try
        {
            PeftModel.LoadAdapter(Base(), dir).SaveAdapter(saved);
            using (var f = SafeTensorsFile.Open(Path.Combine(saved, PeftModel.WeightsFile)))
            {
                Assert.Equal(file.Keys.Order(StringComparer.Ordinal), f.Names.Order(StringComparer.Ordinal));
                foreach (var (key, t) in file) Assert.Equal(t.shape, f.GetInfo(key).Shape);
            }
            var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(saved, PeftModel.ConfigFile)))!;
            Assert.Equal(c.Fields.Select(kv => kv.Key).Concat(CommonFields).Order(StringComparer.Ordinal), json.Select(kv => kv.Key).Order(StringComparer.Ordinal));
            Assert.Equal(c.PeftType, (string?)json["peft_type"]);
            foreach (var (key, value) in c.Fields)
                Assert.True(Canonical(value) == Canonical(json[key]), $"{name}: field '{key}' saved as {json[key]?.ToJsonString() ?? "null"}, PEFT writes {value?.ToJsonString() ?? "null"}");
        }
        finally
        {
            Directory.Delete(dir, true);
            Directory.Delete(saved, true);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void ATensorOfTheWrongShapeIsAnErrorNamingIt(string name)
    {
        using var scope = NewDisposeScope();
        var c = Cases[name];
        var (file, _) = c.Build(Base().named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter), new Generator(11, CPU));
        var key = file.Keys.Order(StringComparer.Ordinal).First();
        file[key] = cat([file[key], file[key]], 0);
        var dir = WriteHandBuilt(c, file);
        try
        {
            var e = Assert.ThrowsAny<Exception>(() => PeftModel.LoadAdapter(Base(), dir));
            Assert.Contains($"shape mismatch for '{key}'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void AFieldValueThatIsNotSupportedIsAnErrorNamingTheField(string name)
    {
        using var scope = NewDisposeScope();
        var c = Cases[name];
        var (file, _) = c.Build(Base().named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter), new Generator(11, CPU));
        var fields = (JsonObject)c.Fields.DeepClone();
        fields[c.Unsupported.Key] = c.Unsupported.Value.DeepClone();
        var dir = WriteHandBuilt(c with { Fields = fields }, file);
        try
        {
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(Base(), dir));
            Assert.Contains(c.Unsupported.Key, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>JSON with numbers as doubles, lists of strings sorted, object keys sorted: PEFT writes 16 and 16.0 alike, lists of names in any order.</summary>
    private static string Canonical(JsonNode? n) => n switch
    {
        null => "null",
        JsonObject o => "{" + string.Join(",", o.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => JsonSerializer.Serialize(kv.Key) + ":" + Canonical(kv.Value))) + "}",
        JsonArray a when a.All(x => x is JsonValue v && v.TryGetValue<string>(out _)) => "[" + string.Join(",", a.Select(x => Canonical(x)).Order(StringComparer.Ordinal)) + "]",
        JsonArray a => "[" + string.Join(",", a.Select(Canonical)) + "]",
        JsonValue v when v.TryGetValue<double>(out var d) => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => n.ToJsonString(),
    };
}
