using PeftLab.Configuration;
using System.ComponentModel;
using PeftLab.Models;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PeftLab.Cli.Commands;

/// <summary>Settings of <c>peftlab init-model</c>.</summary>
public sealed class InitModelSettings : CommonSettings
{
    /// <summary>Preset name.</summary>
    [CommandOption("--preset <NAME>")]
    [Description("Built-in shape: nano, micro, tiny, mini, small, medium, qwen-tiny")]
    public string? Preset { get; init; }

    /// <summary>config.json to build from.</summary>
    [CommandOption("--config <FILE>")]
    [Description("A transformers config.json (llama, mistral, qwen2) to build instead of a preset")]
    public string? Config { get; init; }

    /// <summary>Output folder.</summary>
    [CommandOption("--out <DIR>")]
    [Description("Folder to write (created; a non-empty one only with --force)")]
    public string? Out { get; init; }

    /// <summary>Replace a non-empty output folder.</summary>
    [CommandOption("--force")]
    [Description("Replace the output folder if it is not empty")]
    public bool Force { get; init; }

    /// <summary>Weight seed.</summary>
    [CommandOption("--seed <N>")]
    [Description("Seed of the random weights")]
    [ConfigRange(long.MinValue, long.MaxValue)]
    public long Seed { get; init; }

    /// <summary>Tokenizer training text.</summary>
    [CommandOption("--corpus <FILE>")]
    [Description("Text file (one document per line) to train the tokenizer's BPE merges on (default: the built-in synthetic corpus)")]
    public string? Corpus { get; init; }

    /// <inheritdoc/>
    /// <summary>A folder with a Hugging Face tokenizer.json (and tokenizer_config.json) to use instead of training one.</summary>
    [CommandOption("--tokenizer <DIR>")]
    [Description("Use this folder's tokenizer.json / tokenizer_config.json (e.g. a real model's) instead of training a BPE tokenizer; its ids must fit vocab_size")]
    public string? Tokenizer { get; init; }

    public override ValidationResult Validate() =>
        (Preset is null) == (Config is null) ? ValidationResult.Error("give exactly one of --preset NAME or --config FILE")
        : Out is null ? ValidationResult.Error("--out DIR is required")
        : base.Validate();
}

/// <summary><c>peftlab init-model</c>: a complete HF-layout folder with random weights.</summary>
public sealed class InitModelCommand : Command<InitModelSettings>
{
    /// <inheritdoc/>
    public override int Execute(CommandContext context, InitModelSettings s, CancellationToken cancellationToken)
    {
        s.ApplyRuntime();
        var config = s.Preset is not null ? Presets.Get(s.Preset) : DecoderConfig.Parse(PeftLab.Data.Utf8Text.ReadAllText(s.Config!), s.Config!);
        if (s.Tokenizer is not null && s.Corpus is not null) throw new ArgumentException("give --tokenizer or --corpus, not both (--corpus trains a tokenizer)");
        IEnumerable<string> corpus = s.Corpus is not null ? PeftLab.Data.Utf8Text.ReadAllLines(s.Corpus)
            : PeftLab.Synthetic.SyntheticCorpus.Generate(new PeftLab.Synthetic.CorpusOptions(Documents: 2000));
        var written = ModelFolder.Init(s.Out!, config, s.Seed, corpus, s.Force, [("the --config file", s.Config), ("the --corpus file", s.Corpus), ("the --tokenizer folder", s.Tokenizer)], s.Tokenizer);
        var model = HfModel.Load(s.Out!);
        long parameters = model.parameters().Sum(p => p.numel());
        AnsiConsole.MarkupLineInterpolated($"wrote {s.Out}: {written.ModelType}, {parameters:N0} parameters, vocab {written.VocabSize}, d {written.HiddenSize}, {written.NumLayers} layers");
        return 0;
    }
}
