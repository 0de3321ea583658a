using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// PEFT's merge rules against values worked out by hand, and LoRA adapter combination (add_weighted_adapter) against
/// a direct computation of each rule from the input files' factors.
/// </summary>
public sealed class LoraCombinationTests
{
    private static Tensor T(params float[] values) => tensor(values);
    private static void Near(Tensor expected, Tensor actual, double tol = 1e-6) =>
        Assert.True(Fixtures.MaxAbsDiff(expected, actual) < tol, $"expected {expected.str()} got {actual.str()}");

    // --- the rules on small tensors, expected values worked out by hand --------------------------------------

    [Fact]
    public void TaskArithmeticIsTheWeightedSum()
    {
        using var scope = NewDisposeScope();
        Near(T(4.5f, 1, -0.5f, 8), MergeRules.TaskArithmetic([T(1, -2, 3, 0), T(2, 1, -1, 4)], [0.5, 2]));
    }

    [Fact]
    public void MagnitudePruningKeepsTheLargestFractionOfEachTensor()
    {
        using var scope = NewDisposeScope();
        Near(T(0, -4, 3, 0), MergeRules.KeepLargest(T(1, -4, 3, 0.5f), 0.5));     // ⌊0.5·4⌋ = 2 kept
        Near(T(0, -4, 0, 0), MergeRules.KeepLargest(T(1, -4, 3, 0.5f), 0.3));     // ⌊1.2⌋ = 1
        Near(T(1, -4, 3, 0.5f), MergeRules.KeepLargest(T(1, -4, 3, 0.5f), 1));
        Near(T(0, 0, 0, 0), MergeRules.KeepLargest(T(1, -4, 3, 0.5f), 0));
        // [0,-4,3,0]·1 + [2,0,0,4]·0.5
        Near(T(1, -4, 3, 2), MergeRules.MagnitudePrune([T(1, -4, 3, 0.5f), T(2, 1, -1, 4)], [1, 0.5], 0.5));
        Assert.Contains("density", Assert.Throws<ArgumentException>(() => MergeRules.KeepLargest(T(1), -0.1)).Message);
    }

    [Fact]
    public void TiesElectsSignsFromThePrunedTensorsAndAveragesTheAgreeingWeightedEntries()
    {
        using var scope = NewDisposeScope();
        // pruned to 2 of 4: t1 → [0,-4,3,0], t2 = [-2,1,-5,4] → [0,0,-5,4]
        Tensor[] tasks = [T(1, -4, 3, 0.5f), T(-2, 1, -5, 4)];
        // total: sums [0,-4,-2,4] → signs [+,-,-,+]; agreeing weighted entries: [—, -4, -5·0.5, 4·0.5]; no entry agrees at 0 → 0
        Near(T(0, -4, -2.5f, 2), MergeRules.Ties(tasks, [1, 0.5], 0.5, MajoritySignMethod.Total));
        // frequency: sign sums [0,-1,0,1] → [+,-,+,+]: at index 2 t1's +3 wins
        Near(T(0, -4, 3, 2), MergeRules.Ties(tasks, [1, 0.5], 0.5, MajoritySignMethod.Frequency));
        // no pruning; both agree on entry 0 → mean of 2 and 4; entry 1: 1 vs −1, sum 0 → + elected, only t1 agrees
        Near(T(3, 1), MergeRules.Ties([T(2, 1), T(4, -1)], [1, 1], 1, MajoritySignMethod.Total));
    }

    [Fact]
    public void DareDropsEntriesAtRandomAndRescalesTheKeptOnes()
    {
        using var scope = NewDisposeScope();
        var t1 = randn(64, generator: new Generator(1, CPU));
        var t2 = randn(64, generator: new Generator(2, CPU));
        var draws = new Generator(5, CPU);
        var m1 = bernoulli(full_like(t1, 0.3), draws);       // the rule draws tensor by tensor from its generator
        var m2 = bernoulli(full_like(t2, 0.3), draws);
        Tensor[] pruned = [t1 * m1 / 0.3, t2 * m2 / 0.3];
        Near(pruned[0] * 0.7 + pruned[1] * 1.5, MergeRules.DareLinear([t1, t2], [0.7, 1.5], 0.3, new Generator(5, CPU)), 1e-5);
        // DARE-TIES: the same drops, then TIES' sign election on the rescaled tensors (no magnitude pruning)
        Near(MergeRules.Ties(pruned, [0.7, 1.5], 1, MajoritySignMethod.Total),
            MergeRules.DareTies([t1, t2], [0.7, 1.5], 0.3, MajoritySignMethod.Total, new Generator(5, CPU)), 1e-5);
        // kept fraction of a large tensor ≈ density (binomial, ±5 sd)
        var big = MergeRules.KeepRandom(ones(20000), 0.3, new Generator(9, CPU));
        double kept = big.ne(0).sum().item<long>();
        Assert.InRange(kept, 6000 - 5 * Math.Sqrt(20000 * 0.21), 6000 + 5 * Math.Sqrt(20000 * 0.21));
        Assert.Equal(0, (big.masked_select(big.ne(0)) - 1 / 0.3).abs().max().item<float>(), 4);
    }

    // --- combining adapter files --------------------------------------------------------------------------

    private const string Q = "model.layers.0.self_attn.q_proj", V = "model.layers.0.self_attn.v_proj";

    /// <summary>A LoRA adapter folder of the given per-module (A, B), r, α.</summary>
    private static string Adapter(string root, string name, int r, double alpha, Dictionary<string, (Tensor A, Tensor B)> modules,
        Action<JsonObject>? edit = null, bool rslora = false)
    {
        var dir = Path.Combine(root, name);
        var config = new LoraConfig { R = r, Alpha = alpha, UseRslora = rslora, Targets = new TargetSelector { Names = modules.Keys.ToArray() } };
        var json = LoraMethod.ConfigJson(config);
        edit?.Invoke(json);
        var tensors = modules.SelectMany(kv => new[]
        {
            KeyValuePair.Create(PeftState.Prefix + kv.Key + ".lora_A.weight", kv.Value.A),
            KeyValuePair.Create(PeftState.Prefix + kv.Key + ".lora_B.weight", kv.Value.B),
        });
        PeftModel.WriteAdapterFolder(dir, json, "LORA", "CAUSAL_LM", tensors);
        if (edit is not null)   // WriteAdapterFolder sets the common fields; a test may overwrite them
        {
            var path = Path.Combine(dir, PeftModel.ConfigFile);
            var written = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            foreach (var (k, v) in json) written[k] = v?.DeepClone();
            File.WriteAllText(path, written.ToJsonString());
        }
        return dir;
    }

    private static (Tensor A, Tensor B) Factors(int r, int inF, int outF, ulong seed)
    {
        var g = new Generator(seed, CPU);
        return (randn([r, inF], generator: g), randn([outF, r], generator: g));
    }

    /// <summary>Two adapters: a (r 2, α 4) on q and v, b (r 2, α 2, rsLoRA) on q only; weights 0.7 and 0.4.</summary>
    private sealed class Pair : IDisposable
    {
        public readonly string Root = TestPaths.NewTempDir("peftlab-combine");
        public readonly (Tensor A, Tensor B) Aq = Factors(2, 6, 5, 1), Av = Factors(2, 6, 5, 2), Bq = Factors(2, 6, 5, 3);
        public const double Wa = 0.7, Wb = 0.4, Sa = 4.0 / 2, Sb = 2 / 1.4142135623730951;   // rsLoRA: α/√r
        public readonly string A, B;
        public Pair()
        {
            A = Adapter(Root, "a", 2, 4, new() { [Q] = Aq, [V] = Av });
            B = Adapter(Root, "b", 2, 2, new() { [Q] = Bq }, rslora: true);
        }
        public WeightedAdapterFolder[] Inputs => [new(A, Wa), new(B, Wb)];
        public void Dispose() => Directory.Delete(Root, true);
    }

    private static (Tensor A, Tensor B) Combined(IReadOnlyDictionary<string, Tensor> t, string module) =>
        (t[PeftState.Prefix + module + ".lora_A.weight"], t[PeftState.Prefix + module + ".lora_B.weight"]);

    private static Tensor Delta((Tensor A, Tensor B) f) => f.B.matmul(f.A);

    [Fact]
    public void CatStacksTheScaledFactors_ItsUpdateIsExactlyTheWeightedSum()
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var (config, t, task) = LoraCombination.Combine(p.Inputs, new LoraCombinationOptions { Type = LoraCombinationType.Cat });
        Near(Pair.Wa * Pair.Sa * Delta(p.Aq) + Pair.Wb * Pair.Sb * Delta(p.Bq), Delta(Combined(t, Q)), 1e-5);
        Near(Pair.Wa * Pair.Sa * Delta(p.Av), Delta(Combined(t, V)), 1e-5);          // only a wraps v: a alone
        Assert.Equal(4, Combined(t, Q).A.shape[0]);
        // the combined config: scaling 1 (r = α), v keeps rank 2 via the patterns, exactly the inputs' modules
        Assert.Equal((2, 2.0), (config.R, config.Alpha));
        Assert.Equal(new Dictionary<string, int> { [Q] = 4 }, config.RankPattern);
        Assert.Equal(4.0, config.AlphaPattern[Q]);
        Assert.Equal([Q, V], config.Targets.Names);
        Assert.Equal("CAUSAL_LM", task);
    }

    [Fact]
    public void LinearScalesBothFactorsByTheRootOfWeightTimesScaling()
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var (config, t, _) = LoraCombination.Combine(p.Inputs, new LoraCombinationOptions { Type = LoraCombinationType.Linear });
        double ra = Math.Sqrt(Pair.Wa * Pair.Sa), rb = Math.Sqrt(Pair.Wb * Pair.Sb);
        Near(p.Aq.A * ra + p.Bq.A * rb, Combined(t, Q).A, 1e-5);
        Near(p.Aq.B * ra + p.Bq.B * rb, Combined(t, Q).B, 1e-5);
        Near(p.Av.A * ra, Combined(t, V).A, 1e-5);
        Assert.Equal((2, 2.0), (config.R, config.Alpha));
        Assert.Empty(config.RankPattern);
    }

    [Theory]
    [InlineData("ties")]
    [InlineData("dare_linear")]
    [InlineData("dare_ties")]
    [InlineData("magnitude_prune")]
    public void FactorRulesApplyTheRuleToTheAsAndToTheBsWithRootWeights(string rule)
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var type = LoraCombination.Parse(rule);
        var (_, t, _) = LoraCombination.Combine(p.Inputs, new LoraCombinationOptions { Type = type, Density = 0.5, Seed = 3 });
        double[] roots = [Math.Sqrt(Pair.Wa * Pair.Sa), Math.Sqrt(Pair.Wb * Pair.Sb)];
        // the modules in name order (q, then v), per module A's first, then B's: the order of DARE's draws
        var g = new Generator(3, CPU);
        Tensor Rule(Tensor[] f) => type switch
        {
            LoraCombinationType.Ties => MergeRules.Ties(f, roots[..f.Length], 0.5, MajoritySignMethod.Total),
            LoraCombinationType.DareLinear => MergeRules.DareLinear(f, roots[..f.Length], 0.5, g),
            LoraCombinationType.DareTies => MergeRules.DareTies(f, roots[..f.Length], 0.5, MajoritySignMethod.Total, g),
            _ => MergeRules.MagnitudePrune(f, roots[..f.Length], 0.5),
        };
        Near(Rule([p.Aq.A, p.Bq.A]), Combined(t, Q).A, 1e-5);
        Near(Rule([p.Aq.B, p.Bq.B]), Combined(t, Q).B, 1e-5);
        Near(Rule([p.Av.A]), Combined(t, V).A, 1e-5);
        Near(Rule([p.Av.B]), Combined(t, V).B, 1e-5);
        Assert.NotEqual(0, Combined(t, Q).A.eq(0).sum().item<long>());             // something was pruned
    }

    [Theory]
    [InlineData("svd")]
    [InlineData("ties_svd")]
    [InlineData("dare_linear_svd")]
    [InlineData("dare_ties_svd")]
    [InlineData("magnitude_prune_svd")]
    public void SvdRulesCombineTheUpdatesAndTruncateThemByRank(string rule)
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var type = LoraCombination.Parse(rule);
        double[] w = [Pair.Wa * Pair.Sa, Pair.Wb * Pair.Sb];
        Tensor[] deltas = [Delta(p.Aq), Delta(p.Bq)];
        var g = new Generator(4, CPU);
        var expected = type switch
        {
            LoraCombinationType.Svd => MergeRules.TaskArithmetic(deltas, w),
            LoraCombinationType.TiesSvd => MergeRules.Ties(deltas, w, 0.5, MajoritySignMethod.Frequency),
            LoraCombinationType.DareLinearSvd => MergeRules.DareLinear(deltas, w, 0.5, g),
            LoraCombinationType.DareTiesSvd => MergeRules.DareTies(deltas, w, 0.5, MajoritySignMethod.Frequency, g),
            _ => MergeRules.MagnitudePrune(deltas, w, 0.5),
        };
        // rank 5 = min(out, in) of q: the SVD keeps everything, so the update is the rule's ΔW itself
        var full = new LoraCombinationOptions { Type = type, Density = 0.5, MajoritySign = MajoritySignMethod.Frequency, SvdRank = 5, Seed = 4 };
        var (_, t, _) = LoraCombination.Combine(p.Inputs, full);
        Near(expected, Delta(Combined(t, Q)), 1e-4);
        // default rank: the largest input rank (2): the best rank-2 approximation (Eckart–Young), by its singular values
        var (_, t2, _) = LoraCombination.Combine(p.Inputs, full with { SvdRank = null });
        Assert.Equal(2, Combined(t2, Q).A.shape[0]);
        var sv = linalg.svdvals(expected);
        double residual = linalg.norm(expected - Delta(Combined(t2, Q))).item<float>();
        double bound = sv.narrow(0, 2, sv.shape[0] - 2).pow(2).sum().sqrt().item<float>();
        Assert.Equal(bound, residual, 3);
    }

    [Fact]
    public void SvdClampLimitsTheFactorsToAQuantileOfTheirEntries()
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var (_, t, _) = LoraCombination.Combine(p.Inputs, new LoraCombinationOptions { Type = LoraCombinationType.Svd, SvdClamp = 0.9 });
        var (_, raw, _) = LoraCombination.Combine(p.Inputs, new LoraCombinationOptions { Type = LoraCombinationType.Svd });
        var all = cat([Combined(raw, Q).B.flatten(), Combined(raw, Q).A.flatten()]);
        var high = all.quantile(tensor(0.9f)).item<float>();
        Near(Combined(raw, Q).A.clamp(-high, high), Combined(t, Q).A, 1e-5);
        Near(Combined(raw, Q).B.clamp(-high, high), Combined(t, Q).B, 1e-5);
    }

    [Fact]
    public void OneAdapterIsScaledLinearlyWhateverTheRule()
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        var (_, t, _) = LoraCombination.Combine([new(p.A, 0.5)], new LoraCombinationOptions { Type = LoraCombinationType.Ties });
        Near(0.5 * Pair.Sa * Delta(p.Aq), Delta(Combined(t, Q)), 1e-5);
    }

    [Fact]
    public void BadCombinationsAreErrorsNamingTheCause()
    {
        using var scope = NewDisposeScope();
        using var p = new Pair();
        string Fails(IReadOnlyList<WeightedAdapterFolder> inputs, LoraCombinationOptions options) =>
            Assert.Throws<PeftConfigException>(() => LoraCombination.Combine(inputs, options)).Message;
        var ties = new LoraCombinationOptions { Type = LoraCombinationType.Ties };
        Assert.Contains("density must be given", Fails(p.Inputs, ties));
        Assert.Contains("density must be given", Fails(p.Inputs, ties with { Density = 1.5 }));

        // different methods: an IA3 adapter
        var ia3 = Path.Combine(Fixtures.Dir("llama-gqa"), "adapters", "ia3");
        var m = Fails([new(p.A, 1), new(ia3, 1)], new LoraCombinationOptions());
        Assert.Contains("peft_type IA3 cannot be combined", m);
        Assert.Contains(ia3, m);

        // different bases: by name, and by a module's shape
        var other = Adapter(p.Root, "other-base", 2, 4, new() { [Q] = p.Aq }, j => j["base_model_name_or_path"] = "org/model-b");
        var named = Adapter(p.Root, "named-base", 2, 4, new() { [Q] = p.Aq }, j => j["base_model_name_or_path"] = "org/model-a");
        Assert.Contains("different base models", Fails([new(named, 1), new(other, 1)], new LoraCombinationOptions()));
        Assert.Contains("'org/model-a'", Fails([new(named, 1), new(other, 1)], new LoraCombinationOptions()));
        var wide = Adapter(p.Root, "wide", 2, 4, new() { [Q] = Factors(2, 8, 5, 9) });
        m = Fails([new(p.A, 1), new(wide, 1)], new LoraCombinationOptions());
        Assert.Contains($"module {Q} is 5×6 in {p.A} but 5×8 in {wide}", m);

        // equal ranks where the factor rules need them; svd rank that does not fit; negative weights on factors
        var rank3 = Adapter(p.Root, "rank3", 3, 3, new() { [Q] = Factors(3, 6, 5, 8) });
        Assert.Contains("needs equal ranks", Fails([new(p.A, 1), new(rank3, 1)], new LoraCombinationOptions { Type = LoraCombinationType.Linear }));
        Assert.Contains("svd rank 6 does not fit module", Fails(p.Inputs, new LoraCombinationOptions { SvdRank = 6 }));
        Assert.Contains("weights must be ≥ 0", Fails([new(p.A, 1), new(p.B, -1)], new LoraCombinationOptions { Type = LoraCombinationType.Linear }));

        // DoRA and a tensor without a rule
        var dora = Adapter(p.Root, "dora", 2, 4, new() { [Q] = p.Aq }, j => j["use_dora"] = true);
        Assert.Contains("use_dora=true cannot be combined", Fails([new(p.A, 1), new(dora, 1)], new LoraCombinationOptions()));
        Assert.Contains("unknown combination 'average'", Assert.Throws<ArgumentException>(() => LoraCombination.Parse("average")).Message);
    }

    // --- end to end: files PEFT wrote, the CLI, the model ------------------------------------------------

    [Fact]
    public void MergeCommandCombinesPeftsOwnAdapterWithAnotherIntoOneThatComputesTheWeightedSum()
    {
        using var scope = NewDisposeScope();
        var root = TestPaths.NewTempDir("peftlab-combine-cli");
        try
        {
            var fixture = Fixtures.Dir("llama-gqa");
            var peftMade = Path.Combine(fixture, "adapters", "lora-qv");                 // written by the Python PEFT library
            var baseModel = Fixtures.Load("llama-gqa");
            var ids = Fixtures.Expected("llama-gqa", "input_ids");
            // a second adapter: PeftLab's LoRA on q, k, o with random B
            var second = PeftModel.Apply(Fixtures.Load("llama-gqa"), new LoraConfig { R = 3, Alpha = 6, Targets = new TargetSelector { Names = ["q_proj", "k_proj", "o_proj"] } }, seed: 2);
            using (no_grad())
                foreach (var (name, prm) in second.Host.Module.named_parameters().Where(x => x.name.EndsWith("lora_B.weight")))
                    prm.copy_(randn(prm.shape, generator: new Generator(11, CPU)) * 0.05);
            var secondDir = Path.Combine(root, "second");
            second.SaveAdapter(secondDir);

            var outDir = Path.Combine(root, "combined");
            var printed = CliRunner.Ok("merge", "--model", fixture, "--adapter", peftMade + "=0.6", "--adapter", secondDir + "=0.8", "--combination", "cat", "--out", outDir);
            Assert.Contains("by cat", printed);

            // expected: W + 0.6·ΔW_peft + 0.8·ΔW_second, computed from the files
            var expected = Fixtures.Load("llama-gqa");
            using (no_grad())
            {
                var weights = expected.named_parameters().ToDictionary(x => x.name, x => x.parameter);
                foreach (var (dir, w) in new[] { (peftMade, 0.6), (secondDir, 0.8) })
                {
                    var (_, cfg, _) = PeftModel.ReadAdapterConfig(dir);
                    var lora = (LoraConfig)cfg;
                    using var src = CheckpointSource.OpenFile(Path.Combine(dir, PeftModel.WeightsFile));
                    foreach (var a in src.Names.Where(n => n.EndsWith(".lora_A.weight")))
                    {
                        var module = a[PeftState.Prefix.Length..^".lora_A.weight".Length];
                        var b = src.Read(module.Insert(0, PeftState.Prefix) + ".lora_B.weight", ScalarType.Float32, CPU);
                        weights[module + ".weight"].add_(w * lora.ForModule(module).Scaling * b.matmul(src.Read(a, ScalarType.Float32, CPU)));
                    }
                }
            }
            var combined = PeftModel.LoadAdapter(Fixtures.Load("llama-gqa"), outDir);
            using (no_grad())
            {
                var want = expected.Forward(ids);
                Assert.True(Fixtures.MaxAbsDiff(want, combined.Model.Forward(ids)) < 1e-4);
                Assert.True(Fixtures.MaxAbsDiff(want, baseModel.Forward(ids)) > 1e-3);             // the adapters do change it

                var merged = Path.Combine(root, "merged");
                CliRunner.Ok("merge", "--model", fixture, "--adapter", peftMade + "=0.6", "--adapter", secondDir + "=0.8", "--combination", "cat", "--into-base", "--out", merged);
                Assert.True(Fixtures.MaxAbsDiff(want, HfModel.Load(merged).Forward(ids)) < 1e-4);
            }

            // the combined adapter must fit the model it is checked against
            var tiny = Path.Combine(root, "tiny-model");
            PeftLab.Training.TrainableModels.CreatePreset(tiny, "tiny", 0, []);
            var r = CliRunner.Run("merge", "--model", tiny, "--adapter", peftMade + "=0.5", "--adapter", secondDir + "=0.5", "--out", Path.Combine(root, "x"));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("error:", r.Stderr);
        }
        finally { Directory.Delete(root, true); }
    }
}
