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
