using System.Diagnostics;

namespace PeftLab.Tests;

/// <summary>Runs the real <c>peftlab</c> CLI (PeftLab.Cli.dll from the test output folder) as a subprocess.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunWith(new Dictionary<string, string>(), args);

    /// <summary>Runs with extra environment variables.</summary>
    public static Result RunWith(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "PeftLab.Cli.dll");
        Assert.True(File.Exists(dll), $"missing {dll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException("peftlab " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and asserts success, returning stdout.</summary>
    public static string Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.ExitCode == 0, $"peftlab {string.Join(' ', args)} exited {r.ExitCode}\nstdout: {r.Stdout}\nstderr: {r.Stderr}");
        return r.Stdout;
    }
}
