using PeftLab.Data.Batching;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using PeftLab.Tests.Peft;
using PeftLab.Tests.T5;
using PeftLab.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Models;

/// <summary>
/// Activation checkpointing and the chunked LM head + loss change memory, never the numbers. Runs alone: dropout
/// draws from the process-wide generator, which tests on other threads would advance between the plain and the
/// checkpointed run (a fresh-clone CI run failed that way).
/// </summary>
[Collection(GlobalRngCollection.Name)]
public sealed class MemorySavingTests
{
    private static Dictionary<string, Tensor> Gradients(nn.Module model, Func<Tensor> loss, out float value)
    {
        foreach (var p in model.parameters()) p.grad = null;
        var l = loss();
        l.backward();
        value = l.item<float>();
        return model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
    }

    private static void AssertSameGradients(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, double tol)
    {
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, g) in expected)
        {
            double diff = Fixtures.MaxAbsDiff(g, actual[name]);
            Assert.True(diff < tol, $"{name}: max |Δgrad| = {diff:g3} (tolerance {tol:g3})");
        }
    }

    public static IEnumerable<object[]> CheckpointCases() =>
        from family in TinyModels.ByName.Keys
        from every in new[] { 1, 2 }
        from lora in new[] { false, true }
        select new object[] { family, every, lora };

    [Theory]
    [MemberData(nameof(CheckpointCases))]
    public void CheckpointedGradientsEqualPlainGradients(string family, int every, bool lora)
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.ByName[family] with { NumLayers = 3 };
        var model = TinyModels.Create(config);
        // LoRA on every linear layer with dropout: frozen embeddings (the first block's input needs no gradient) and
        // random masks that the recompute must draw again
        if (lora) model = PeftModel.Apply(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0.3, Init = LoraInit.Gaussian, Targets = new TargetSelector { AllLinear = true } }, seed: 3).Model;
        var ids = TinyModels.Tokens(2, 11, config.VocabSize);
        model.train();
        Tensor Loss() => TinyModels.LmLoss(model.Forward(ids), ids);

        model.CheckpointEvery = 0;
        manual_seed(5);
        var plain = Gradients(model, Loss, out float plainLoss);
        model.CheckpointEvery = every;
        manual_seed(5);
        var checkpointed = Gradients(model, Loss, out float checkpointedLoss);

        Assert.Equal(plainLoss, checkpointedLoss);
        AssertSameGradients(plain, checkpointed, 1e-6);
        if (lora) Assert.All(plain.Keys, k => Assert.Contains("lora_", k));
    }

    public static IEnumerable<object[]> EveryMethod() =>
        from method in PeftBatteryTests.Cases.Keys from family in TinyModels.ByName.Keys select new object[] { method, family };

    [Theory]
    [MemberData(nameof(EveryMethod))]
    public void CheckpointedGradientsEqualPlainGradientsForEveryMethod(string method, string family)
    {
        using var scope = NewDisposeScope();
        var model = PeftModel.Apply(TinyModels.Create(TinyModels.ByName[family]), PeftBatteryTests.Cases[method].Config, seed: 3).Model;
        var ids = TinyModels.Tokens(2, 9, TinyModels.ByName[family].VocabSize);
        model.train();
        Tensor Loss() => TinyModels.LmLoss(model.Forward(ids), ids);
        // the same dropout draws in both runs (rank dropout of LoHa / LoKr draws from the process-wide generator)
        manual_seed(5);
        var plain = Gradients(model, Loss, out _);
        model.CheckpointEvery = 1;
        manual_seed(5);
        AssertSameGradients(plain, Gradients(model, Loss, out _), 1e-6);
    }

    public static IEnumerable<object[]> EveryT5Method() =>
        from method in T5PeftBatteryTests.Cases.Keys from family in T5TinyModels.ByName.Keys select new object[] { method, family };

    [Theory]
    [MemberData(nameof(EveryT5Method))]
    public void CheckpointedT5GradientsEqualPlainGradients(string method, string family)
    {
        // T5 blocks read the position bias (trainable under full finetuning) and, in the decoder, the encoder output:
        // both must get their gradients through the recompute; dropout (rate 0.1) must draw the same masks
        using var scope = NewDisposeScope();
        var config = T5TinyModels.ByName[family];
        var model = PeftModel.Apply(T5TinyModels.Create(config), T5PeftBatteryTests.Cases[method].Config, seed: 3).Seq2Seq;
        var input = TinyModels.Tokens(2, 9, config.VocabSize);
        var mask = ones(2, 9, dtype: ScalarType.Int64);
        mask[1].narrow(0, 6, 3).fill_(0);
        var decoder = T5TinyModels.DecoderInput(2, 7, config);
        model.train();
        Tensor Loss() => TinyModels.LmLoss(model.Forward(input, decoder, mask), decoder);
        manual_seed(9);
        var plain = Gradients(model, Loss, out float plainLoss);
        model.CheckpointEvery = 1;
        manual_seed(9);
        var checkpointed = Gradients(model, Loss, out float checkpointedLoss);
        Assert.Equal(plainLoss, checkpointedLoss);
        AssertSameGradients(plain, checkpointed, 1e-6);
    }

    [Fact]
    public void CheckpointingIsOffOutsideTrainingAndLeavesTensorCountFlat()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        model.CheckpointEvery = 1;
        var ids = TinyModels.Tokens(2, 9, TinyModels.Llama.VocabSize).DetachFromDisposeScope();
        void Step()
        {
            using var inner = NewDisposeScope();
            model.train();
            TinyModels.LmLoss(model.Forward(ids), ids).backward();
            foreach (var p in model.parameters()) p.grad = null;
        }
        for (int i = 0; i < 2; i++) Step();
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        for (int i = 0; i < 10; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);

        model.eval();
        using var noGrad = no_grad();
        var expected = model.Forward(ids);
        model.CheckpointEvery = 0;
        Assert.Equal(0, Fixtures.MaxAbsDiff(expected, model.Forward(ids)));
    }

    public static IEnumerable<object[]> ChunkCases() =>
        from dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 }
        from chunk in new[] { 1, 7, 64 }
        from needHidden in new[] { true, false }
        select new object[] { dtype, chunk, needHidden };

    [Theory]
    [MemberData(nameof(ChunkCases))]
    public void ChunkedLossAndGradientsEqualTheWholeLogitsPath(ScalarType dtype, int chunk, bool needHidden)
    {
        using var scope = NewDisposeScope();
        const int n = 37, d = 24, vocab = 301;
        var gen = new Generator(11, CPU);
        var h0 = randn([n, d], generator: gen).mul(2).to_type(dtype);
        var w0 = randn([vocab, d], generator: gen).to_type(dtype);
        var targets = randint(0, vocab, [n], generator: gen, dtype: ScalarType.Int64);
        targets[3] = ChunkedCrossEntropy.IgnoreIndex;                             // prompt and padding positions
        targets[20] = ChunkedCrossEntropy.IgnoreIndex;
        targets[36] = ChunkedCrossEntropy.IgnoreIndex;

        (Tensor Loss, Tensor? GradH, Tensor GradW) Run(Func<Tensor, Tensor, Tensor> loss)
        {
            var h = h0.detach().clone().requires_grad_(needHidden);
            var w = w0.detach().clone().requires_grad_(true);
            var l = loss(h, w);
            l.backward();
            return (l.detach(), h.grad, w.grad!);
        }
        var whole = Run((h, w) => nn.functional.cross_entropy(nn.functional.linear(h, w).to_type(ScalarType.Float32), targets,
            ignore_index: ChunkedCrossEntropy.IgnoreIndex, reduction: nn.Reduction.Sum));
        var chunked = Run((h, w) => ChunkedCrossEntropy.Sum(h, w, targets, chunk));

        Assert.Equal(ScalarType.Float32, chunked.Loss.dtype);
        double Rel(Tensor a, Tensor b) => Fixtures.MaxAbsDiff(a.to_type(ScalarType.Float32), b.to_type(ScalarType.Float32)) / Math.Max(1e-6, a.to_type(ScalarType.Float32).abs().max().item<float>());
        double tol = dtype == ScalarType.Float32 ? 1e-5 : 1e-2;
        Assert.True(Rel(whole.Loss, chunked.Loss) < tol, $"loss {whole.Loss.item<float>()} vs {chunked.Loss.item<float>()}");
        Assert.True(Rel(whole.GradW, chunked.GradW) < tol, $"weight gradient off by {Rel(whole.GradW, chunked.GradW):g3}");
        Assert.Equal(dtype, chunked.GradW.dtype);
        if (needHidden)
        {
            Assert.True(Rel(whole.GradH!, chunked.GradH!) < tol, $"hidden gradient off by {Rel(whole.GradH!, chunked.GradH!):g3}");
            Assert.Equal(0f, chunked.GradH![3].abs().max().to_type(ScalarType.Float32).item<float>());   // ignored rows get none
        }
        else Assert.Null(chunked.GradH);
    }

    public static IEnumerable<object[]> BatchLossCases() =>
        from family in TinyModels.ByName.Keys
        from dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 }
        from lora in new[] { false, true }
        select new object[] { family, dtype, lora };

    [Theory]
    [MemberData(nameof(BatchLossCases))]
    public void TrainingLossIsTheSameChunkedOrWhole(string family, ScalarType dtype, bool lora)
    {
        // the trainer's path: a packed row (two examples, segment-masked) and a right-padded row, prompt positions ignored
        using var scope = NewDisposeScope();
        var model = LossModel(family, dtype, lora);
        const long I = TokenBatch.IgnoreIndex;
        var batch = new TokenBatch(2, 8,
            InputIds: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0, 0, 0],
            Labels: [I, I, 7, 8, I, 10, 11, 12, I, 14, 15, 16, 17, I, I, I],
            PositionIds: [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 0, 0],
            SegmentIds: [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, -1, -1, -1],
            AttentionMask: [true, true, true, true, true, true, true, true, true, true, true, true, true, false, false, false])
        { RowExamples = [[0, 1], [2]] };
        var lm = new DecoderOnlyModel(model);
        model.train();
        Dictionary<string, Tensor> Run(ChunkedLoss mode, out float loss)
        {
            lm.Memory = new MemorySettings(ChunkedLoss: mode);
            var grads = Gradients(model, () => lm.BatchLoss(batch, out _), out loss);
            return grads;
        }
        var whole = Run(ChunkedLoss.Never, out float wholeLoss);
        var chunked = Run(ChunkedLoss.Always, out float chunkedLoss);
        AssertSameLoss(whole, wholeLoss, chunked, chunkedLoss, dtype);
    }

    /// <summary>A tiny model of a family for the loss tests, with LoRA on every linear layer when <paramref name="lora"/>.</summary>
    private static CausalLM LossModel(string family, ScalarType dtype, bool lora)
    {
        var model = TinyModels.Create(TinyModels.ByName[family], dtype: dtype);
        return lora ? PeftModel.Apply(model, new LoraConfig { R = 4, Alpha = 8, Init = LoraInit.Gaussian, Targets = new TargetSelector { AllLinear = true } }, seed: 3).Model : model;
    }

    /// <summary>Equal losses and gradients (relative to each gradient's largest entry), to float32 or bfloat16 precision.</summary>
    private static void AssertSameLoss(Dictionary<string, Tensor> expected, float expectedLoss, Dictionary<string, Tensor> actual, float actualLoss, ScalarType dtype)
    {
        double tol = dtype == ScalarType.Float32 ? 1e-5 : 1e-2;
        Assert.True(Math.Abs(expectedLoss - actualLoss) < tol * Math.Abs(expectedLoss), $"loss {expectedLoss} vs {actualLoss}");
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, g) in expected)
        {
            double scale = Math.Max(1e-6, g.to_type(ScalarType.Float32).abs().max().item<float>());
            double rel = Fixtures.MaxAbsDiff(g.to_type(ScalarType.Float32), actual[name].to_type(ScalarType.Float32)) / scale;
            Assert.True(rel < tol, $"{name}: gradient off by {rel:g3} of its largest entry");
        }
    }

    [Theory]
    [MemberData(nameof(BatchLossCases))]
    public void OnlyTargetPositionsReachTheHeadAndTheLossIsThatOfAllPositions(string family, ScalarType dtype, bool lora)
    {
        // an instruction batch: long prompts (ignored labels) before short answers, right padding
        using var scope = NewDisposeScope();
        var model = LossModel(family, dtype, lora);
        const long I = TokenBatch.IgnoreIndex;
        var batch = new TokenBatch(2, 8,
            InputIds: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0, 0, 0],
            Labels: [I, I, I, I, I, I, 11, 12, I, I, I, I, 16, I, I, I],
            PositionIds: [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 0, 0, 0],
            SegmentIds: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1],
            AttentionMask: [true, true, true, true, true, true, true, true, true, true, true, true, true, false, false, false])
        { RowExamples = [[0], [1]] };
        Assert.Equal([5L, 6, 11], DecoderOnlyModel.TargetRows(batch)!);   // row 0 predicts 11, 12 from columns 5, 6; row 1 predicts 16 from column 3
        var lm = new DecoderOnlyModel(model);
        model.train();
        var selected = Gradients(model, () => lm.BatchLoss(batch, out _), out float selectedLoss);
        var all = Gradients(model, () =>
        {
            // every position through the head, the prompt positions ignored by the loss
            var hidden = model.Hidden(tensor(batch.InputIds, [2, 8])).narrow(1, 0, 7);
            var targets = tensor(batch.Labels, [2, 8]).narrow(1, 1, 7).reshape(-1);
            return DecoderOnlyModel.LossSum(model, hidden.reshape(-1, hidden.shape[^1]), targets, ChunkedLoss.Never);
        }, out float allLoss);
        AssertSameLoss(all, allLoss, selected, selectedLoss, dtype);
    }

    [Fact]
    public void MostlyTargetRowsTakeTheWholeHead()
    {
        const long I = TokenBatch.IgnoreIndex;
        // 4 of 7 positions predict a target: packed pretraining text is like this, and keeps the path the shipped bases were built with
        var batch = new TokenBatch(1, 8, [1, 2, 3, 4, 5, 6, 7, 8], [I, I, I, 4, 5, 6, 7, I], [0, 1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 0, 0],
            [true, true, true, true, true, true, true, true]);
        Assert.Null(DecoderOnlyModel.TargetRows(batch));
        Assert.Equal([2L, 3, 4], DecoderOnlyModel.TargetRows(batch with { Labels = [I, I, I, 4, 5, 6, I, I] })!);   // 3 of 7: selected
    }

    [Theory]
    [InlineData(ChunkedLoss.Auto, 32768, 512, false)]     // small vocabularies: the whole logits are one chunk anyway
    [InlineData(ChunkedLoss.Auto, 1024, 151936, true)]     // Qwen2.5 at 1k tokens: 622 MB of float32 logits
    [InlineData(ChunkedLoss.Auto, 110, 151936, false)]
    [InlineData(ChunkedLoss.Auto, 111, 151936, true)]
    [InlineData(ChunkedLoss.Always, 4, 64, true)]
    [InlineData(ChunkedLoss.Never, 1 << 20, 151936, false)]
    public void AutoChunksWhenTheLogitsExceedOneChunk(ChunkedLoss mode, long tokens, long vocab, bool expected)
    {
        Assert.Equal(110, ChunkedCrossEntropy.ChunkTokens(151936));   // 64 MiB / (4 B × 151,936)
        Assert.Equal(expected, DecoderOnlyModel.UseChunks(mode, tokens, vocab));
    }

    [Theory]
    [InlineData("train.activation_checkpointing=true", 1, "true")]
    [InlineData("train.activation_checkpointing=false", 0, "false")]
    [InlineData("train.activation_checkpointing=0", 0, "false")]
    [InlineData("train.activation_checkpointing=3", 3, "3")]
    public void ActivationCheckpointingReadsAndWritesBackAsGiven(string setting, int every, string written)
    {
        var config = TrainConfigLoader.Load(null, ["model.preset=nano", "data.path=" + TestPaths.SuperNi, setting]);
        Assert.Equal(every, config.Train.ActivationCheckpointing.Every);
        var yaml = TrainConfigLoader.ToYaml(config);
        Assert.Contains($"activation_checkpointing: {written}", yaml);
        Assert.Equal(config.Train, TrainConfigLoader.Bind(PeftLab.Configuration.ConfigNode.Parse(yaml)).Train);
        Assert.Equal(new MemorySettings(every, ChunkedLoss.Auto), MemorySettings.From(config.Train));
    }

    [Theory]
    [InlineData("train.activation_checkpointing=yes", "train.activation_checkpointing: expected false, true (every block) or a block interval k (every k-th block; 0 = off), got 'yes'")]
    [InlineData("train.activation_checkpointing=-2", "train.activation_checkpointing: expected false, true (every block) or a block interval k (every k-th block; 0 = off), got '-2'")]
    [InlineData("train.activation_checkpointing=[1]", "train.activation_checkpointing: expected false, true (every block) or a block interval k (every k-th block; 0 = off), got a list")]
    [InlineData("train.chunked_loss=sometimes", "train.chunked_loss")]
    public void BadMemorySettingsNameTheKey(string setting, string expected)
    {
        var e = Assert.Throws<PeftLab.Configuration.ConfigException>(() => TrainConfigLoader.Load(null, ["model.preset=nano", "data.path=" + TestPaths.SuperNi, setting]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ChunkedLossScalesWithTheIncomingGradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(2, CPU);
        var h = randn([9, 8], generator: gen).requires_grad_(true);
        var w = randn([13, 8], generator: gen);
        var y = randint(0, 13, [9], generator: gen, dtype: ScalarType.Int64);
        ChunkedCrossEntropy.Sum(h, w, y, 4).div(9).mul(3).backward();
        var expected = h.grad!.detach().clone();
        h.grad = null;
        nn.functional.cross_entropy(nn.functional.linear(h, w), y).mul(3).backward();
        Assert.True(Fixtures.MaxAbsDiff(expected, h.grad!) < 1e-6);
    }

    [Fact]
    public void ChunkedLossNamesBadShapes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => ChunkedCrossEntropy.Sum(zeros(4, 8), zeros(10, 6), zeros(4, dtype: ScalarType.Int64), 2));
        Assert.Contains("hidden [N, d] and weight [V, d] expected, got [4, 8] and [10, 6]", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChunkedCrossEntropy.Sum(zeros(4, 8), zeros(10, 8), zeros(5, dtype: ScalarType.Int64), 2));
        Assert.Contains("targets [N = 4] expected, got [5]", e.Message);
    }
}

/// <summary>Tests whose result depends on the process-wide random generator: run with nothing beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection
{
    public const string Name = "global random generator";
}
