using System.ComponentModel;
using PeftLab.Cli.Commands;
using PeftLab.Configuration;
using PeftLab.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli;

/// <summary>
/// Options every command accepts, the root of every command's settings. Numeric options declare their range with
/// <see cref="PeftLab.Configuration.ConfigRangeAttribute"/> and enum-like options their values with
/// <see cref="ChoicesAttribute"/>; <see cref="OptionChecks"/> checks both for every command before it runs.
/// </summary>
public class GlobalSettings : CommandSettings
{
    /// <summary>Print the stack trace of an error. Read by <see cref="CliApp.Run"/> before parsing, so it may go anywhere.</summary>
    [CommandOption("--verbose")]
    [Description("On an error, also print its stack trace")]
    public bool Verbose { get; init; }
}

/// <summary>Options of every command that computes.</summary>
public class CommonSettings : GlobalSettings
{
    /// <summary>Intra-op threads (default: all cores).</summary>
    [CommandOption("--threads <N>")]
    [Description("Compute threads (default: all cores)")]
    [ConfigRange(1, int.MaxValue)]
    public int? Threads { get; init; }

    /// <summary>cpu or cuda.</summary>
    [CommandOption("--device <NAME>")]
    [Description("Compute device: cpu (default) or cuda (needs a CUDA build of TorchSharp)")]
    public string Device { get; init; } = "cpu";

    /// <summary>Applies threads and device; called first by every command that computes.</summary>
    public void ApplyRuntime()
    {
        TorchRuntime.EnsureInitialised();
        TorchRuntime.SetThreads(Threads);
        TorchRuntime.UseDevice(TorchRuntime.ParseDevice(Device));
    }
}

/// <summary>The <c>peftlab</c> command line.</summary>
public static class CliApp
{
    /// <summary>
    /// Runs the CLI; returns the process exit code. Every error is reported by <see cref="CliErrors.Report"/>: one
    /// <c>error: ...</c> line (a stack trace only with <c>--verbose</c>).
    /// </summary>
    public static int Run(string[] args)
    {
        bool verbose = args.Contains("--verbose");
        var rest = args.Where(a => a != "--verbose").ToArray();
        try
        {
            return Build().Run(rest);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, rest, verbose, Console.Error);
        }
    }

    /// <summary>The command tree.</summary>
    internal static CommandApp Build()
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("peftlab");
            c.PropagateExceptions();
            c.SetInterceptor(new OptionChecks());
            c.AddCommand<LogitsCommand>("logits").WithDescription("Write float32 logits of input_ids (safetensors in, safetensors out)");
            c.AddCommand<GenerateCommand>("generate").WithDescription("Generate from token ids or a text prompt");
            c.AddCommand<InitModelCommand>("init-model").WithDescription("Create a model folder with random weights and a tokenizer");
            c.AddCommand<MergeCommand>("merge").WithDescription("Merge an adapter into the base weights, or combine LoRA adapters (linear, cat, svd, ties, dare, magnitude_prune)");
            c.AddCommand<TrainCommand>("train").WithDescription("Fine-tune with any method from a YAML config plus key=value overrides");
            c.AddBranch("base", b =>
            {
                b.SetDescription("Built-in pretrained base models");
                b.AddCommand<BaseBuildCommand>("build").WithDescription("Pretrain a built-in base by its recipe and compare it with the shipped copy, bit for bit");
            });
            c.AddCommand<PretrainCommand>("pretrain").WithDescription("Pretrain a built-in base model on a text corpus (same trainer, packing on)");
            c.AddBranch("data", d =>
            {
                d.SetDescription("Built-in data: the synthetic instruction suite and pretraining corpus");
                d.AddCommand<SynthCommand>("synth").WithDescription("Write the synthetic instruction suite (SuperNI schema) with its train/test split");
                d.AddCommand<CorpusCommand>("corpus").WithDescription("Write the free-text pretraining corpus built from the suite's primitives");
            });
            c.AddCommand<ScoreCommand>("score").WithDescription("Score a predictions JSONL with the official SuperNI metric, or re-score a harness evaluation's samples.jsonl (--task, --samples)");
            c.AddCommand<EvalCommand>("eval").WithDescription("Generate on a split (test, seen, validation) and score");
            c.AddCommand<DescribeCommand>("describe").WithDescription("Trainable and total parameters of a method (or a sweep of methods and knobs) on a model");
            c.AddCommand<BenchCommand>("bench").WithDescription("Throughput benchmark with the PyTorch peer's workload and JSON fields");
            c.AddBranch<GlobalSettings>("study", study =>
            {
                study.SetDescription("The reference study as an experiment matrix: plan, run, submit, status, results");
                StudyCommands.Register(study);
                study.AddCommand<StudyReportCommand>("report").WithDescription("Analyses, finding checks and an HTML/Markdown report of a study folder");
            });
            c.AddCommand<DoctorCommand>("doctor").WithDescription("Show how the native runtime was loaded, threads and device");
        });
        return app;
    }
}
