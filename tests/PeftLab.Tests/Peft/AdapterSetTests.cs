using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>Named adapters on one base, switched: every switch computes what loading that adapter alone computes.</summary>
public sealed class AdapterSetTests
{
    [Fact]
    public void SwitchingComputesEachAdaptersOwnOutput_InPlaceWhenTheStructureMatches()
    {
        using var scope = NewDisposeScope();
        var root = TestPaths.NewTempDir("peftlab-adapterset");
        try
        {
            var fixture = Fixtures.Dir("llama-gqa");
            var lora = Path.Combine(fixture, "adapters", "lora-qv");
            var ia3 = Path.Combine(fixture, "adapters", "ia3");
            // a second LoRA of the same structure: PEFT's file with B scaled by −2
            var lora2 = Path.Combine(root, "lora-qv-2");
            Directory.CreateDirectory(lora2);
            File.Copy(Path.Combine(lora, PeftModel.ConfigFile), Path.Combine(lora2, PeftModel.ConfigFile));
            using (var src = CheckpointSource.OpenFile(Path.Combine(lora, PeftModel.WeightsFile)))
                SafeTensorsWriter.Write(Path.Combine(lora2, PeftModel.WeightsFile), src.Names.Order(StringComparer.Ordinal).Select(n =>
                    TensorConversions.FromTensor(n, src.Read(n, ScalarType.Float32, CPU) * (n.Contains("lora_B") ? -2 : 1))));

            int bases = 0;
            var set = AdapterSet.Load(() => { bases++; return Fixtures.Load("llama-gqa"); }, [("qv", lora), ("qv2", lora2), ("ia3", ia3)]);
            Assert.Equal("qv", set.Active);
            Assert.Equal(["qv", "qv2", "ia3"], set.Names);
            var ids = Fixtures.Expected("llama-gqa", "input_ids");
            Tensor Logits(PeftModel m) { using var g = no_grad(); return m.Model.Forward(ids); }
            Tensor Alone(string dir) => Logits(PeftModel.LoadAdapter(Fixtures.Load("llama-gqa"), dir));

            Assert.True(Fixtures.MaxAbsDiff(Fixtures.Expected("llama-gqa", "logits_lora-qv"), Logits(set.Current)) < 1e-4);
            var host = set.Current.Host;
            int before = bases;
            var second = set.Activate("qv2");
            Assert.Same(host, second.Host);                                          // same structure: weights swapped in place
            Assert.Equal(before, bases);
            Assert.True(Fixtures.MaxAbsDiff(Alone(lora2), Logits(second)) < 1e-5);
            Assert.True(Fixtures.MaxAbsDiff(Logits(second), Fixtures.Expected("llama-gqa", "logits_lora-qv")) > 1e-3);

            var third = set.Activate("ia3");                                          // another method: rebuilt from the base
            Assert.NotSame(host, third.Host);
            Assert.Equal(PeftMethodKind.IA3, third.Method.Kind);
            Assert.True(Fixtures.MaxAbsDiff(Fixtures.Expected("llama-gqa", "logits_ia3"), Logits(third)) < 1e-4);
            Assert.True(Fixtures.MaxAbsDiff(Fixtures.Expected("llama-gqa", "logits_lora-qv"), Logits(set.Activate("qv"))) < 1e-4);
            Assert.Equal("qv", set.Active);

            Assert.Contains("no adapter named 'qv3'; the adapters are: qv, qv2, ia3", Assert.Throws<ArgumentException>(() => set.Activate("qv3")).Message);
            Assert.Contains("given twice", Assert.Throws<ArgumentException>(() => AdapterSet.Load(() => Fixtures.Load("llama-gqa"), [("a", lora), ("a", ia3)])).Message);
            // an adapter of another base fails when the set is loaded, naming its folder
            var t5Adapter = Directory.GetDirectories(Path.Combine(TestPaths.T5Fixtures)).Select(d => Path.Combine(d, "adapters")).Where(Directory.Exists)
                .SelectMany(Directory.GetDirectories).First();
            var e = Assert.ThrowsAny<Exception>(() => AdapterSet.Load(() => Fixtures.Load("llama-gqa"), [("a", lora), ("t5", t5Adapter)]));
            Assert.Contains(t5Adapter, e.Message);
        }
        finally { Directory.Delete(root, true); }
    }
}
