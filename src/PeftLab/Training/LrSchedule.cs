namespace PeftLab.Training;

/// <summary>Learning-rate schedule shapes.</summary>
public enum ScheduleKind
{
    /// <summary>Warmup, then constant.</summary>
    Constant,
    /// <summary>Linear warmup, then linear decay to zero (the reference study's PEFT schedule).</summary>
    Linear,
    /// <summary>Linear warmup, then half-cosine decay to zero.</summary>
    Cosine,
}

/// <summary>Learning-rate schedules as small pure functions of the step.</summary>
public static class LrSchedule
{
    /// <summary>
    /// The rate for <paramref name="step"/> (0-based, the step about to be taken) of <paramref name="totalSteps"/>:
    /// warmup ramps (step+1)/warmup · peak; afterwards constant, linear or cosine decay over the remaining steps.
    /// </summary>
    public static double At(ScheduleKind kind, double peak, int step, int totalSteps, int warmupSteps)
    {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        if (kind == ScheduleKind.Constant) return peak;
        int decaySteps = Math.Max(1, totalSteps - warmupSteps);
        double progress = Math.Clamp((double)(step - warmupSteps) / decaySteps, 0, 1);
        return kind == ScheduleKind.Linear ? peak * (1 - progress) : peak * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    /// <summary>Warmup steps from an explicit count or a ratio of the total (explicit wins when &gt; 0).</summary>
    public static int WarmupSteps(int explicitSteps, double ratio, int totalSteps) =>
        explicitSteps > 0 ? explicitSteps : (int)Math.Ceiling(ratio * totalSteps);
}
