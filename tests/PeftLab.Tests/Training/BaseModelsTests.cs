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
        Assert.Equal(new PretrainRecipe(), BaseModels.RecipeOf("mini"));
        Assert.NotEqual(BaseModels.FolderName("mini", 500, 0), BaseModels.FolderName("mini-bytes", 500, 0));
        Assert.Equal(260, PeftLab.Models.Presets.Get("mini-bytes").VocabSize);   // 4 special tokens and 256 bytes: no merges hide letters
    }
}
