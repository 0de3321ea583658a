using System.Runtime.InteropServices;

namespace PeftLab.Studies;

/// <summary>The few POSIX calls the executors need (signals to workers, noticing a dead parent).</summary>
public static partial class Posix
{
    /// <summary>SIGINT: the trainer checkpoints at the next step and stops.</summary>
    public const int SigInt = 2;
    /// <summary>SIGKILL.</summary>
    public const int SigKill = 9;
    /// <summary>SIGTERM: handled like SIGINT.</summary>
    public const int SigTerm = 15;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process is gone.</summary>
    public static bool Signal(int pid, int signal)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
            throw new PlatformNotSupportedException("signals to worker processes need a POSIX system");
        return Kill(pid, signal) == 0;
    }

    /// <summary>The parent process id (1 or a subreaper once the parent has died).</summary>
    public static int ParentPid() => GetPpid();

    /// <summary>
    /// Calls <paramref name="onOrphaned"/> once when this process's parent is no longer <paramref name="parentPid"/>
    /// (it died, even by SIGKILL). Polls every 250 ms on a background thread.
    /// </summary>
    public static void WatchParent(int parentPid, Action onOrphaned)
    {
        var thread = new Thread(() =>
        {
            while (GetPpid() == parentPid) Thread.Sleep(250);
            onOrphaned();
        }) { IsBackground = true, Name = "parent watch" };
        thread.Start();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetPpid();
}
