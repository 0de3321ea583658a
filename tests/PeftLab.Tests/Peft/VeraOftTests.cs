using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Peft;
using PeftLab.Peft.Oft;
using PeftLab.Peft.Vera;
using PeftLab.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// What the battery and the hand-built files do not pin down for VeRA and OFT: VeRA's projections are PyTorch's own
/// values for the key and shared by every layer; OFT's block layout, rotations, COFT and dropout behave as PEFT's.
/// </summary>
public sealed class VeraOftTests
{
    // ---- VeRA --------------------------------------------------------------------------------------------------

    /// <summary>
    /// PyTorch 1.13.1's (Debian bookworm's python3-torch) vera_A [8, 32] and vera_B [32, 8] from PEFT's
    /// <c>_init_vera_A_vera_B</c> arithmetic: <c>g = torch.Generator(device="cpu").manual_seed(key)</c>, then
    /// <c>torch.empty(shape).uniform_(-b, b, generator=g)</c> with b = √3·√2/√fan_in, A first: the first three entries of
    /// row 0, the last entry, and the float64 sum of each.
    /// </summary>
    [Theory]
    [InlineData(0, new[] { -0.0032418882474303246, 0.23228688538074493, -0.35638898611068726 }, -0.16014491021633148, -4.993385883804876,
        new[] { -0.8583596348762512, 0.39091864228248596, -0.41592055559158325 }, 0.5354300141334534, 7.459204646758735)]
    [InlineData(12345, new[] { 0.4171801805496216, 0.3287489116191864, 0.4262087345123291 }, -0.03967658430337906, -7.088662361376919,
        new[] { 0.7493728399276733, 0.5187740921974182, -0.21456442773342133 }, -0.33791032433509827, 4.7642484228126705)]
    public void TheProjectionsArePyTorchsValuesForTheKey(int key, double[] aFirst, double aLast, double aSum, double[] bFirst, double bLast, double bSum)
    {
        using var scope = NewDisposeScope();
        var p = VeraProjections.Generate(8, 32, 32, key, zeros(1));
        Assert.Equal([8L, 32], p.A.shape);
        Assert.Equal([32L, 8], p.B.shape);
        Assert.Equal(aFirst, p.A[0].narrow(0, 0, 3).data<float>().ToArray().Select(f => (double)f));
        Assert.Equal(bFirst, p.B[0].narrow(0, 0, 3).data<float>().ToArray().Select(f => (double)f));
        Assert.Equal(aLast, (double)p.A[7, 31].item<float>());
        Assert.Equal(bLast, (double)p.B[31, 7].item<float>());
        Assert.Equal(aSum, p.A.to_type(ScalarType.Float64).sum().item<double>(), 12);
        Assert.Equal(bSum, p.B.to_type(ScalarType.Float64).sum().item<double>(), 12);
    }

    [Fact]
    public void EveryLayerSharesOneProjectionPairSizedForTheLargestLayer()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        var config = new VeraConfig { R = 6, Targets = new TargetSelector { Names = ["v_proj", "up_proj", "down_proj"] } };
        PeftModel.Apply(model, config);
        var layers = Injector.Slots(model).Select(s => s.Module).OfType<VeraLinear>().ToArray();
        Assert.Equal(6, layers.Length);
        Assert.All(layers, l => Assert.Equal(layers[0].Projections.A.Handle, l.Projections.A.Handle));
        Assert.Equal([6L, 48], layers[0].Projections.A.shape);   // max in: down_proj's 48
        Assert.Equal([48L, 6], layers[0].Projections.B.shape);   // max out: up_proj's 48
        // the projections are frozen buffers, not parameters: only λ_b [out] and λ_d [r] train
        Assert.Equal(2 * (16 + 6 + 48 + 6 + 32 + 6), Injector.Trainable(model).Sum(p => p.Parameter.numel()));
        Assert.DoesNotContain(model.state_dict().Keys, k => k.Contains("vera_A") || k.Contains("vera_B"));
    }

    [Fact]
    public void WithoutSaveProjectionTheFileHoldsOnlyTheVectorsAndALoadRedrawsTheProjectionsFromTheKey()
    {
        using var scope = NewDisposeScope();
        var config = new VeraConfig { R = 8, SaveProjection = false, ProjectionPrngKey = 77, DInitial = 0.4 };
        var peft = PeftModel.Apply(TinyModels.Create(TinyModels.Llama), config, seed: 2);
        using (no_grad())
            foreach (var p in Injector.Trainable(peft.Model)) p.Parameter.normal_(0, 0.5);
        var ids = TinyModels.Tokens(2, 9, TinyModels.Llama.VocabSize);
        peft.Model.eval();
        var expected = peft.Model.Forward(ids);
        var dir = TestPaths.NewTempDir();
        try
        {
            peft.SaveAdapter(dir);
            using (var f = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFile)))
            {
                Assert.DoesNotContain(f.Names, n => n.Contains("vera_A") || n.Contains("vera_B"));
                Assert.All(f.Names, n => Assert.True(n.EndsWith(".vera_lambda_b", StringComparison.Ordinal) || n.EndsWith(".vera_lambda_d", StringComparison.Ordinal), n));
            }
            var loaded = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            loaded.Model.eval();
            Assert.True(Fixtures.MaxAbsDiff(expected, loaded.Model.Forward(ids)) < 1e-6);
            // another key draws other projections: the key, not the file, decides them
            var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, PeftModel.ConfigFile)))!;
            json["projection_prng_key"] = 78;
            File.WriteAllText(Path.Combine(dir, PeftModel.ConfigFile), json.ToJsonString());
            var other = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            other.Model.eval();
            Assert.True(Fixtures.MaxAbsDiff(expected, other.Model.Forward(ids)) > 1e-3);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ProjectionsInAFileThatSaysSaveProjectionFalseAreAnErrorNamingThem()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Apply(TinyModels.Create(TinyModels.Llama), new VeraConfig { R = 4 });
        var dir = TestPaths.NewTempDir();
        try
        {
            peft.SaveAdapter(dir);
            var path = Path.Combine(dir, PeftModel.ConfigFile);
            var json = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
            json["save_projection"] = false;
            File.WriteAllText(path, json.ToJsonString());
            var e = Assert.ThrowsAny<Exception>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir));
            Assert.Contains($"unexpected in adapter file: '{VeraMethod.ProjectionAKey}'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AnExclusionIsRefusedBecausePeftsVeraHasNoExcludeModules()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<PeftConfigException>(() => PeftModel.Apply(TinyModels.Create(TinyModels.Llama),
            new VeraConfig { Targets = new TargetSelector { AllLinear = true, Exclude = ["o_proj"] } }));
        Assert.Contains("target_modules", e.Message);
        Assert.Contains("exclude_modules", e.Message);
    }

    // ---- both, through the trainer ---------------------------------------------------------------------------

    [Theory]
    [InlineData("vera", "method.r=32", "method.save_projection=false", "method.vera_dropout=0.1", "method.target_modules=all-linear")]
    [InlineData("vera", "method.r=16", "method.bias=vera_only", "model.dtype=bfloat16")]
    [InlineData("oft", "method.oft_block_size=8", "method.coft=true", "method.eps=0.05", "method.module_dropout=0.25")]
    [InlineData("oft", "method.r=3", "method.oft_block_size=0", "method.use_cayley_neumann=false", "method.block_share=true", "model.dtype=bfloat16")]
    public void TheTrainerTrainsAndSavesTheMethodFromItsConfigKeys(string method, params string[] knobs)
    {
        var run = TestPaths.NewTempDir();
        var config = TrainConfigLoader.Load(null, MiniTasks.FastRun(MiniTasks.Write(), run)
            .Concat([$"method.name={method}", "train.max_steps=8", "optim.lr=1e-2", "eval.generate=false"]).Concat(knobs));
        Assert.Equal(method, PeftRegistry.NameOf(config.Method.Kind));
        var result = Trainer.Run(config);
        Assert.Equal("completed", RunStatuses.Name(result.Status));
        var losses = RunFiles.ReadMetrics(Path.Combine(run, "metrics.jsonl")).Where(r => r["type"]!.GetValue<string>() == "step").Select(r => r["loss"]!.GetValue<double>()).ToArray();
        Assert.Equal(8, losses.Length);
        Assert.True(losses.Skip(5).Average() < losses.Take(3).Average(), $"{method}: loss did not fall ({string.Join(", ", losses.Select(l => l.ToString("F3")))})");
        var saved = Directory.EnumerateFiles(run, PeftModel.ConfigFile, SearchOption.AllDirectories).ToArray();
        Assert.NotEmpty(saved);
        Assert.All(saved, f => Assert.Equal(PeftRegistry.Get(config.Method.Kind).PeftType, (string?)JsonNode.Parse(File.ReadAllText(f))!["peft_type"]));
    }

    public static TheoryData<string> LeakCases => new(LeakConfigs.Keys.ToArray());

    private static readonly Dictionary<string, PeftConfig> LeakConfigs = new()
    {
        ["vera"] = new VeraConfig { R = 8, VeraDropout = 0.1, Bias = VeraBias.All },
        ["oft-coft-dropout"] = new OftConfig { OftBlockSize = 8, Coft = true, Eps = 1e-2, ModuleDropout = 0.5 },
        ["oft-exact-share"] = new OftConfig { OftBlockSize = 4, UseCayleyNeumann = false, BlockShare = true },
    };

    /// <summary>As the trainer runs them (forward/backward in a scope, optimiser outside): no tensor outlives its step.</summary>
    [Theory]
    [MemberData(nameof(LeakCases))]
    public void LiveTensorCountStaysFlatOverTrainingAndGeneration(string name)
    {
        var model = TinyModels.Create(TinyModels.Llama);
        PeftModel.Apply(model, LeakConfigs[name], seed: 1);
        var ids = TinyModels.Tokens(2, 12, TinyModels.Llama.VocabSize).DetachFromDisposeScope();
        using var opt = new AdamW(Injector.Trainable(model).Select(x => (x.Name, x.Parameter)), _ => true, 0.9, 0.999, 1e-8, 0.01);
        void Step()
        {
            using (NewDisposeScope())
            {
                model.train();
                TinyModels.LmLoss(model.Forward(ids), ids).backward();
            }
            opt.Step(1e-2);
            opt.ZeroGrad();
            using var scope = NewDisposeScope();
            using (no_grad()) model.eval();
            _ = model.Forward(ids);
            PeftLab.Models.TextGenerator.Generate(model, [[4, 5, 6], [7]], new PeftLab.Models.SamplingConfig(MaxNewTokens: 4), [], 0);
        }
        for (int i = 0; i < 3; i++) Step();
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        for (int i = 0; i < 10; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
    }

    // ---- OFT ---------------------------------------------------------------------------------------------------

    [Theory]
    // a block size that divides in_features is kept; otherwise the nearest divisor (ties to the smaller), as PEFT's
    // adjust_oft_parameters computes (values from running it)
    [InlineData(64, 0, 16, 4, 16)]
    [InlineData(172, 0, 32, 4, 43)]
    [InlineData(48, 0, 32, 2, 24)]
    [InlineData(4864, 0, 48, 128, 38)]
    [InlineData(896, 0, 96, 8, 112)]
    [InlineData(64, 0, 100, 1, 64)]
    [InlineData(30, 0, 4, 10, 3)]
    // r given instead: the number of blocks is adjusted the same way
    [InlineData(100, 7, 0, 5, 20)]
    [InlineData(1000, 33, 0, 40, 25)]
    [InlineData(32, 4, 0, 4, 8)]
    public void TheBlockLayoutIsPeftsAdjustedOne(long inFeatures, int r, int blockSize, int blocks, int size)
    {
        Assert.Equal((blocks, size), OftMethod.BlockLayout(inFeatures, r, blockSize));
        Assert.Equal(inFeatures, (long)blocks * size);
    }

    [Fact]
    public void SettingBothOrNeitherOfRAndBlockSizeIsAnErrorNamingThem()
    {
        using var scope = NewDisposeScope();
        foreach (var config in new[] { new OftConfig { R = 4 }, new OftConfig { OftBlockSize = 0 } })
        {
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.Apply(TinyModels.Create(TinyModels.Llama), config));
            Assert.Contains("oft_block_size", e.Message);
        }
    }

    private static OftRotation Rotation(OftConfig config, int blocks, int size, double scale)
    {
        var rotation = new OftRotation(blocks, size, config, zeros(1), new Generator(1, CPU));
        using (no_grad()) rotation.parameters().Single().copy_(scale * randn(rotation.parameters().Single().shape, generator: new Generator(4, CPU)));
        return rotation;
    }

    [Fact]
    public void TheExactCayleyRotationIsOrthogonalAndTheSeriesApproachesItsTranspose()
    {
        using var scope = NewDisposeScope();
        var exact = Rotation(new OftConfig { UseCayleyNeumann = false }, 3, 6, 0.05).Rotations();
        var identity = eye(6).expand(3, 6, 6);
        Assert.True(Fixtures.MaxAbsDiff(exact.bmm(exact.transpose(1, 2)), identity) < 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(exact, identity) > 1e-2);   // a real rotation, not I
        // PEFT's Neumann branch approximates (I + Q)(I − Q)⁻¹, the exact branch's transpose; more terms, closer
        double Gap(int terms) => Fixtures.MaxAbsDiff(Rotation(new OftConfig { NumCayleyNeumannTerms = terms }, 3, 6, 0.05).Rotations(), exact.transpose(1, 2));
        Assert.True(Gap(8) < Gap(5) && Gap(5) < Gap(2), $"gaps {Gap(2)}, {Gap(5)}, {Gap(8)}");
        Assert.True(Gap(8) < 1e-4);
    }

    [Fact]
    public void CoftPullsEachBlockIntoItsEpsBallInPlace()
    {
        using var scope = NewDisposeScope();
        var rotation = Rotation(new OftConfig { Coft = true, Eps = 0.02 }, 4, 5, 1.0);
        var weight = rotation.parameters().Single();
        var small = weight.detach().clone();
        using (no_grad()) small[1].mul_(1e-4);   // block 1 starts inside the ball and stays as it is
        using (no_grad()) weight.copy_(small);
        rotation.Rotations();
        // ‖Q‖_F = √2 ‖upper triangle‖: at most eps/√blocks after the projection
        var norms = weight.detach().norm(1) * Math.Sqrt(2);
        for (int i = 0; i < 4; i++)
            if (i == 1) Assert.True(Fixtures.MaxAbsDiff(weight.detach()[1], small[1]) == 0);
            else Assert.Equal(0.02 / 2, norms[i].item<float>(), 6);
    }

    [Fact]
    public void ModuleDropoutSetsThatShareOfBlocksToTheIdentityWhileTraining()
    {
        using var scope = NewDisposeScope();
        var dropout = new OftMultiplicativeDropout(0.5);
        var rotations = Rotation(new OftConfig(), 8, 4, 0.3).Rotations().detach();
        dropout.train();
        var dropped = dropout.forward(rotations);
        int identities = Enumerable.Range(0, 8).Count(i => Fixtures.MaxAbsDiff(dropped[i], eye(4)) == 0);
        int kept = Enumerable.Range(0, 8).Count(i => Fixtures.MaxAbsDiff(dropped[i], rotations[i]) == 0);
        Assert.Equal((4, 4), (identities, kept));
        dropout.eval();
        Assert.True(Fixtures.MaxAbsDiff(dropout.forward(rotations), rotations) == 0);
    }

    private static string SavedOft(OftConfig config)
    {
        var dir = TestPaths.NewTempDir();
        PeftModel.Apply(TinyModels.Create(TinyModels.Llama), config).SaveAdapter(dir);
        return dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, PeftModel.ConfigFile);
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    [Theory]
    [InlineData(null, "peft_version")]          // PEFT 0.15–0.17 wrote no peft_version and ended the series with 2Q^(n−1)
    [InlineData("0.17.1", "peft_version")]
    public void ACayleyNeumannFileOfAnOlderSeriesIsAnErrorNamingTheVersion(string? version, string named)
    {
        using var scope = NewDisposeScope();
        var dir = SavedOft(new OftConfig { OftBlockSize = 8 });
        try
        {
            EditConfig(dir, j => { if (version is null) j.Remove("peft_version"); else j["peft_version"] = version; });
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir));
            Assert.Contains(named, e.Message);
            Assert.Contains("use_cayley_neumann", e.Message);
            // the exact Cayley transform did not change: such a file loads without a version
            EditConfig(dir, j => j["use_cayley_neumann"] = false);
            PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            // newer PEFT versions, dev and commit suffixes included, are the current series
            foreach (var newer in new[] { "0.18.0", "0.18.1.dev0@abc123", "0.20.1", "1.0.0" })
            {
                EditConfig(dir, j => { j["use_cayley_neumann"] = true; j["peft_version"] = newer; });
                PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AnOftFileOfPeft013OrEarlierIsAnErrorNamingOftBlockSize()
    {
        using var scope = NewDisposeScope();
        var dir = SavedOft(new OftConfig { OftBlockSize = 8 });
        try
        {
            EditConfig(dir, j => j.Remove("oft_block_size"));
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir));
            Assert.Contains("'oft_block_size'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
