using TorchSharp;

namespace PeftLab.Runtime;

/// <summary>Compute device kinds PeftLab can place tensors on.</summary>
public enum DeviceKind
{
    /// <summary>The CPU (always available).</summary>
    Cpu,
    /// <summary>A CUDA GPU; needs a CUDA build of TorchSharp to be referenced.</summary>
    Cuda,
}

/// <summary>
/// The one place that initialises libtorch, sets threads and chooses the device. Everything that
/// creates tensors asks <see cref="Device"/> rather than assuming the CPU.
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialised;
    private static torch.Device? _device;

    /// <summary>The device new tensors and modules go to.</summary>
    public static torch.Device Device
    {
        get { EnsureInitialised(); return _device!; }
    }

    /// <summary>Loads the native libraries (patching if needed) and selects the CPU unless told otherwise.</summary>
    public static void EnsureInitialised()
    {
        lock (Gate)
        {
            if (_initialised) return;
            if (ModuleInit.Failure is { } failure) throw failure;
            NativeLoader.EnsureLoaded();
            AllocatorTuning.Apply();
            torch.InitializeDeviceType(DeviceType.CPU);
            _device ??= torch.CPU;
            _initialised = true;
        }
    }

    /// <summary>Selects the device; <c>cuda</c> fails with a clear message when no CUDA build is present.</summary>
    public static void UseDevice(DeviceKind kind)
    {
        EnsureInitialised();
        lock (Gate)
        {
            if (kind == DeviceKind.Cuda)
            {
                if (!torch.cuda.is_available())
                    throw new InvalidOperationException(
                        "device 'cuda' was requested but no CUDA device is usable: PeftLab is built against TorchSharp-cpu. " +
                        "Reference a CUDA build of TorchSharp (libtorch-cuda) and run on a machine with an NVIDIA GPU, or use device 'cpu'.");
                _device = torch.CUDA;
            }
            else _device = torch.CPU;
        }
    }

    /// <summary>Sets intra-op threads; null or 0 means all cores.</summary>
    public static void SetThreads(int? threads)
    {
        EnsureInitialised();
        int n = threads is > 0 ? threads.Value : Environment.ProcessorCount;
        torch.set_num_threads(n);
    }

    /// <summary>Parses a device name as used in configs and on the command line.</summary>
    public static DeviceKind ParseDevice(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => DeviceKind.Cpu,
        "cuda" or "gpu" => DeviceKind.Cuda,
        _ => throw new ArgumentException($"unknown device '{name}'; supported: cpu, cuda"),
    };
}
