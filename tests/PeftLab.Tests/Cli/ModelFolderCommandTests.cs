using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using PeftLab.Tokenization;
using static TorchSharp.torch;

namespace PeftLab.Tests.Cli;

public sealed class ModelFolderCommandTests
{
    [Fact]
    public void InitModelWritesALoadableFolderWithTokenizer()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var stdout = CliRunner.Ok("init-model", "--preset", "nano", "--out", dir, "--seed", "3");
            Assert.Contains("llama", stdout);
            foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
                Assert.True(File.Exists(Path.Combine(dir, f)), f);
            using var scope = NewDisposeScope();
            var model = HfModel.Load(dir);
            var tok = HfTokenizer.Load(dir);
            Assert.Equal(model.Config.EosTokenIds, tok.EosIds);
            Assert.Equal(Presets.Get("nano").VocabSize, model.Config.VocabSize);
            long n = model.parameters().Sum(p => p.numel());
            Assert.InRange(n, 80_000, 150_000);   // ~100K-parameter preset
            // same seed, same weights
            var dir2 = TestPaths.NewTempDir();
            CliRunner.Ok("init-model", "--preset", "nano", "--out", dir2, "--seed", "3");
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), File.ReadAllBytes(Path.Combine(dir2, "model.safetensors")));
            Directory.Delete(dir2, true);
            var text = CliRunner.Ok("generate", "--model", dir, "--prompt", "hello", "--max-new-tokens", "4", "--greedy");
            Assert.False(string.IsNullOrWhiteSpace(text));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MergeCommandWritesCheckpointEqualToAdapterModel()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            using var scope = NewDisposeScope();
            var fixture = Fixtures.Dir("qwen2-tied-bias");
            var adapter = Path.Combine(fixture, "adapters", "lora-all");
            CliRunner.Ok("merge", "--model", fixture, "--adapter", adapter, "--out", dir);
            var ids = Fixtures.Expected("qwen2-tied-bias", "input_ids");
            var merged = HfModel.Load(dir);
            using var g = no_grad();
            Assert.True(Fixtures.MaxAbsDiff(merged.Forward(ids), Fixtures.Expected("qwen2-tied-bias", "logits_lora-all")) < 1e-4);
            Assert.True(merged.Config.TieWordEmbeddings);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AdapterWithUnsupportedOptionAndUnknownKey()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var src = Path.Combine(Fixtures.Dir("llama-gqa"), "adapters", "lora-qv");
            File.Copy(Path.Combine(src, "adapter_model.safetensors"), Path.Combine(dir, "adapter_model.safetensors"));
            var json = File.ReadAllText(Path.Combine(src, "adapter_config.json"));
            File.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.Replace("\"r\": 4,", "\"r\": 4, \"some_future_option\": 1,"));
            using var scope = NewDisposeScope();
            var peft = PeftModel.LoadAdapter(Fixtures.Load("llama-gqa"), dir);
            Assert.Contains(peft.Warnings, w => w.Contains("ignoring unknown key 'some_future_option'"));
            File.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.Replace("\"rank_pattern\": {}", "\"rank_pattern\": {}, \"layer_replication\": [[0, 1]]"));
            var e = Assert.Throws<PeftConfigException>(() => PeftModel.LoadAdapter(Fixtures.Load("llama-gqa"), dir));
            Assert.Contains("option 'layer_replication'", e.Message);
            Assert.Contains("not supported", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
