namespace PeftLab.Training;

/// <summary>Stability and learning-speed signals, as pure functions over a run's metric series.</summary>
public static class LearningSignals
{
    /// <summary>
    /// Loss spikes: steps where the loss jumps and stays up, i.e. the step's loss and the mean of the
    /// <paramref name="window"/> losses from it on both exceed <paramref name="factor"/> × the exponential moving average
    /// of the losses before it. Each excursion counts once, at its first step; the last <paramref name="window"/> − 1
    /// steps cannot start one. A single
    /// batch is never a spike on its own: under length grouping one batch of long or hard targets scores 1.7× its
    /// neighbours in every method alike (the quickstart's seed-42 order at steps 82, 123, 154 and 187), and a
    /// single-batch rule marked most healthy runs as spiking, which made "unstable" meaningless.
    /// </summary>
    public static IReadOnlyList<int> Spikes(IReadOnlyList<(int Step, double Loss)> losses, double factor, double emaDecay = 0.9, int warmup = 5,
        int window = SpikeWindow)
    {
        window = Math.Max(1, window);
        var spikes = new List<int>();
        double? ema = null;
        bool inSpike = false;
        for (int i = 0; i < losses.Count; i++)
        {
            var (step, loss) = losses[i];
            if (!double.IsFinite(loss)) continue;
            if (ema is double e && i >= warmup && i + window <= losses.Count)
            {
                bool above = loss > factor * e && WindowMean(losses, i, window) > factor * e;
                if (above && !inSpike) spikes.Add(step);
                inSpike = above;
            }
            ema = ema is null ? loss : emaDecay * ema.Value + (1 - emaDecay) * loss;
        }
        return spikes;
    }

    /// <summary>Steps a spike must last, on average, to count (<see cref="Spikes"/>).</summary>
    public const int SpikeWindow = 5;

    private static double WindowMean(IReadOnlyList<(int Step, double Loss)> losses, int start, int window)
    {
        double sum = 0;
        int n = 0;
        for (int j = start; j < start + window; j++)
            if (double.IsFinite(losses[j].Loss)) { sum += losses[j].Loss; n++; }
        return n == 0 ? double.NaN : sum / n;
    }

    /// <summary>
    /// Is the run diverging at the last point: the last loss is non-finite, or the trailing mean of the last
    /// <paramref name="window"/> losses has stayed above <paramref name="factor"/> × the lowest such mean so far for
    /// <paramref name="patience"/> consecutive steps? Means, not single batches: under length grouping one batch of short
    /// targets can score a quarter of the typical loss, and a minimum over single-batch losses then flags a healthy run.
    /// </summary>
    public static string? Divergence(IReadOnlyList<double> losses, double factor, int patience, int window = DivergenceWindow)
    {
        if (losses.Count == 0) return null;
        if (!double.IsFinite(losses[^1])) return $"loss is {losses[^1]}";
        if (patience <= 0 || losses.Count <= patience) return null;
        window = Math.Max(1, window);
        double runningMin = double.PositiveInfinity, sum = 0, mean = 0;
        int above = 0;
        for (int i = 0; i < losses.Count; i++)
        {
            sum += losses[i];
            if (i >= window) sum -= losses[i - window];
            mean = sum / Math.Min(i + 1, window);
            if (mean > factor * runningMin) above++;
            else above = 0;
            runningMin = Math.Min(runningMin, mean);
        }
        return above >= patience
            ? $"mean loss of the last {Math.Min(window, losses.Count)} steps ({mean:G4}) above {factor}x its lowest ({runningMin:G4}) for {above} steps"
            : null;
    }

    /// <summary>Steps in the trailing mean that <see cref="Divergence"/> compares.</summary>
    public const int DivergenceWindow = 10;

    /// <summary>
    /// First step (and tokens) at which the validation score reaches each fraction of the final score; null where never reached.
    /// </summary>
    public static IReadOnlyDictionary<double, (int Step, long Tokens)?> StepsToFraction(
        IReadOnlyList<(int Step, long Tokens, double Score)> curve, IReadOnlyList<double> fractions)
    {
        var result = new Dictionary<double, (int, long)?>();
        if (curve.Count == 0) { foreach (var f in fractions) result[f] = null; return result; }
        double final = curve[^1].Score;
        foreach (var f in fractions)
        {
            var hit = curve.FirstOrDefault(c => c.Score >= f * final);
            result[f] = final <= 0 ? null : hit == default ? null : (hit.Step, hit.Tokens);
        }
        return result;
    }

    /// <summary>Area under the validation curve over normalised training progress (trapezoid; score units × fraction of training).</summary>
    public static double AreaUnderCurve(IReadOnlyList<(int Step, double Score)> curve, int totalSteps)
    {
        if (curve.Count == 0 || totalSteps <= 0) return 0;
        double area = 0;
        var points = curve.Prepend((0, curve[0].Score)).ToList();
        for (int i = 1; i < points.Count; i++)
            area += (points[i].Item1 - points[i - 1].Item1) / (double)totalSteps * (points[i].Item2 + points[i - 1].Item2) / 2;
        return area;
    }
}
