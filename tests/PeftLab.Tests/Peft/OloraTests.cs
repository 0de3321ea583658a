using System.Text.Json.Nodes;
using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// OLoRA (init_lora_weights "olora"): W = QR, A₀ = R[:r], B₀ = Q[:, :r], the base keeps W − s·B₀A₀; a PEFT file of
/// trained (A, B) therefore computes W − s·B₀A₀ + s·BA, and PeftLab saves it converted for the original base.
/// </summary>
public sealed class OloraTests
{
    private const string Q = "model.layers.1.self_attn.q_proj";

    [Fact]
    public void APeftOloraFileComputesTheResidualBasePlusTheTrainedFactors_AndSavesConvertedForTheOriginalBase()
    {
        using var scope = NewDisposeScope();
        var dir = TestPaths.NewTempDir("peftlab-olora");
        try
        {
            const int r = 2;
            const double alpha = 6, s = alpha / r;
            var g = new Generator(3, CPU);
            var baseModel = TinyModels.Create(TinyModels.Llama);
            var w = baseModel.named_parameters().First(p => p.name == Q + ".weight").parameter.detach().clone();
            var a = randn([r, w.shape[1]], generator: g) * 0.1;
            var b = randn([w.shape[0], r], generator: g) * 0.1;
            var fields = LoraMethod.ConfigJson(new LoraConfig { R = r, Alpha = alpha, Targets = new TargetSelector { Names = [Q] } });
            fields["init_lora_weights"] = "olora";
            PeftModel.WriteAdapterFolder(dir, fields, "LORA", "CAUSAL_LM",
                [KeyValuePair.Create(PeftState.Prefix + Q + ".lora_A.weight", a), KeyValuePair.Create(PeftState.Prefix + Q + ".lora_B.weight", b)]);

            // the formula, computed here: reduced QR of W
            var (qm, rm) = linalg.qr(w);
            var a0 = rm.narrow(0, 0, r);
            var b0 = qm.narrow(1, 0, r);
            Assert.True(Fixtures.MaxAbsDiff(b0.t().matmul(b0), eye(r)) < 1e-5);                      // orthonormal columns
            var expected = TinyModels.Create(TinyModels.Llama);
            using (no_grad())
                expected.named_parameters().First(p => p.name == Q + ".weight").parameter.copy_(w - s * b0.matmul(a0) + s * b.matmul(a));
            var ids = TinyModels.Tokens(2, 7, TinyModels.Llama.VocabSize);

            var loaded = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), dir);
            Assert.Equal(LoraInit.Olora, ((LoraConfig)loaded.Config).Init);
            using var noGrad = no_grad();
            var want = expected.Forward(ids);
            Assert.True(Fixtures.MaxAbsDiff(want, loaded.Model.Forward(ids)) < 1e-5);

            // saved: a plain rank-2r LoRA for the original base, same function
            var saved = Path.Combine(dir, "saved");
            loaded.SaveAdapter(saved);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, PeftModel.ConfigFile)))!.AsObject();
            Assert.True(json["init_lora_weights"]!.GetValue<bool>());
            Assert.Equal(2 * r, json["r"]!.GetValue<int>());
            using (var src = CheckpointSource.OpenFile(Path.Combine(saved, PeftModel.WeightsFile)))
                Assert.Equal([2 * r, w.shape[1]], src.Shape(PeftState.Prefix + Q + ".lora_A.weight"));
            var reloaded = PeftModel.LoadAdapter(TinyModels.Create(TinyModels.Llama), saved);
            Assert.True(Fixtures.MaxAbsDiff(want, reloaded.Model.Forward(ids)) < 1e-5);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void FreshOloraStartsFromTheQrFactorsAndLeavesTheOutputUnchanged()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Create(TinyModels.Llama);
        var w = model.named_parameters().First(p => p.name == Q + ".weight").parameter.detach().clone();
        var peft = PeftModel.Apply(model, new LoraConfig { R = 3, Alpha = 3, Init = LoraInit.Olora, Targets = new TargetSelector { Names = [Q] } });
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        var (qm, rm) = linalg.qr(w);
        Assert.True(Fixtures.MaxAbsDiff(rm.narrow(0, 0, 3), p[Q + ".lora_A.weight"]) < 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(qm.narrow(1, 0, 3), p[Q + ".lora_B.weight"]) < 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(w, p[Q + ".base_layer.weight"] + p[Q + ".lora_B.weight"].matmul(p[Q + ".lora_A.weight"])) < 1e-5);
        Assert.Equal(2, peft.Host.Module.parameters().Count(x => x.requires_grad));
    }
}
