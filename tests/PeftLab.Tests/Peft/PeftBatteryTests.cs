using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.AdaLora;
using PeftLab.Peft.Adapter;
using PeftLab.Peft.BitFit;
using PeftLab.Peft.Full;
using PeftLab.Peft.IA3;
using PeftLab.Peft.Lora;
using PeftLab.Peft.LnTuning;
using PeftLab.Peft.LoHa;
using PeftLab.Peft.LoKr;
using PeftLab.Peft.Oft;
using PeftLab.Peft.PrefixTuning;
using PeftLab.Peft.PromptTuning;
using PeftLab.Peft.Vera;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>The PEFT battery (<see cref="PeftBattery{TSelf, TModel, TBatch}"/>) for every method × decoder-only family.</summary>
public sealed class PeftBatteryTests : PeftBattery<PeftBatteryTests, CausalLM, Tensor>, IBatteryRows
{
    /// <summary>Name → (config, output unchanged at init by construction).</summary>
    public static readonly IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Cases = new Dictionary<string, (PeftConfig, bool)>
    {
        ["full"] = (new FullConfig(), true),
        ["lora"] = (new LoraConfig { R = 4, Alpha = 8 }, true),
        ["lora-all-rslora"] = (new LoraConfig { R = 4, Alpha = 8, UseRslora = true, Targets = new TargetSelector { AllLinear = true } }, true),
        ["lora-gaussian-layer1"] = (new LoraConfig { R = 2, Init = LoraInit.Gaussian, Targets = new TargetSelector { Names = ["q_proj", "o_proj"], Layers = [1] } }, true),
        ["dora"] = (new LoraConfig { R = 4, Alpha = 8, UseDora = true, Targets = new TargetSelector { Names = ["q_proj", "v_proj", "down_proj"] } }, true),
        ["pissa"] = (new LoraConfig { R = 4, Alpha = 4, Init = LoraInit.Pissa, Targets = new TargetSelector { Regex = @".*\.(q_proj|up_proj)" } }, true),
        ["olora"] = (new LoraConfig { R = 2, Alpha = 8, Init = LoraInit.Olora, Targets = new TargetSelector { Regex = @".*\.(q_proj|up_proj)" } }, true),
        ["adalora"] = (new AdaLoraConfig { TargetR = 2, InitR = 3 }, true),
        ["adalora-dropout-targets"] = (new AdaLoraConfig { TargetR = 2, InitR = 4, Alpha = 4, Dropout = 0.2, Targets = new TargetSelector { Names = ["q_proj", "down_proj"] } }, true),
        ["lora-trainable-tokens"] = (new LoraConfig { R = 2, Alpha = 4, TrainableTokenIndices = [.. Enumerable.Range(0, 48).Where(i => i % 3 != 1)], Targets = new TargetSelector { Names = ["q_proj"] } }, true),
        ["adapter"] = (new AdapterConfig { Size = 8 }, true),
        ["adapter-parallel-gelu"] = (new AdapterConfig { Size = 8, Placement = AdapterPlacement.Parallel, Activation = AdapterActivation.Gelu }, true),
        ["prefix"] = (new PrefixTuningConfig { NumVirtualTokens = 3 }, false),
        ["prefix-projection"] = (new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 16 }, false),
        ["prompt"] = (new PromptTuningConfig { NumVirtualTokens = 4 }, false),
        ["ia3"] = (new IA3Config(), true),
        ["bitfit"] = (new BitFitConfig(), true),
        ["bitfit-norms"] = (new BitFitConfig { IncludeNorms = true }, true),
        ["lora-patterns"] = (new LoraConfig
        {
            R = 4, Alpha = 8, RankPattern = new Dictionary<string, int> { ["down_proj"] = 2 }, AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 3 },
            Targets = new TargetSelector { Names = ["q_proj", "down_proj", "up_proj"], Exclude = ["up_proj"] },
        }, true),
        ["ln_tuning"] = (new LnTuningConfig(), true),
        ["loha"] = (new LoHaConfig { R = 4, Alpha = 8 }, true),
        ["loha-dropout-patterns"] = (new LoHaConfig
        {
            R = 4, Alpha = 4, RankDropout = 0.3, RankPattern = new Dictionary<string, int> { ["down_proj"] = 2 },
            Targets = new TargetSelector { Names = ["q_proj", "down_proj"] },
        }, true),
        ["lokr"] = (new LoKrConfig { R = 2, Alpha = 4 }, true),
        ["lokr-decompose-both"] = (new LoKrConfig { R = 1, Alpha = 2, DecomposeBoth = true, RankDropout = 0.3, RankDropoutScale = true, Targets = new TargetSelector { Names = ["q_proj", "down_proj"] } }, true),
        ["lokr-factor"] = (new LoKrConfig { R = 8, Alpha = 8, DecomposeFactor = 4, Targets = new TargetSelector { AllLinear = true } }, true),
        ["vera"] = (new VeraConfig { R = 16 }, true),
        ["vera-dropout-bias"] = (new VeraConfig { R = 8, VeraDropout = 0.2, DInitial = 0.5, Bias = VeraBias.VeraOnly, Targets = new TargetSelector { Names = ["q_proj", "k_proj", "down_proj"] } }, true),
        ["vera-layer1-no-projection"] = (new VeraConfig { R = 8, SaveProjection = false, ProjectionPrngKey = 5, Targets = new TargetSelector { Names = ["q_proj", "o_proj"], Layers = [1], LayersPattern = ["layers"] } }, true),
        ["vera-regex-all-bias"] = (new VeraConfig { R = 32, Bias = VeraBias.All, Targets = new TargetSelector { Regex = @".*\.(v_proj|up_proj|down_proj)" } }, true),
        ["oft"] = (new OftConfig { OftBlockSize = 8 }, true),
        ["oft-exact-coft-dropout"] = (new OftConfig { R = 4, OftBlockSize = 0, UseCayleyNeumann = false, Coft = true, Eps = 1e-2, ModuleDropout = 0.5, Targets = new TargetSelector { Names = ["q_proj", "down_proj"] } }, true),
        ["oft-share-layer0-bias"] = (new OftConfig { OftBlockSize = 16, BlockShare = true, Bias = OftBias.OftOnly, Targets = new TargetSelector { Names = ["q_proj", "v_proj", "up_proj"], Layers = [0] } }, true),
        ["oft-regex-terms"] = (new OftConfig { OftBlockSize = 4, NumCayleyNeumannTerms = 3, Targets = new TargetSelector { Regex = @".*\.(k_proj|o_proj|gate_proj)" } }, true),
    };

    /// <summary>The real pretrained stories260K model (its weights, not random ones) as one more family of every check.</summary>
    public const string RealFamily = "stories260K";

    public static IEnumerable<object[]> Rows() =>
        from m in Cases.Keys from f in TinyModels.ByName.Keys.Append(RealFamily) select new object[] { m, f };

    protected override IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Table => Cases;
    protected override CausalLM CreateBase(string family) =>
        family == RealFamily ? HfModel.Load(Real.StoryTasks.Model) : TinyModels.Create(TinyModels.ByName[family]);
    protected override CausalLM Inner(PeftModel peft) => peft.Model;
    protected override Tensor MakeBatch(string family) => TinyModels.Tokens(2, 9, family == RealFamily ? 512 : TinyModels.ByName[family].VocabSize);
    protected override Tensor Forward(CausalLM model, Tensor ids) => model.Forward(ids);
    protected override Tensor Loss(CausalLM model, Tensor ids) => TinyModels.LmLoss(model.Forward(ids), ids);
    /// <summary>
    /// Max |a − b|, relative to the logits' scale once that exceeds 1: the random tiny models' logits stay below 1,
    /// the real model's reach ~20, where float32 rounding of a merge alone moves logits by ~1e-4 (measured: rsLoRA
    /// on every linear layer 1.4e-4, PiSSA 1.3e-5).
    /// </summary>
    protected override double Diff(Tensor a, Tensor b) => Fixtures.MaxAbsDiff(a, b) / Math.Max(1.0, a.abs().max().item<float>());
    protected override bool GradientCheckInEvalMode => false;

    protected override CausalLM SaveAndLoadFull(CausalLM model, string dir)
    {
        HfModel.Save(model, dir);
        return HfModel.Load(dir);
    }

    protected override (IReadOnlyList<int[]> Cached, IReadOnlyList<int[]> Uncached) GenerateBoth(PeftModel peft)
    {
        int[][] prompts = [[5, 9, 11, 4], [7, 3]];  // different lengths: exercises left padding
        var cfg = new SamplingConfig(MaxNewTokens: 6);
        return (TextGenerator.Generate(peft.Model, prompts, cfg, [], 0, useCache: true), TextGenerator.Generate(peft.Model, prompts, cfg, [], 0, useCache: false));
    }
}
