namespace PeftLab.Synthetic;

/// <summary>Input, intermediate values and final output of one run of a task pipeline.</summary>
internal sealed record Trace(Val Input, IReadOnlyList<Val> Values, IReadOnlyList<string> References)
{
    public Val Output => Values[^1];
}

/// <summary>Generates examples and instances of one <see cref="TaskSpec"/> from seeded streams.</summary>
internal static class TaskGenerator
{
    // Stream labels keep the suite's random streams apart from each other and from the corpus.
    internal const ulong SuiteStream = 0x5EED_5017E;
    private const ulong ExampleStream = 1, InstanceStream = 2, IdStream = 3, NegativeStream = 4;

    private const int MaxDrawAttempts = 2000;
    private const int UniqueAttempts = 40;
    private const int LabelAttempts = 400;

    /// <summary>Runs the pipeline on an input; null when some step does not apply or produces an empty value.</summary>
    public static Trace? Run(TaskSpec spec, Val input)
    {
        var values = new List<Val>(spec.Steps.Count);
        var current = input;
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            var step = spec.Steps[i];
            var next = step.Apply(current);
            if (next is null || next.IsEmpty) return null;
            values.Add(next);
            if (i == spec.Steps.Count - 1)
            {
                var refs = new List<string> { next.Render() };
                if (step.Alternatives is { } alt)
                    foreach (var a in alt(current))
                        if (a.Length > 0 && !refs.Contains(a)) refs.Add(a);
                return new Trace(input, values, refs);
            }
            current = next;
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>
    /// Draws inputs until the pipeline applies. Optionally prefers a label and an input not in <paramref name="used"/>
    /// (both given up after a while, for small input spaces) and always avoids inputs in <paramref name="reserved"/>.
    /// </summary>
    public static Trace Draw(TaskSpec spec, SplitMix64 rng, Vocabulary vocab, string? wantLabel, ISet<string>? used, ISet<string>? reserved = null)
    {
        Trace? fallback = null;
        for (var attempt = 0; attempt < MaxDrawAttempts; attempt++)
        {
            var trace = Run(spec, spec.Gen.Draw(rng, vocab));
            if (trace is null) continue;
            if (reserved is not null && reserved.Contains(trace.Input.Render())) continue;
            fallback ??= trace;
            if (wantLabel is not null && attempt < LabelAttempts && trace.References[0] != wantLabel) continue;
            if (used is not null && attempt < UniqueAttempts && used.Contains(trace.Input.Render())) continue;
            return trace;
        }
        return fallback ?? throw new InvalidOperationException(
            $"internal error: synthetic task '{spec.Name}' produced no valid input (other than its examples) in {MaxDrawAttempts} draws");
    }

    public static SyntheticTask Generate(TaskSpec spec, SyntheticSuiteOptions options, SyntheticTaskInfo info)
    {
        var labels = spec.Steps[^1].Labels;
        var used = new HashSet<string>(StringComparer.Ordinal);

        var exRng = SplitMix64.Derive(options.Seed, SuiteStream, (ulong)spec.Number, ExampleStream);
        var positives = new List<SyntheticExample>();
        for (var i = 0; i < options.PositiveExamplesPerTask; i++)
        {
            var t = Draw(spec, exRng, Vocabulary.Suite, labels?[i % labels.Length], used);
            used.Add(t.Input.Render());
            positives.Add(new SyntheticExample(t.Input.Render(), t.References[0], Explain(spec, t)));
        }

        var negatives = new List<SyntheticExample>();
        if (options.NegativeExamples)
        {
            var negRng = SplitMix64.Derive(options.Seed, SuiteStream, (ulong)spec.Number, NegativeStream);
            var t = Draw(spec, negRng, Vocabulary.Suite, null, used);
            if (NearMiss(spec, t) is { } neg)
            {
                used.Add(t.Input.Render());
                negatives.Add(neg);
            }
        }

        var exampleInputs = new HashSet<string>(used, StringComparer.Ordinal);
        var instRng = SplitMix64.Derive(options.Seed, SuiteStream, (ulong)spec.Number, InstanceStream);
        var idRng = SplitMix64.Derive(options.Seed, SuiteStream, (ulong)spec.Number, IdStream);
        var instances = new List<SyntheticInstance>(options.InstancesPerTask);
        for (var i = 0; i < options.InstancesPerTask; i++)
        {
            // Example inputs never reappear as instances; instances repeat only when the input space is exhausted.
            var t = Draw(spec, instRng, Vocabulary.Suite, labels?[i % labels.Length], used, exampleInputs);
            var input = t.Input.Render();
            used.Add(input);
            var id = $"{spec.IdPrefix}-{idRng.NextUInt64():x16}{idRng.NextUInt64():x16}";
            instances.Add(new SyntheticInstance(id, input, t.References));
        }
        return new SyntheticTask(info, positives, negatives, instances);
    }

    /// <summary>One sentence per step, naming the intermediate value it produces.</summary>
    public static string Explain(TaskSpec spec, Trace t)
    {
        var parts = new List<string>(spec.Steps.Count);
        var prev = t.Input;
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            parts.Add(spec.Steps[i].ExplainWith(prev.Render(), t.Values[i].Render()));
            prev = t.Values[i];
        }
        var text = string.Join(" ", parts);
        return t.References.Count > 1 ? text + " Other correct answers: " + string.Join("; ", t.References.Skip(1)) + "." : text;
    }

    /// <summary>A plausible wrong answer and why it is wrong, or null when none is clearly wrong.</summary>
    private static SyntheticExample? NearMiss(TaskSpec spec, Trace t)
    {
        var input = t.Input.Render();
        var correct = t.References[0];
        string? wrong = null, why = null;
        if (spec.Steps.Count >= 2 && t.Values[^2].Kind == t.Output.Kind)
        {
            wrong = t.Values[^2].Render();
            why = $"This output stops one step early: it forgets to {spec.Steps[^1].Instr}. The correct output is {correct}.";
        }
        else if (spec.Steps[^1].Labels is { } labels)
        {
            wrong = labels.First(l => l != correct);
            why = $"The rule gives {correct} for this input, not {wrong}.";
        }
        else if (t.Output.Kind == Kind.Number)
        {
            wrong = Val.Fmt(t.Output.N + 1);
            why = $"The output is off by one; the correct answer is {correct}.";
        }
        else if (t.Input.Kind == t.Output.Kind)
        {
            wrong = input;
            why = $"The output just repeats the input instead of applying the task. The correct output is {correct}.";
        }
        if (wrong is null || why is null || t.References.Contains(wrong)) return null;
        return new SyntheticExample(input, wrong, why);
    }
}
