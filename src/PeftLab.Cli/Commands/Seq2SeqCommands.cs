using PeftLab.Checkpoints;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Cli.Commands;

/// <summary>
/// The encoder-decoder (T5) side of <c>peftlab logits</c> and <c>peftlab generate</c>, chosen by config.json's
/// model_type; the commands in ModelCommands.cs hand over to these when the model folder holds a T5.
/// </summary>
internal static class Seq2SeqCommands
{
    /// <summary>Whether the model folder holds an encoder-decoder model these commands handle.</summary>
    public static bool Handles(ModelSettings s) => s.Model is not null && T5Config.IsT5Folder(s.Model);

    private static T5ForConditionalGeneration Load(ModelSettings s, ScalarType? dtype = null)
    {
        s.ApplyRuntime();
        var model = HfT5.Load(s.Model!, dtype ?? s.ComputeDType, TorchRuntime.Device);
        if (s.Adapter is not null)
        {
            var peft = PeftModel.LoadAdapter(model, s.Adapter);
            foreach (var w in peft.Warnings) Console.Error.WriteLine($"warning: {w}");
        }
        model.eval();
        return model;
    }

    /// <summary>
    /// logits: reads I64 input_ids [batch, S] and decoder_input_ids [batch, T] (optional attention_mask and
    /// decoder_attention_mask [batch, S] / [batch, T]) and writes F32 logits [batch, T, vocab].
    /// </summary>
    public static int Logits(LogitsSettings s)
    {
        var model = Load(s, ScalarType.Float32);
        using var scope = NewDisposeScope();
        using var input = SafeTensorsFile.Open(s.Input!);
        var ids = Read(input, s.Input!, "input_ids", required: true)!;
        var decoderIds = Read(input, s.Input!, "decoder_input_ids", required: true)!;
        if (ids.shape[0] != decoderIds.shape[0])
            throw new ArgumentException($"{s.Input}: input_ids has batch {ids.shape[0]} but decoder_input_ids has batch {decoderIds.shape[0]}");
        var mask = Read(input, s.Input!, "attention_mask", required: false, like: ids);
        var decoderMask = Read(input, s.Input!, "decoder_attention_mask", required: false, like: decoderIds);
        Tensor logits;
        using (no_grad()) logits = model.Forward(ids, decoderIds, mask, decoderMask).to_type(ScalarType.Float32);
        SafeTensorsWriter.Write(s.Out!, [TensorConversions.FromTensor("logits", logits)]);
        return 0;
    }

    private static Tensor? Read(SafeTensorsFile file, string path, string name, bool required, Tensor? like = null)
    {
        if (!file.Contains(name))
            return required ? throw new ArgumentException($"{path}: no tensor named '{name}' (found: {string.Join(", ", file.Names)}); a T5 model needs input_ids and decoder_input_ids") : null;
        var info = file.GetInfo(name);
        if (info.DType != SafeDType.I64 || info.Shape.Length != 2)
            throw new ArgumentException($"{path}: {name} must be I64 [batch, length] (got {info.DType} {info.ShapeText})");
        if (like is not null && !info.Shape.SequenceEqual(like.shape))
            throw new ArgumentException($"{path}: {name} has shape {info.ShapeText} but must match [{string.Join(", ", like.shape)}]");
        return TensorConversions.ToTensor(file, name, device: TorchRuntime.Device);
    }

    /// <summary>generate: the encoder input from --input-ids or --prompt; prints the generated ids (without the decoder start token) or text.</summary>
    public static int Generate(GenerateSettings s)
    {
        var model = Load(s);
        using var tokenizer = s.Prompt is not null || s.OutputFormat == "text" ? Tokenization.HfTokenizer.Load(s.Model!) : null;
        int[] input = s.InputIds is not null ? TokenIds.Parse(s.InputIds, "--input-ids") : tokenizer!.Encode(s.Prompt!, addSpecialTokens: true);
        bool sample = !s.Greedy && (s.Temperature is not null || s.TopK is not null || s.TopP is not null);
        var cfg = new SamplingConfig(s.MaxNewTokens, !sample, s.Temperature ?? 1.0, s.TopK ?? 0, s.TopP ?? 1.0, s.Seed);
        var eos = tokenizer is { EosIds.Count: > 0 } ? tokenizer.EosIds.ToArray() : model.Config.EosTokenIds.ToArray();
        int pad = tokenizer?.PadId ?? model.Config.PadTokenId;
        var output = Seq2SeqGenerator.Generate(model, [input], cfg, eos, pad)[0];
        Console.WriteLine(s.OutputFormat == "ids" ? string.Join(' ', output) : tokenizer!.Decode(output));
        return 0;
    }
}
