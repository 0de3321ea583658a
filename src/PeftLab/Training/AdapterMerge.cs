using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Peft.Lora;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary><c>peftlab merge</c>: an adapter folded into its base model, or several LoRA adapters combined into one.</summary>
public static class AdapterMerge
{
    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> and the adapter in <paramref name="adapterDir"/>, merges them and
    /// writes config, weights and tokenizer files to <paramref name="outDir"/> through <see cref="OutputFolder"/>: never
    /// over the model or adapter folder (symbolic links resolved), over a non-empty folder only with <paramref name="force"/>,
    /// and via a temp folder renamed into place. Returns the merged method and the adapter's warnings.
    /// </summary>
    public static (PeftMethodKind Method, IReadOnlyList<string> Warnings) ToFolder(string modelDir, string adapterDir, string outDir, bool force,
        ScalarType dtype, Device device)
    {
        (string, string?)[] inputs = [("the model folder", modelDir), ("the adapter folder", adapterDir)];
        OutputFolder.Check(outDir, force, inputs);                         // before the (slow) load
        var (model, peft) = LoadMerged(modelDir, adapterDir, dtype, device);
        OutputFolder.Write(outDir, force, inputs, dir => WriteCheckpoint(model, modelDir, dir));
        return (peft.Method.Kind, peft.Warnings);
    }

    /// <summary>
    /// Combines LoRA adapters as PEFT's <c>add_weighted_adapter</c> (<see cref="LoraCombination"/>) and writes the new
    /// adapter to <paramref name="outDir"/>, or with <paramref name="intoBase"/> the model in <paramref name="modelDir"/>
    /// with the combined adapter merged in (a complete checkpoint). Either way the combined adapter is first loaded
    /// strictly onto the model, so adapters that do not fit its base are an error naming the module. Output folder rules
    /// as <see cref="ToFolder"/>. Returns the combined config.
    /// </summary>
    public static LoraConfig Combine(string modelDir, IReadOnlyList<WeightedAdapterFolder> adapters, LoraCombinationOptions options, string outDir, bool force,
        bool intoBase, ScalarType dtype, Device device)
    {
        var inputs = adapters.Select((a, i) => ($"adapter folder {i + 1}", (string?)a.Dir)).Prepend(("the model folder", modelDir)).ToArray();
        OutputFolder.Check(outDir, force, inputs);
        var staging = Path.Combine(Path.GetTempPath(), $"peftlab-combined-{Guid.NewGuid():N}");
        try
        {
            var config = LoraCombination.CombineToFolder(adapters, options, staging);
            var (model, _) = LoadMerged(modelDir, staging, dtype, device);   // checks the combined adapter against the base
            OutputFolder.Write(outDir, force, inputs, dir =>
            {
                if (intoBase) WriteCheckpoint(model, modelDir, dir);
                else foreach (var file in Directory.GetFiles(staging)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
            });
            return config;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    private static (ITrainableModel Model, PeftModel Peft) LoadMerged(string modelDir, string adapterDir, ScalarType dtype, Device device)
    {
        var model = TrainableModels.Load(modelDir, dtype, device);                 // any family: decoder-only or T5
        var peft = PeftModel.LoadAdapter(model.Host, adapterDir);
        peft.Merge();
        return (model, peft);
    }

    private static void WriteCheckpoint(ITrainableModel model, string modelDir, string dir)
    {
        model.SaveFull(dir);
        ModelFolder.CopyTokenizerFiles(modelDir, dir);
    }
}
