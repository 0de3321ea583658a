using System.Text;

namespace PeftLab.Synthetic;

/// <summary>Options for <see cref="SyntheticCorpus"/>.</summary>
/// <param name="Seed">Seed of the corpus streams (kept apart from the suite's streams by a stream label).</param>
/// <param name="Documents">Number of documents (1..1000000).</param>
/// <param name="MinSentencesPerDocument">Fewest sentences in a document (at least 1).</param>
/// <param name="MaxSentencesPerDocument">Most sentences in a document (at least the minimum, at most 100).</param>
/// <param name="Suite">The suite the corpus must stay disjoint from; null means the default <see cref="SyntheticSuiteOptions"/>.</param>
public sealed record CorpusOptions(
    ulong Seed = 977,
    int Documents = 5000,
    int MinSentencesPerDocument = 3,
    int MaxSentencesPerDocument = 8,
    SyntheticSuiteOptions? Suite = null)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the offending option.</summary>
    public void Validate()
    {
        if (Documents is < 1 or > 1_000_000)
            throw new ArgumentOutOfRangeException(nameof(Documents), Documents, "CorpusOptions.Documents must be between 1 and 1000000");
        if (MinSentencesPerDocument < 1)
            throw new ArgumentOutOfRangeException(nameof(MinSentencesPerDocument), MinSentencesPerDocument, "CorpusOptions.MinSentencesPerDocument must be at least 1");
        if (MaxSentencesPerDocument < MinSentencesPerDocument || MaxSentencesPerDocument > 100)
            throw new ArgumentOutOfRangeException(nameof(MaxSentencesPerDocument), MaxSentencesPerDocument,
                $"CorpusOptions.MaxSentencesPerDocument must be between MinSentencesPerDocument ({MinSentencesPerDocument}) and 100");
        (Suite ?? new SyntheticSuiteOptions()).Validate();
    }
}

/// <summary>
/// Pretraining documents built from the same primitives as <see cref="SyntheticSuite"/>, so a tiny base model can
/// learn the operations before instruction tuning: half exercise sheets (a train task's definition with worked
/// questions and answers), a quarter free-text paragraphs ("Reversing the letters of 'bakom' gives 'mokab'.") and a
/// quarter copy drills (train-task inputs said twice).
/// Only train-task pipelines are verbalised, so no test-task composition is shown. Words are pseudo-words that the
/// suite never uses, sequences start from other values or steps, the random streams differ from the
/// suite's, and any sentence that still contains a suite input (instance or example, bounded by non-alphanumeric
/// characters; see <see cref="IsExemptInput"/> for the one exemption) is discarded.
/// </summary>
public static class SyntheticCorpus
{
    private const ulong CorpusStream = 0xC0_4B05;
    private const int SentenceAttempts = 30;

    /// <summary>Generates the documents; none contains a newline.</summary>
    public static IReadOnlyList<string> Generate(CorpusOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var guard = new ExclusionGuard(SuiteInputs(options.Suite ?? new SyntheticSuiteOptions()));
        var sources = TaskCatalog.All.Where(s => s.Split == TaskSplit.Train).ToArray();
        var rng = SplitMix64.Derive(options.Seed, CorpusStream);
        var docs = new List<string>(options.Documents);
        var sb = new StringBuilder();
        while (docs.Count < options.Documents)
        {
            sb.Clear();
            var doc = rng.Next(4) switch
            {
                0 or 1 => ExerciseSheet(rng.Pick(sources), rng, options, guard, sb),
                2 => Paragraph(sources, rng, options, guard, sb),
                _ => CopyDrill(sources, rng, options, guard, sb),
            };
            // Pieces were checked one by one; a match across a boundary would need an input holding ". ".
            if (doc is not null && !guard.Hits(doc)) docs.Add(doc);
        }
        return docs;
    }

    /// <summary>A paragraph that dwells on one to three operations, as a paragraph about them would; null when empty.</summary>
    private static string? Paragraph(TaskSpec[] sources, SplitMix64 rng, CorpusOptions options, ExclusionGuard guard, StringBuilder sb)
    {
        var topics = Enumerable.Range(0, rng.Range(1, 3)).Select(_ => rng.Pick(sources)).ToArray();
        var sentences = rng.Range(options.MinSentencesPerDocument, options.MaxSentencesPerDocument);
        for (var i = 0; i < sentences; i++)
        {
            var spec = rng.Pick(topics);
            if (Clean(spec, rng, guard, t => Verbalise(spec, t, rng)) is not { } sentence) continue;
            if (sb.Length > 0) sb.Append(' ');
            sb.Append(sentence);
        }
        return sb.Length > 0 ? sb.ToString() : null;
    }

    /// <summary>
    /// An exercise sheet: a train task's definition (the suite's own wording) followed by worked questions and answers,
    /// "Exercise: {definition} Question: {input} Answer: {output}. Question: ...". Half the documents are sheets. A base
    /// that has read instructions beside their results learns from a short tuning run what the SuperNI prompt (whose
    /// template words differ: "Definition:", "Input:", "Output:") asks for, instead of spending the run on the mapping
    /// from instruction words to operations; free text alone left full finetuning near the untuned score. Test tasks'
    /// definitions never appear (only train tasks are drawn), and pairs with a suite input are dropped like sentences.
    /// Null when no pair could be written.
    /// </summary>
    private static string? ExerciseSheet(TaskSpec spec, SplitMix64 rng, CorpusOptions options, ExclusionGuard guard, StringBuilder sb)
    {
        sb.Append("Exercise: ").Append(spec.Definition);
        var questions = rng.Range(options.MinSentencesPerDocument, options.MaxSentencesPerDocument);
        var written = 0;
        for (var i = 0; i < questions; i++)
        {
            if (Clean(spec, rng, guard, t => $" Question: {t.Input.Render()} Answer: {t.Output.Render()}.") is not { } pair) continue;
            sb.Append(pair);
            written++;
        }
        return written > 0 ? sb.ToString() : null;
    }

    /// <summary>
    /// A copy drill: train-task inputs, each said twice ("Once more: {input} Again: {input}."); a quarter of the
    /// documents. Nearly every suite operation starts by reading tokens out of its input, and a base pretrained on
    /// sheets and paragraphs alone (corpus v3, 3000 steps) could not do even that: given a worked example, it answered
    /// the name field of "name: Ben; age: 54; city: Lagos" with "Seve". Null when no line could be written.
    /// </summary>
    private static string? CopyDrill(TaskSpec[] sources, SplitMix64 rng, CorpusOptions options, ExclusionGuard guard, StringBuilder sb)
    {
        var lines = rng.Range(options.MinSentencesPerDocument, options.MaxSentencesPerDocument);
        for (var i = 0; i < lines; i++)
        {
            var spec = rng.Pick(sources);
            if (Clean(spec, rng, guard, t => $"Once more: {t.Input.Render()} Again: {t.Input.Render()}.") is not { } line) continue;
            if (sb.Length > 0) sb.Append(' ');
            sb.Append(line);
        }
        return sb.Length > 0 ? sb.ToString() : null;
    }

    /// <summary>The first of up to <see cref="SentenceAttempts"/> drawn traces whose rendering holds no suite input, or null.</summary>
    private static string? Clean(TaskSpec spec, SplitMix64 rng, ExclusionGuard guard, Func<Trace, string> render)
    {
        for (var attempt = 0; attempt < SentenceAttempts; attempt++)
        {
            var text = render(TaskGenerator.Draw(spec, rng, Vocabulary.Corpus, null, null));
            if (!guard.Hits(text)) return text;
        }
        return null;
    }

    /// <summary>Writes the documents to <paramref name="path"/>, one per line, UTF-8 without BOM, "\n" line ends.</summary>
    public static void Write(string path, CorpusOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var docs = Generate(options);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllText(path, string.Concat(docs.Select(d => d + "\n")), new UTF8Encoding(false));
    }

    /// <summary>Every input of the suite (instances and examples) that the corpus must not contain.</summary>
    internal static IEnumerable<string> SuiteInputs(SyntheticSuiteOptions suite) =>
        // every category's inputs, so a base's corpus (and its weights) does not depend on which categories a study keeps
        SyntheticSuite.Generate(suite with { Categories = null }).SelectMany(t =>
            t.Instances.Select(i => i.Input).Concat(t.PositiveExamples.Select(e => e.Input)).Concat(t.NegativeExamples.Select(e => e.Input)));

    /// <summary>
    /// True when an input is exempt from the disjointness rule: one or two bare numbers ("64", "31 30") are vocabulary,
    /// not instances; every countdown or list of numbers contains such pairs.
    /// </summary>
    public static bool IsExemptInput(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var tokens = input.Split(' ');
        return tokens.Length <= 2 && tokens.All(t => t.Length > 0 && t.All(char.IsAsciiDigit));
    }

    private static string Verbalise(TaskSpec spec, Trace t, SplitMix64 rng)
    {
        var endsInLabel = spec.Steps[^1].Labels is not null;
        var choice = rng.Next(endsInLabel ? 2 : 3);
        if (choice == 2)
        {
            var how = spec.Steps.Count == 1
                ? spec.Steps[0].Instr
                : "first " + string.Join(", then ", spec.Steps.Select(s => s.Instr));
            return $"If you {how}, '{t.Input.Render()}' becomes '{t.Output.Render()}'.";
        }
        var parts = new List<string>(spec.Steps.Count);
        var prev = t.Input;
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            var (a, b) = (prev.Render(), t.Values[i].Render());
            parts.Add(choice == 0 ? spec.Steps[i].ExplainWith(a, b) : spec.Steps[i].FactWith(a, b));
            prev = t.Values[i];
        }
        return string.Join(" ", parts.Select(CapitaliseSentence));
    }

    private static string CapitaliseSentence(string s) => s.Length > 0 && char.IsAsciiLetterLower(s[0]) ? char.ToUpperInvariant(s[0]) + s[1..] : s;

    /// <summary>Finds suite inputs inside text, at positions bounded by non-alphanumeric characters.</summary>
    private sealed class ExclusionGuard
    {
        private readonly HashSet<string> _inputs;
        private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _lookup;
        private readonly bool[] _lengths;
        private readonly int _maxLen;

        public ExclusionGuard(IEnumerable<string> inputs)
        {
            _inputs = new HashSet<string>(inputs.Where(i => !IsExemptInput(i)), StringComparer.Ordinal);
            _lookup = _inputs.GetAlternateLookup<ReadOnlySpan<char>>();
            _maxLen = _inputs.Count == 0 ? 0 : _inputs.Max(i => i.Length);
            _lengths = new bool[_maxLen + 1];
            foreach (var i in _inputs) _lengths[i.Length] = true;
        }

        public bool Hits(string text)
        {
            var span = text.AsSpan();
            for (var a = 0; a < span.Length; a++)
            {
                if (a > 0 && char.IsAsciiLetterOrDigit(span[a - 1])) continue;
                var limit = Math.Min(span.Length, a + _maxLen);
                for (var b = a + 1; b <= limit; b++)
                {
                    if (b < span.Length && char.IsAsciiLetterOrDigit(span[b])) continue;
                    if (_lengths[b - a] && _lookup.Contains(span[a..b])) return true;
                }
            }
            return false;
        }
    }
}
