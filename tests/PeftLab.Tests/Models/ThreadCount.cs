namespace PeftLab.Tests.Models;

/// <summary>Sets libtorch's intra-op threads for a test and restores them.</summary>
internal sealed class ThreadCount : IDisposable
{
    private readonly int before = TorchSharp.torch.get_num_threads();
    public ThreadCount(int n) => TorchSharp.torch.set_num_threads(n);
    public void Dispose() => TorchSharp.torch.set_num_threads(before);
}
