using System.Runtime.CompilerServices;
using PeftLab.Runtime;

namespace PeftLab.Tests;

internal static class TestInit
{
    /// <summary>Load libtorch (patched if needed) before any test touches TorchSharp's statics.</summary>
    [ModuleInitializer]
    internal static void Init() => TorchRuntime.EnsureInitialised();
}
