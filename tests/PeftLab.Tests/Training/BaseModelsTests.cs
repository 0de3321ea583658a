using PeftLab.Training;

namespace PeftLab.Tests.Training;

public sealed class BaseModelsTests
{
    [Fact]
    public void BaseBuildFollowsTheRecipeAndTwoBuildsAreIdenticalBitForBit()
    {
        var dir = TestPaths.NewTempDir("base-build");
        string Build(string name)
        {
            var output = CliRunner.Ok("base", "build", "nano", "--steps", "3", "--out", Path.Combine(dir, name), "--threads", "1");
            Assert.Contains("held-out corpus loss", output);
            return output.Split('\n').Single(l => l.StartsWith("model.safetensors SHA-256 ", StringComparison.Ordinal))["model.safetensors SHA-256 ".Length..].Trim();
        }
        var a = Build("a");
        Assert.Equal(a, Build("b"));
        Assert.Equal(a, BaseModels.WeightsSha256(Path.Combine(dir, "a")));
        foreach (var f in new[] { "config.json", "tokenizer.json", "pretrain_result.json", "pretrain_metrics.jsonl", "recipe.json" })
            Assert.True(File.Exists(Path.Combine(dir, "a", f)), f);
        Assert.Contains("\"Documents\": 4000", File.ReadAllText(Path.Combine(dir, "a", "recipe.json")));
        var bad = CliRunner.Run("base", "build", "nope", "--out", Path.Combine(dir, "c"));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("unknown preset 'nope'", bad.Stdout + bad.Stderr);
    }

    [Fact]
    public void TheByteLevelPresetHasItsOwnRecipeAndCacheFolder()
    {
        var recipe = BaseModels.RecipeOf("mini-bytes");
        Assert.Equal(512, recipe.MaxLength);
        Assert.Equal(2, recipe.Threads);
        Assert.Equal(new PretrainRecipe(), BaseModels.RecipeOf("nano"));
        Assert.Equal(new PretrainRecipe { Documents = 100000, Threads = 2, Continue = new(Every: 3000, CorpusSeed: 978, Lr: 1e-3) }, BaseModels.RecipeOf("mini"));
        Assert.Equal("mini-pretrained-3000-b078be99c31c", BaseModels.FolderName("mini", 3000, 0));   // the continuation leaves the first stage as it was
        Assert.NotEqual(BaseModels.FolderName("mini", 500, 0), BaseModels.FolderName("mini-bytes", 500, 0));
        Assert.Equal(260, PeftLab.Models.Presets.Get("mini-bytes").VocabSize);   // 4 special tokens and 256 bytes: no merges hide letters
    }

    [Fact]
    public void ALongerMiniBuildContinuesTheShorterOneOnNewDocumentsEachStage()
    {
        var c = BaseModels.RecipeOf("mini").Continue!;
        Assert.Equal(978UL, c.CorpusSeedAt(6000));   // the second stage: the first new corpus
        Assert.Equal(979UL, c.CorpusSeedAt(9000));   // the third: another one
        Assert.Equal(978UL, c.CorpusSeedAt(4500));   // 1500 + 3000: still the second cycle's corpus
        var names = new[] { 3000, 6000, 9000 }.Select(s => BaseModels.FolderName("mini", s, 0)).ToArray();
        Assert.Equal(3, names.Distinct().Count());
        Assert.Null(new PretrainRecipe().Continue);   // other presets: one run from the seed, whatever the steps
    }

    [Fact]
    public void TheQuickstartBaseShipsWithItsRecordedHashAndIsUsedWithoutPretraining()
    {
        var build = Assert.Single(BaseModels.Shipped, b => b.Preset == "mini");
        var dir = BaseModels.ShippedCopy(build.Preset, build.Steps, 0, BaseModels.ShippedRoot);
        Assert.NotNull(dir);
        Assert.Equal(build.WeightsSha256, BaseModels.WeightsSha256(dir));
        // used in place (a build would return its cache folder instead)
        Assert.Equal(dir, BaseModels.EnsurePretrained(build.Preset, build.Steps, 0));
        // its pretraining record: the held-out corpus loss is well below the uniform guess over the vocabulary (ln 2048 = 7.6)
        var heldOut = -RunResult.Read(Path.Combine(dir, BaseModels.PretrainResultFile)).BestScore!.Value;
        Assert.InRange(heldOut, 0.5, 2.0);
        Assert.Contains("\"Documents\": 100000", File.ReadAllText(Path.Combine(dir, "recipe.json")));
        Assert.Null(BaseModels.ShippedCopy(build.Preset, build.Steps, seed: 1, BaseModels.ShippedRoot));   // other seeds are built
        Assert.Null(BaseModels.ShippedCopy(build.Preset, build.Steps + 1, 0, BaseModels.ShippedRoot));
    }

    [Fact]
    public void AShippedBaseWhoseWeightsChangedIsRefusedNamingBothHashes()
    {
        var build = BaseModels.Shipped[0];
        var name = BaseModels.FolderName(build.Preset, build.Steps, 0);
        var root = TestPaths.NewTempDir("shipped");
        var copy = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(BaseModels.ShippedRoot, name))) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        Assert.Equal(copy, BaseModels.ShippedCopy(build.Preset, build.Steps, 0, root));
        var weights = Path.Combine(copy, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x01;   // one bit of the last weight
        File.WriteAllBytes(weights, bytes);
        var e = Assert.Throws<InvalidDataException>(() => BaseModels.ShippedCopy(build.Preset, build.Steps, 0, root));
        Assert.Contains(BaseModels.WeightsSha256(copy), e.Message);
        Assert.Contains(build.WeightsSha256, e.Message);
        Assert.Contains($"peftlab base build {build.Preset} --steps {build.Steps}", e.Message);
        Assert.Null(BaseModels.ShippedCopy(build.Preset, build.Steps, 0, TestPaths.NewTempDir("no-shipped")));   // absent: built by its recipe
    }
}
