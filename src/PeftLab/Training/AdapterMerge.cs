using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Training;

/// <summary><c>peftlab merge</c>: an adapter folded into its base model, written as a complete checkpoint folder.</summary>
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
        var model = TrainableModels.Load(modelDir, dtype, device);                 // any family: decoder-only or T5
        var peft = PeftModel.LoadAdapter(model.Host, adapterDir);
        peft.Merge();
        OutputFolder.Write(outDir, force, inputs, dir =>
        {
            model.SaveFull(dir);
            ModelFolder.CopyTokenizerFiles(modelDir, dir);
        });
        return (peft.Method.Kind, peft.Warnings);
    }
}
