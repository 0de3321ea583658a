using PeftLab.Configuration;
using PeftLab.Training;

namespace PeftLab.Studies;

/// <summary>Registers how study-only types bind (raw config nodes).</summary>
internal static class StudyBinding
{
    private static readonly object Gate = new();
    private static bool registered;

    public static void Register()
    {
        TrainConfigLoader.Register();
        lock (Gate)
        {
            if (registered) return;
            ConfigBinder.RegisterConverter<ConfigNode>(n => (n, null), n => n);
            ConfigBinder.RegisterConverter<ConfigMapping>(n => n is ConfigMapping m ? (m, null) : (null, $"expected a mapping, got {n.Describe()}"), n => n);
            ConfigBinder.RegisterConverter<ConfigSequence>(n => n is ConfigSequence s ? (s, null) : (null, $"expected a list, got {n.Describe()}"), n => n);
            ConfigBinder.RegisterConverter<ConfigScalar>(n => n is ConfigScalar s ? (s, null) : (null, $"expected a scalar, got {n.Describe()}"), n => n);
            registered = true;
        }
    }
}
