using System.Reflection;
using System.Text.RegularExpressions;
using PeftLab.Cli;
using PeftLab.Configuration;
using Spectre.Console.Cli;

namespace PeftLab.Tests.Cli;

/// <summary>
/// The command line's contract: --help works for every command; every numeric option is range-checked and every
/// enum-like option rejects unknown values, naming the option and the value; an expected error is exactly one
/// <c>error: ...</c> line and a non-zero exit, with the stack trace only under --verbose.
/// </summary>
public sealed class CliContractTests
{
    private static IEnumerable<string> Subcommands(string help)
    {
        bool inCommands = false;
        foreach (var line in help.Split('\n'))
        {
            if (line.StartsWith("COMMANDS:", StringComparison.Ordinal)) { inCommands = true; continue; }
            if (!inCommands) continue;
            if (line.Length > 0 && !line.StartsWith(' ')) break;
            var m = Regex.Match(line, @"^    (\S+)");
            if (m.Success) yield return m.Groups[1].Value;
        }
    }

    [Fact]
    public void HelpRunsForEveryRegisteredCommand()
    {
        var leaves = new List<string>();
        var todo = new Queue<string[]>([[]]);
        while (todo.Count > 0)
        {
            var path = todo.Dequeue();
            var r = CliRunner.Run([.. path, "--help"]);
            Assert.True(r.ExitCode == 0, $"peftlab {string.Join(' ', path)} --help exited {r.ExitCode}: {r.Stderr}");
            Assert.DoesNotContain("error", r.Stderr);
            Assert.Contains("USAGE:", r.Stdout);
            var subs = Subcommands(r.Stdout).ToArray();
            if (subs.Length == 0) leaves.Add(string.Join(' ', path));
            foreach (var s in subs) todo.Enqueue([.. path, s]);
        }
        // every command class in the CLI was reached (none is missing from the walk above)
        int commandTypes = typeof(CliApp).Assembly.GetTypes().Count(t => !t.IsAbstract && typeof(ICommand).IsAssignableFrom(t));
        Assert.Equal(commandTypes, leaves.Count);
        Assert.Contains("logits", leaves);
        Assert.Contains("study report", leaves);
        Assert.Contains("data synth", leaves);
    }

    private static IEnumerable<Type> SettingsTypes() =>
        typeof(CliApp).Assembly.GetTypes().Where(t => typeof(CommandSettings).IsAssignableFrom(t));

    [Fact]
    public void EveryNumericOptionDeclaresARange()
    {
        var missing = SettingsTypes()
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).Select(p => (t, p)))
            .Where(x => x.p.GetCustomAttribute<CommandOptionAttribute>() is not null && OptionChecks.IsNumeric(x.p.PropertyType))
            .Where(x => x.p.GetCustomAttribute<ConfigRangeAttribute>() is null)
            .Select(x => $"{x.t.Name}.{x.p.Name}")
            .ToArray();
        Assert.True(missing.Length == 0, "numeric options without [ConfigRange]: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryOptionAndArgumentHasAHelpLine()
    {
        var missing = SettingsTypes()
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).Select(p => (t, p)))
            .Where(x => x.p.GetCustomAttribute<CommandOptionAttribute>() is not null || x.p.GetCustomAttribute<CommandArgumentAttribute>() is not null)
            .Where(x => string.IsNullOrWhiteSpace(x.p.GetCustomAttribute<System.ComponentModel.DescriptionAttribute>()?.Description))
            .Select(x => $"{x.t.Name}.{x.p.Name}")
            .ToArray();
        Assert.True(missing.Length == 0, "options without a [Description] (a blank line in --help): " + string.Join(", ", missing));

        // and it reaches the help text: every option of bench is described there
        var help = CliRunner.Run(["bench", "--help"]).Stdout;
        foreach (var line in help.Split('\n').Where(l => l.TrimStart().StartsWith("--", StringComparison.Ordinal)))
            Assert.True(System.Text.RegularExpressions.Regex.IsMatch(line, @"^\s*--\S+(\s+<[^>]+>)?\s{2,}\S"), "an option of bench --help has no description: " + line);
    }

    private static void AssertOneErrorLine(CliRunner.Result r, int exitCode, string expected)
    {
        Assert.True(r.ExitCode == exitCode, $"exit {r.ExitCode} (expected {exitCode})\nstdout: {r.Stdout}\nstderr: {r.Stderr}");
        var errors = r.Stderr.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
        Assert.True(errors.Length == 1, "expected exactly one error line:\n" + r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Theory]
    [InlineData("error: --threads: must be >= 1 (got 0)", "doctor", "--threads", "0")]
    [InlineData("error: --threads: must be >= 1 (got -3)", "doctor", "--threads", "-3")]
    [InlineData("error: --threads: 'many' is not a valid value (expected a number)", "doctor", "--threads", "many")]
    [InlineData("error: --batch-size: must be >= 1 (got -1)", "eval", "--model", "m", "--tasks", "t", "--batch-size", "-1")]
    [InlineData("error: --batch-size: must be >= 1 (got 0)", "eval", "--model", "m", "--tasks", "t", "--batch-size", "0")]
    [InlineData("error: --limit: must be >= 1 (got -1)", "eval", "--model", "m", "--tasks", "t", "--limit", "-1")]
    [InlineData("error: --instances-per-task: must be >= 1 (got -1)", "score", "--predictions", "p", "--tasks", "t", "--instances-per-task", "-1")]
    [InlineData("error: --top-p: must be in (0, 1] (got 1.5)", "generate", "--model", "m", "--prompt", "x", "--top-p", "1.5")]
    [InlineData("error: --temperature: must be a finite number > 0 (got NaN)", "generate", "--model", "m", "--prompt", "x", "--temperature", "NaN")]
    [InlineData("error: --max-new-tokens: must be >= 1 (got 0)", "generate", "--model", "m", "--prompt", "x", "--max-new-tokens", "0")]
    [InlineData("error: --instances: must be >= 1 (got 0)", "data", "synth", "--out", "o", "--instances", "0")]
    [InlineData("error: --steps: must be >= 1 (got 0)", "bench", "--steps", "0")]
    [InlineData("error: --workers: must be >= 1 (got 0)", "study", "plan", "--workers", "0")]
    public void NumericOptionsNameOptionAndValue(string expected, params string[] args) => AssertOneErrorLine(CliRunner.Run(args), 2, expected);

    [Theory]
    [InlineData("error: --format: unknown format 'bogus'; known: definition_only, tk_instruct", "eval", "--model", "m", "--tasks", "t", "--format", "bogus")]
    [InlineData("error: --split: unknown split 'dev'; known: test, seen, validation", "eval", "--model", "m", "--tasks", "t", "--split", "dev")]
    [InlineData("error: --output-format: unknown output-format 'xml'; known: ids, text", "generate", "--model", "m", "--prompt", "x", "--output-format", "xml")]
    [InlineData("error: --mode: unknown mode 'fly'; known: train, generate, matmul, bandwidth, packing, eval", "bench", "--mode", "fly")]
    [InlineData("error: --chunked-loss: unknown chunked-loss 'often'; known: auto, always, never", "bench", "--chunked-loss", "often")]
    [InlineData("error: --format: unknown format 'xls'; known: csv, jsonl, parquet", "study", "results", "somewhere", "--format", "xls")]
    [InlineData("error: --categories: expected one of: string_transformation, list_operations, arithmetic, counting, rule_classification, extraction, pattern_completion, formatting, comparison_sorting, lookup_mapping, multi_step_reasoning, long_form_generation, got 'lists'", "data", "synth", "--out", "o", "--categories", "lists")]
    [InlineData("error: --categories counting: keeps no test task whose primitives all occur in the kept train tasks; add categories", "data", "synth", "--out", "o", "--categories", "counting")]
    public void EnumOptionsRejectUnknownValuesListingTheKnownOnes(string expected, params string[] args) => AssertOneErrorLine(CliRunner.Run(args), 2, expected);

    [Theory]
    [InlineData("error: model folder not found: /nonexistent/model", "generate", "--model", "/nonexistent/model", "--input-ids", "1 2")]
    [InlineData("error: --input-ids: 'x' is not an integer token id", "generate", "--model", "{llama}", "--input-ids", "1 x", "--output-format", "ids")]
    [InlineData("error: --input-ids: no token ids given", "generate", "--model", "{llama}", "--input-ids", " ", "--output-format", "ids")]
    [InlineData("no tokenizer.json", "generate", "--model", "{llama}", "--prompt", "hello")]
    public void ExpectedFailuresAreOneLineWithoutStackTrace(string expected, params string[] args)
    {
        args = args.Select(a => a == "{llama}" ? Fixtures.Dir("llama-gqa") : a).ToArray();
        AssertOneErrorLine(CliRunner.Run(args), 1, expected);
    }

    [Fact]
    public void VerboseAddsTheStackTraceAnywhereOnTheLine()
    {
        var quiet = CliRunner.Run("generate", "--model", "/nonexistent/model", "--input-ids", "1");
        Assert.DoesNotContain("   at ", quiet.Stderr);
        foreach (var args in new[] { new[] { "--verbose", "generate", "--model", "/nonexistent/model", "--input-ids", "1" },
                                     new[] { "generate", "--model", "/nonexistent/model", "--input-ids", "1", "--verbose" } })
        {
            var loud = CliRunner.Run(args);
            Assert.Equal(1, loud.ExitCode);
            Assert.StartsWith("error: model folder not found: /nonexistent/model", loud.Stderr);
            Assert.Contains("   at PeftLab.", loud.Stderr);
        }
    }

    [Fact]
    public void UnexpectedErrorsAreReportedAsInternal()
    {
        var err = new StringWriter();
        int code = CliErrors.Report(new System.Runtime.InteropServices.ExternalException("boom\nframe #0: native stuff"), [], verbose: false, err);
        Assert.Equal(CliErrors.Internal, code);
        Assert.Equal("error: internal error (ExternalException): boom (run with --verbose for the stack trace)", err.ToString().Trim());
    }
}
