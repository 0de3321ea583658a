namespace PeftLab.Training;

/// <summary>Which trainable tensors weight decay applies to.</summary>
public static class WeightDecayRule
{
    /// <summary>
    /// Matrices (rank ≥ 2) decay; vectors — biases, norm gains, (IA)3 scales, DoRA magnitudes — do not, and neither do
    /// embedding tables or prompt-tuning's virtual-token table, whose rows are looked up rather than multiplied.
    /// <paramref name="decayAll"/> (<c>optim.decay_all</c>) decays every tensor.
    /// </summary>
    public static bool Decays(string name, long rank, bool decayAll) =>
        decayAll || (rank >= 2 && !name.Contains("embed", StringComparison.Ordinal) && !name.StartsWith("prompt_encoder", StringComparison.Ordinal));
}

/// <summary>LoRA+'s parameter groups (PEFT's <c>create_loraplus_optimizer</c>, without its embedding group: PeftLab's LoRA wraps linear layers only).</summary>
public static class LoraPlusRule
{
    /// <summary>
    /// The multiple of the step's learning rate a trainable tensor gets: <paramref name="ratio"/> for LoRA's B
    /// matrices (<c>lora_B</c> in the name) and for vectors (biases, DoRA magnitudes), 1 for the rest; 1 for all without a ratio.
    /// </summary>
    public static double LearningRateScale(string name, long rank, double? ratio) =>
        ratio is double r && (name.Contains("lora_B", StringComparison.Ordinal) || rank == 1) ? r : 1;

    /// <summary>Refuses a ratio for a run with no LoRA B matrix to scale (it would only speed up vectors).</summary>
    /// <exception cref="ArgumentException">A ratio is set and no trainable tensor is a lora_B.</exception>
    public static void Check(IEnumerable<string> trainable, double? ratio)
    {
        if (ratio is not null && !trainable.Any(n => n.Contains("lora_B", StringComparison.Ordinal)))
            throw new ArgumentException("optim.loraplus_lr_ratio: the method has no lora_B matrices (LoRA+ raises the learning rate of LoRA's B); remove the key or use a LoRA method");
    }
}
