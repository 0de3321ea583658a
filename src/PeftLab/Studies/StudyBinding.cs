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
            ConfigBinder.RegisterRawNodes();
            registered = true;
        }
    }
}
