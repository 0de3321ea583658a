using System.Diagnostics;
using System.Text;

namespace PeftLab.Evaluation.Code;

/// <summary>What a sandboxed program may use before it is stopped.</summary>
public sealed record SandboxLimits
{
    /// <summary>CPU seconds (RLIMIT_CPU): the kernel stops the program past it.</summary>
    public int CpuSeconds { get; init; } = 10;
    /// <summary>Wall-clock seconds before PeftLab kills the program and everything it started.</summary>
    public double WallSeconds { get; init; } = 15;
    /// <summary>Address space in bytes (RLIMIT_AS): a larger allocation fails inside the program (Python's MemoryError).</summary>
    public long MemoryBytes { get; init; } = 1L << 30;
    /// <summary>Processes and threads of the sandbox user (RLIMIT_NPROC): a fork bomb's forks fail past it.</summary>
    public int Processes { get; init; } = 64;
    /// <summary>Bytes of standard output plus standard error before the program is killed; the first 64 KiB are kept.</summary>
    public long OutputBytes { get; init; } = 1L << 20;
    /// <summary>Largest file the program may write (RLIMIT_FSIZE), in bytes.</summary>
    public long FileBytes { get; init; } = 16L << 20;
}

/// <summary>How a sandboxed program ended.</summary>
public enum SandboxOutcome
{
    /// <summary>It exited with status 0 (every assertion held).</summary>
    Passed,
    /// <summary>It exited with an error: a failed assertion, an exception (its last line is the reason), a syntax error.</summary>
    Failed,
    /// <summary>It ran past its CPU-time limit and the kernel stopped it.</summary>
    CpuLimit,
    /// <summary>It ran past its wall-clock limit and was killed with everything it started.</summary>
    WallLimit,
    /// <summary>It printed more than its output limit and was killed.</summary>
    OutputLimit,
    /// <summary>It was never run: the sandbox could not start (the reason says why).</summary>
    SandboxError,
}

/// <summary>One program's run: how it ended, why, and the start of what it printed.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="Reason">Why, in one line: "passed", the exception's last line, or the limit reached.</param>
/// <param name="ExitCode">Its exit status (128 + signal when a signal ended it); null when it was killed by PeftLab or never ran.</param>
/// <param name="Output">The first 64 KiB of standard output and standard error.</param>
/// <param name="Seconds">Wall-clock seconds it ran.</param>
public sealed record SandboxRun(SandboxOutcome Outcome, string Reason, int? ExitCode, string Output, double Seconds)
{
    /// <summary>Whether it passed.</summary>
    public bool Passed => Outcome == SandboxOutcome.Passed;
}

/// <summary>Whether programs can be run here, how, and if not why.</summary>
/// <param name="Available">Whether the sandbox runs programs.</param>
/// <param name="Isolation">What isolates them (or, when not available, why not).</param>
/// <param name="Python">The interpreter used.</param>
public sealed record SandboxProbe(bool Available, string Isolation, string? Python);

/// <summary>
/// Runs untrusted Python (a model's generated code with its tests) by <c>python3</c> in a sandbox built from
/// util-linux: <c>unshare</c> gives the program new network (no interfaces but a down loopback), mount and PID
/// namespaces; every mount except its own folder is remounted read-only inside them; as root it then drops to the
/// unprivileged <c>nobody</c> (uid 65534), otherwise a user namespace maps the caller; <c>prlimit</c> sets CPU-time,
/// address-space, process-count, file-size and open-file limits; PeftLab enforces wall time and an output cap and, on
/// either, kills the namespace's first process, which takes every process of the namespace with it. The environment
/// is emptied (HOME and TMPDIR are the program's folder).
/// Without a working sandbox it refuses to run anything (<see cref="Probe"/> says why) unless constructed
/// <c>unsafeExecute</c>, which runs the interpreter directly, as the caller, under the same rlimits (<c>prlimit</c>).
/// Written here: no .NET library sandboxes a process; the tools used are those of every Linux distribution.
/// </summary>
public sealed class PythonSandbox
{
    /// <summary>The shell script run inside the namespaces: $1 the program's folder, then the command.</summary>
    private const string Script = """
        set -u
        d="$1"; shift
        mount --bind "$d" "$d" && cd "$d" || { echo "sandbox: cannot bind-mount $d" >&2; exit 97; }
        if [ "$(id -u)" = 0 ] && [ -n "${PEFTLAB_SANDBOX_DROP:-}" ]; then chown -R 65534:65534 "$d" || exit 97; fi
        for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
          [ "$m" = "$d" ] && continue
          mount -o remount,bind,ro "$m" 2>/dev/null
        done
        touch /peftlab-sandbox-probe 2>/dev/null && { echo "sandbox: the root file system stayed writable" >&2; exit 97; }
        if [ -n "${PEFTLAB_SANDBOX_DROP:-}" ]; then
          env -i HOME="$d" TMPDIR="$d" PATH=/usr/bin:/bin LANG=C.UTF-8 setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs "$@"
          exit $?
        fi
        env -i HOME="$d" TMPDIR="$d" PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
        exit $?
        """;

    /// <summary>Exit status the script uses when it cannot build the sandbox.</summary>
    private const int SetupFailed = 97;
    private const int KeptOutput = 64 << 10;

    private static readonly Lazy<SandboxProbe> Probed = new(() => ProbeWith(new SandboxLimits()));

    private readonly SandboxProbe probe;

    /// <summary>The limits every program runs under.</summary>
    public SandboxLimits Limits { get; }

    /// <summary>A sandbox with <paramref name="limits"/> (default: 10 s CPU, 15 s wall, 1 GiB, 64 processes, 1 MiB output).</summary>
    /// <param name="limits">The limits.</param>
    /// <param name="unsafeExecute">Run programs even without the sandbox (they then run as this user, limited by rlimits only).</param>
    /// <param name="probe">How programs run here (default: probed once per process).</param>
    /// <exception cref="InvalidOperationException">No sandbox works here and <paramref name="unsafeExecute"/> is false; the message says why.</exception>
    public PythonSandbox(SandboxLimits? limits = null, bool unsafeExecute = false, SandboxProbe? probe = null)
    {
        Limits = limits ?? new SandboxLimits();
        this.probe = probe ?? Probe();
        if (!this.probe.Available && !unsafeExecute)
            throw new InvalidOperationException($"cannot execute generated code safely here: {this.probe.Isolation}. " +
                "PeftLab runs code only in its sandbox (unshare + prlimit, util-linux); pass --unsafe-execute to run it unsandboxed, as this user, at your own risk");
        if (this.probe.Python is null)
            throw new InvalidOperationException($"cannot execute generated code: no python3 interpreter ran ({this.probe.Isolation}); set PEFTLAB_PYTHON to one");
    }

    /// <summary>How programs run on this machine (probed once per process: a tiny program through the sandbox).</summary>
    public static SandboxProbe Probe() => Probed.Value;

    /// <summary>What isolates programs, in one line (for logs and records).</summary>
    public string Isolation => probe.Available ? probe.Isolation : $"UNSANDBOXED (--unsafe-execute): {probe.Isolation}";

    /// <summary>Probes the interpreters (PEFTLAB_PYTHON, python3 on PATH, /usr/bin/python3) in the sandbox; the first that prints 42 is used.</summary>
    public static SandboxProbe ProbeWith(SandboxLimits limits, string unshare = "unshare")
    {
        if (!OperatingSystem.IsLinux()) return new(false, "the sandbox needs Linux namespaces (unshare)", Interpreters().FirstOrDefault());
        var reasons = new List<string>();
        foreach (var python in Interpreters())
        {
            var run = Execute(python, "print(6 * 7)\n", limits, sandboxed: true, unshare);
            if (run.Outcome == SandboxOutcome.Passed && run.Output.Trim() == "42") return new(true, Describe(), python);
            reasons.Add($"{python}: {run.Reason}");
        }
        var fallback = Interpreters().FirstOrDefault(p => Execute(p, "print(6 * 7)\n", limits, sandboxed: false, unshare).Passed);
        return new(false, reasons.Count == 0 ? "no python3 found" : "the sandbox did not run python3 (" + string.Join("; ", reasons) + ")", fallback);
    }

    /// <summary>Runs <paramref name="program"/> (Python source) in a fresh folder; never throws for what the program does.</summary>
    public SandboxRun Run(string program) => Execute(probe.Python!, program, Limits, sandboxed: probe.Available, "unshare");

    /// <summary>Runs many programs, as many at once as there are cores; results in input order.</summary>
    public SandboxRun[] RunAll(IReadOnlyList<string> programs, Action<int, int>? progress = null)
    {
        var results = new SandboxRun[programs.Count];
        int done = 0;
        Parallel.For(0, programs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            results[i] = Run(programs[i]);
            progress?.Invoke(Interlocked.Increment(ref done), programs.Count);
        });
        return results;
    }

    /// <summary>This process's real uid (read once from /proc; uint.MaxValue where there is none).</summary>
    private static readonly uint Uid = GetUid();

    private static bool IsRoot => Uid == 0;

    private static string Describe() => IsRoot
        ? "network, mount and PID namespaces; read-only file system outside the program's folder; user nobody; rlimits (unshare, setpriv, prlimit)"
        : "user, network, mount and PID namespaces; read-only file system outside the program's folder; rlimits (unshare, prlimit)";

    private static IEnumerable<string> Interpreters()
    {
        var seen = new HashSet<string>();
        if (Environment.GetEnvironmentVariable("PEFTLAB_PYTHON") is { Length: > 0 } env && seen.Add(env)) yield return env;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "python3");
            if (File.Exists(candidate) && seen.Add(candidate)) { yield return candidate; break; }
        }
        if (File.Exists("/usr/bin/python3") && seen.Add("/usr/bin/python3")) yield return "/usr/bin/python3";
    }

    private static SandboxRun Execute(string python, string program, SandboxLimits limits, bool sandboxed, string unshare)
    {
        var dir = Path.Combine(Path.GetTempPath(), "peftlab-sandbox-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var clock = Stopwatch.StartNew();
        try
        {
            File.WriteAllText(Path.Combine(dir, "program.py"), program);
            var rlimits = new[]
            {
                $"--cpu={limits.CpuSeconds}", $"--as={limits.MemoryBytes}", $"--fsize={limits.FileBytes}", "--nofile=64", "--core=0",
                $"--nproc={(IsRoot && sandboxed ? limits.Processes : limits.Processes + CallerTasks())}",     // nobody runs nothing else; a caller's own tasks count too
            };
            var command = new List<string> { "prlimit" };
            command.AddRange(rlimits);
            command.AddRange(["--", python, "-I", "-B", "program.py"]);
            var psi = new ProcessStartInfo { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
            if (sandboxed)
            {
                psi.FileName = unshare;
                foreach (var a in IsRoot ? new[] { "--net", "--mount", "--pid", "--fork", "--kill-child" } : ["--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child"])
                    psi.ArgumentList.Add(a);
                foreach (var a in new[] { "/bin/sh", "-c", Script, "peftlab-sandbox", dir }) psi.ArgumentList.Add(a);
                if (IsRoot) psi.Environment["PEFTLAB_SANDBOX_DROP"] = "1";
            }
            else psi.FileName = command[0];
            foreach (var a in sandboxed ? command : command.Skip(1)) psi.ArgumentList.Add(a);

            using var process = new Process { StartInfo = psi };
            try { process.Start(); }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                return new SandboxRun(SandboxOutcome.SandboxError, $"could not start {psi.FileName}: {e.Message}", null, "", clock.Elapsed.TotalSeconds);
            }
            process.StandardInput.Close();
            var output = new CappedOutput(limits.OutputBytes);
            var readers = new[] { output.DrainAsync(process.StandardOutput.BaseStream), output.DrainAsync(process.StandardError.BaseStream) };
            var deadline = TimeSpan.FromSeconds(limits.WallSeconds);
            SandboxOutcome? killed = null;
            while (!process.WaitForExit(50))
            {
                if (output.Exceeded) killed = SandboxOutcome.OutputLimit;
                else if (clock.Elapsed > deadline) killed = SandboxOutcome.WallLimit;
                if (killed is not null) { Kill(process); break; }
            }
            process.WaitForExit();
            Task.WaitAll(readers, TimeSpan.FromSeconds(5));
            if (output.Exceeded && killed is null) killed = SandboxOutcome.OutputLimit;
            var text = output.Text;
            double seconds = clock.Elapsed.TotalSeconds;
            if (killed == SandboxOutcome.OutputLimit)
                return new(SandboxOutcome.OutputLimit, $"printed more than {limits.OutputBytes:N0} bytes", null, text, seconds);
            if (killed == SandboxOutcome.WallLimit)
                return new(SandboxOutcome.WallLimit, $"ran past the wall-clock limit of {limits.WallSeconds:0.#} s", null, text, seconds);
            int code = process.ExitCode;
            if (code == 0) return new(SandboxOutcome.Passed, "passed", 0, text, seconds);
            if (sandboxed && code == SetupFailed && text.StartsWith("sandbox:", StringComparison.Ordinal))
                return new(SandboxOutcome.SandboxError, LastLine(text), code, text, seconds);
            // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one (prlimit sets both)
            if (code == 128 + 24 || (code == 128 + 9 && seconds >= limits.CpuSeconds))
                return new(SandboxOutcome.CpuLimit, $"ran past the CPU-time limit of {limits.CpuSeconds} s", code, text, seconds);
            var reason = LastLine(text);
            return new(SandboxOutcome.Failed, reason.Length > 0 ? reason : $"exited with status {code}", code, text, seconds);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static void Kill(Process process)
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } catch (System.ComponentModel.Win32Exception) { }
    }

    private static string LastLine(string text)
    {
        var line = text.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0) ?? "";
        return line.Length > 300 ? line[..300] + "…" : line;
    }

    /// <summary>Tasks (processes and threads) this user runs now: RLIMIT_NPROC counts them too when no other user is switched to.</summary>
    private static int CallerTasks()
    {
        var uid = Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        static string? Field(string[] status, string key) =>
            status.FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
        int n = 0;
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!char.IsAsciiDigit(Path.GetFileName(proc)[0])) continue;
            try
            {
                var status = File.ReadAllLines(Path.Combine(proc, "status"));
                if (Field(status, "Uid:") == uid && Field(status, "Threads:") is { } threads)
                    n += int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return n;
    }

    private static uint GetUid()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or FormatException) { return uint.MaxValue; }
    }

    /// <summary>Both output streams into one buffer: the first 64 KiB kept, every byte counted.</summary>
    private sealed class CappedOutput(long limit)
    {
        private readonly MemoryStream kept = new();
        private long total;

        public bool Exceeded => Interlocked.Read(ref total) > limit;

        public string Text
        {
            get { lock (kept) return Encoding.UTF8.GetString(kept.GetBuffer(), 0, (int)kept.Length); }
        }

        public async Task DrainAsync(Stream stream)
        {
            var buffer = new byte[16384];
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
                {
                    Interlocked.Add(ref total, n);
                    lock (kept)
                        if (kept.Length < KeptOutput) kept.Write(buffer, 0, (int)Math.Min(n, KeptOutput - kept.Length));
                }
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
        }
    }
}
