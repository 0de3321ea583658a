using System.Runtime.CompilerServices;

namespace PeftLab.Runtime;

/// <summary>
/// Prepares TorchSharp's native bridge as soon as PeftLab is loaded, before any <c>torch.*</c> static runs:
/// TorchSharp's own static constructor tries the stock library once and would otherwise fail for good.
/// A failure here is remembered and reported by <see cref="TorchRuntime.EnsureInitialised"/>.
/// </summary>
internal static class ModuleInit
{
    internal static Exception? Failure { get; private set; }

#pragma warning disable CA2255 // a library module initializer is the point here: it must run before TorchSharp's type initializer
    [ModuleInitializer]
    internal static void Init()
    {
        try { NativeLoader.EnsureLoaded(); }
        catch (Exception e) { Failure = e; }
    }
#pragma warning restore CA2255
}
