using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Tests.T5;

/// <summary>Access to the T5 reference fixture in ../shared/fixtures/t5.</summary>
public static class T5Fixtures
{
    public const string Name = "t5-v1_1-lm-adapt-tiny";

    public static string Dir => Path.Combine(TestPaths.T5Fixtures, Name);

    public static string Adapter(string name) => Path.Combine(Dir, "adapters", name);

    public static string ExpectedFile => Path.Combine(Dir, "expected.safetensors");

    /// <summary>A tensor of expected.safetensors.</summary>
    public static Tensor Expected(string key)
    {
        TorchRuntime.EnsureInitialised();
        using var file = SafeTensorsFile.Open(ExpectedFile);
        return TensorConversions.ToTensor(file, key).DetachFromDisposeScope();
    }

    public static int[] ExpectedIds(string key) => Expected(key)[0].data<long>().Select(x => (int)x).ToArray();

    public static T5ForConditionalGeneration Load() => HfT5.Load(Dir);
}
