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
using PeftLab.Tests.Peft;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>The PEFT battery (<see cref="PeftBattery{TSelf, TModel, TBatch}"/>) for every method × T5 flavour.</summary>
public sealed class T5PeftBatteryTests : PeftBattery<T5PeftBatteryTests, T5ForConditionalGeneration, T5PeftBatteryTests.Batch>, IBatteryRows
{
    /// <summary>Name → (config, output unchanged at init by construction).</summary>
    public static readonly IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Cases = new Dictionary<string, (PeftConfig, bool)>
    {
        ["full"] = (new FullConfig(), true),
        ["lora"] = (new LoraConfig { R = 4, Alpha = 8 }, true),
        ["lora-all-rslora"] = (new LoraConfig { R = 4, Alpha = 8, UseRslora = true, Targets = new TargetSelector { AllLinear = true } }, true),
        ["lora-gaussian-layer1"] = (new LoraConfig { R = 2, Init = LoraInit.Gaussian, Targets = new TargetSelector { Names = ["q", "o"], Layers = [1] } }, true),
        ["dora"] = (new LoraConfig { R = 4, Alpha = 8, UseDora = true, Targets = new TargetSelector { Names = ["q", "v", "wo"] } }, true),
        ["pissa"] = (new LoraConfig { R = 4, Alpha = 4, Init = LoraInit.Pissa, Targets = new TargetSelector { Regex = @".*\.(q|wi|wi_0)" } }, true),
        ["olora"] = (new LoraConfig { R = 2, Alpha = 8, Init = LoraInit.Olora, Targets = new TargetSelector { Regex = @".*\.(q|wi|wi_0)" } }, true),
        ["adalora"] = (new AdaLoraConfig { TargetR = 2, InitR = 3 }, true),
        ["adalora-dropout-targets"] = (new AdaLoraConfig { TargetR = 2, InitR = 4, Alpha = 4, Dropout = 0.2, Targets = new TargetSelector { Names = ["q", "wo"] } }, true),
        ["lora-trainable-tokens"] = (new LoraConfig { R = 2, Alpha = 4, TrainableTokenIndices = [.. Enumerable.Range(0, 48).Where(i => i % 3 != 1)], Targets = new TargetSelector { Names = ["q"] } }, true),
        ["adapter"] = (new AdapterConfig { Size = 8 }, true),
        ["adapter-cross"] = (new AdapterConfig { Size = 8, AfterCrossAttention = true }, true),
        ["adapter-parallel-gelu"] = (new AdapterConfig { Size = 8, Placement = AdapterPlacement.Parallel, Activation = AdapterActivation.Gelu, AfterCrossAttention = true }, true),
        ["prefix"] = (new PrefixTuningConfig { NumVirtualTokens = 3 }, false),
        ["prefix-projection"] = (new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 16 }, false),
        ["prompt"] = (new PromptTuningConfig { NumVirtualTokens = 4 }, false),
        ["prompt-both-stacks"] = (new PromptTuningConfig { NumVirtualTokens = 2, NumTransformerSubmodules = 2 }, false),
        ["ia3"] = (new IA3Config(), true),
        ["bitfit"] = (new BitFitConfig(), true),
        ["bitfit-norms"] = (new BitFitConfig { IncludeNorms = true }, true),
        ["lora-patterns"] = (new LoraConfig
        {
            R = 4, Alpha = 8, RankPattern = new Dictionary<string, int> { ["wo"] = 2 }, AlphaPattern = new Dictionary<string, double> { ["q"] = 3 },
            Targets = new TargetSelector { Names = ["q", "wo", "o"], Exclude = ["o"] },
        }, true),
        ["ln_tuning"] = (new LnTuningConfig(), true),
        ["loha"] = (new LoHaConfig { R = 4, Alpha = 8 }, true),
        ["loha-dropout-patterns"] = (new LoHaConfig
        {
            R = 4, Alpha = 4, RankDropout = 0.3, RankPattern = new Dictionary<string, int> { ["wo"] = 2 },
            Targets = new TargetSelector { Names = ["q", "wo"] },
        }, true),
        ["lokr"] = (new LoKrConfig { R = 2, Alpha = 4 }, true),
        ["lokr-decompose-both"] = (new LoKrConfig { R = 1, Alpha = 2, DecomposeBoth = true, RankDropout = 0.3, RankDropoutScale = true, Targets = new TargetSelector { Names = ["q", "wo"] } }, true),
        ["lokr-factor"] = (new LoKrConfig { R = 8, Alpha = 8, DecomposeFactor = 4, Targets = new TargetSelector { AllLinear = true } }, true),
        ["vera"] = (new VeraConfig { R = 16 }, true),
        ["vera-dropout"] = (new VeraConfig { R = 8, VeraDropout = 0.2, DInitial = 0.5, Targets = new TargetSelector { Names = ["q", "k", "wo"] } }, true),
        ["vera-layer1-no-projection"] = (new VeraConfig { R = 8, SaveProjection = false, ProjectionPrngKey = 5, Targets = new TargetSelector { Names = ["q", "o"], Layers = [1], LayersPattern = ["block"] } }, true),
        ["vera-regex"] = (new VeraConfig { R = 32, Targets = new TargetSelector { Regex = @".*(EncDecAttention\.v|\.wo|\.wi|\.wi_0)" } }, true),
        ["oft"] = (new OftConfig { OftBlockSize = 8 }, true),
        ["oft-exact-coft-dropout"] = (new OftConfig { R = 4, OftBlockSize = 0, UseCayleyNeumann = false, Coft = true, Eps = 1e-2, ModuleDropout = 0.5, Targets = new TargetSelector { Names = ["q", "wo"] } }, true),
        ["oft-share-layer0"] = (new OftConfig { OftBlockSize = 16, BlockShare = true, Targets = new TargetSelector { Names = ["q", "v", "wo"], Layers = [0] } }, true),
        ["oft-regex-terms"] = (new OftConfig { OftBlockSize = 4, NumCayleyNeumannTerms = 3, Targets = new TargetSelector { Regex = @".*\.(k|o)" } }, true),
    };

    public static IEnumerable<object[]> Rows() =>
        from m in Cases.Keys from f in T5TinyModels.ByName.Keys select new object[] { m, f };

    /// <summary>Encoder input with its mask, and the decoder input.</summary>
    public sealed record Batch(Tensor Input, Tensor Mask, Tensor Decoder);

    protected override IReadOnlyDictionary<string, (PeftConfig Config, bool UnchangedAtInit)> Table => Cases;
    protected override T5ForConditionalGeneration CreateBase(string family) => T5TinyModels.Create(T5TinyModels.ByName[family]);
    protected override T5ForConditionalGeneration Inner(PeftModel peft) => peft.Seq2Seq;

    protected override Batch MakeBatch(string family)
    {
        var cfg = T5TinyModels.ByName[family];
        var mask = ones(2, 9, dtype: ScalarType.Int64);
        mask[1].narrow(0, 6, 3).fill_(0);   // row 1 is right-padded: exercises the encoder mask
        return new Batch(TinyModels.Tokens(2, 9, cfg.VocabSize), mask, T5TinyModels.DecoderInput(2, 7, cfg));
    }

    protected override Tensor Forward(T5ForConditionalGeneration model, Batch x) => model.Forward(x.Input, x.Decoder, x.Mask);
    protected override Tensor Loss(T5ForConditionalGeneration model, Batch x) => TinyModels.LmLoss(Forward(model, x), x.Decoder);
    protected override double Diff(Tensor a, Tensor b) => T5TinyModels.RelDiff(a, b);   // relative to the logits' magnitude
    protected override bool GradientCheckInEvalMode => true;                            // dropout off, so every path is live

    protected override T5ForConditionalGeneration SaveAndLoadFull(T5ForConditionalGeneration model, string dir)
    {
        HfT5.Save(model, dir);
        return HfT5.Load(dir);
    }

    protected override void CheckAdapterFolder(string dir) =>
        Assert.Contains("\"task_type\": \"SEQ_2_SEQ_LM\"", File.ReadAllText(Path.Combine(dir, PeftModel.ConfigFile)));

    protected override (IReadOnlyList<int[]> Cached, IReadOnlyList<int[]> Uncached) GenerateBoth(PeftModel peft)
    {
        int[][] inputs = [[5, 9, 11, 4, 1], [7, 3, 1]];  // different lengths: exercises right padding and the encoder mask
        var cfg = new SamplingConfig(MaxNewTokens: 6);
        return (Seq2SeqGenerator.Generate(peft.Seq2Seq, inputs, cfg, eosIds: [], useCache: true),
            Seq2SeqGenerator.Generate(peft.Seq2Seq, inputs, cfg, eosIds: [], useCache: false));
    }
}
