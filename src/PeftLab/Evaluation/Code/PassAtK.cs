namespace PeftLab.Evaluation.Code;

/// <summary>The unbiased pass@k estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on Code").</summary>
public static class PassAtK
{
    /// <summary>
    /// The probability that at least one of <paramref name="k"/> samples drawn without replacement from
    /// <paramref name="n"/> generations, <paramref name="c"/> of them correct, is correct: 1 − C(n−c, k) / C(n, k),
    /// computed as the numerically stable product 1 − ∏_{i=n−c+1}^{n} (1 − k / i); 1 when n − c &lt; k.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">k is not in 1..n, or c is not in 0..n.</exception>
    public static double Estimate(int n, int c, int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(k, n);
        ArgumentOutOfRangeException.ThrowIfNegative(c);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(c, n);
        if (n - c < k) return 1.0;
        double fail = 1.0;
        for (int i = n - c + 1; i <= n; i++) fail *= 1.0 - (double)k / i;
        return 1.0 - fail;
    }
}
