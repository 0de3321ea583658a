using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Tests;

/// <summary>Access to the reference fixtures in ../shared/fixtures/hf.</summary>
public static class Fixtures
{
    /// <summary>Every decoder-only fixture folder name.</summary>
    public static IEnumerable<object[]> Models() =>
        Directory.GetDirectories(TestPaths.HfFixtures).Select(d => new object[] { Path.GetFileName(d) });

    /// <summary>Every (fixture, adapter) pair.</summary>
    public static IEnumerable<object[]> Adapters() =>
        Directory.GetDirectories(TestPaths.HfFixtures)
            .SelectMany(d => Directory.Exists(Path.Combine(d, "adapters"))
                ? Directory.GetDirectories(Path.Combine(d, "adapters")).Select(a => new object[] { Path.GetFileName(d), Path.GetFileName(a) })
                : []);

    public static string Dir(string name) => Path.Combine(TestPaths.HfFixtures, name);

    /// <summary>Reads a tensor of expected.safetensors (float32 or int64 as stored).</summary>
    public static Tensor Expected(string fixture, string key)
    {
        TorchRuntime.EnsureInitialised();
        using var file = SafeTensorsFile.Open(Path.Combine(Dir(fixture), "expected.safetensors"));
        return TensorConversions.ToTensor(file, key).DetachFromDisposeScope();
    }

    public static CausalLM Load(string fixture) => HfModel.Load(Dir(fixture));

    /// <summary>Max |a - b|.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.to_type(ScalarType.Float32) - b.to_type(ScalarType.Float32)).abs().max().item<float>();
    }
}
