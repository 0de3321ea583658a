namespace PeftLab.Synthetic;

/// <summary>
/// One operation tasks are composed from. <see cref="Id"/> names the operation independently of its parameter
/// (first_k_letters for "first 3 letters"), so compositions can be compared across tasks.
/// </summary>
/// <param name="Id">Operation name used in the "Primitives" record and for split checks.</param>
/// <param name="Instr">Imperative phrase for definitions, lowercase first letter ("reverse the order of the letters").</param>
/// <param name="Explain">Sentence for explanations and the corpus; "{0}" is the quoted input, "{1}" the quoted output.</param>
/// <param name="Fact">A second, differently worded sentence with the same placeholders, used by the corpus.</param>
/// <param name="Sigs">Accepted input kinds and the output kind for each.</param>
/// <param name="Apply">The operation; null when it does not apply to this value (the generator then redraws).</param>
/// <param name="Labels">For classification steps, the label set in the order the definition lists it.</param>
/// <param name="Components">For composite steps, the primitive ids they combine; otherwise just <see cref="Id"/>.</param>
/// <param name="Alternatives">Extra correct answers (rendered) when this is the last step, given the step's input.</param>
internal sealed record Primitive(
    string Id,
    string Instr,
    string Explain,
    string Fact,
    (Kind In, Kind Out)[] Sigs,
    Func<Val, Val?> Apply,
    string[]? Labels = null,
    string[]? Components = null,
    Func<Val, IEnumerable<string>>? Alternatives = null)
{
    /// <summary>The primitive ids this step contributes to a task's composition.</summary>
    public IReadOnlyList<string> ComponentIds => Components ?? [Id];

    /// <summary>The output kind for an input kind, or null when the step does not accept it.</summary>
    public Kind? OutKind(Kind input)
    {
        foreach (var (i, o) in Sigs)
            if (i == input) return o;
        return null;
    }

    public string ExplainWith(string input, string output) => Fill(Explain, input, output);

    public string FactWith(string input, string output) => Fill(Fact, input, output);

    private static string Fill(string template, string input, string output) =>
        template.Replace("{0}", "'" + input + "'", StringComparison.Ordinal).Replace("{1}", "'" + output + "'", StringComparison.Ordinal);
}
