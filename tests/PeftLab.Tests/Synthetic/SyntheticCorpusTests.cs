using System.Text;
using PeftLab.Synthetic;

namespace PeftLab.Tests.Synthetic;

public sealed class SyntheticCorpusTests
{
    private static readonly CorpusOptions Small = new(Documents: 1500, Suite: new SyntheticSuiteOptions(InstancesPerTask: 200));

    private static readonly Lazy<IReadOnlyList<string>> SmallCorpus = new(() => SyntheticCorpus.Generate(Small));

    [Fact]
    public void Corpus_IsFreeTextBuiltFromThePrimitives()
    {
        var docs = SmallCorpus.Value;
        Assert.Equal(Small.Documents, docs.Count);
        Assert.All(docs, d =>
        {
            Assert.False(string.IsNullOrWhiteSpace(d));
            Assert.DoesNotContain('\n', d);
            Assert.All(d, c => Assert.True(c is >= ' ' and < (char)0x7F, $"non-printable or non-ASCII char {(int)c}"));
            Assert.EndsWith(".", d);
        });
        var text = string.Join("\n", docs);
        // Sentences about several kinds of primitive appear.
        foreach (var phrase in new[] { "spelled backwards", "Reversing the letters of", "The sum of", "in uppercase", "The even numbers in", "plus" })
            Assert.Contains(phrase, text);
        Assert.True(docs.Average(d => d.Length) > 100);
        // Rule outcomes are not one-sided (numbers keep their ranges, so "greater than 50" is sometimes false).
        Assert.Contains("above 50? 'no'", text);
        Assert.Contains("above 50? 'yes'", text);
    }

    [Fact]
    public void Corpus_NeverContainsAnInstructionSuiteInput()
    {
        var docs = SmallCorpus.Value;
        var corpus = string.Join("\n", docs);
        // Index the starts of alphanumeric tokens that follow a non-alphanumeric character (or the start).
        var starts = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var i = 0; i < corpus.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(corpus[i]) || (i > 0 && char.IsAsciiLetterOrDigit(corpus[i - 1]))) continue;
            var j = i;
            while (j < corpus.Length && char.IsAsciiLetterOrDigit(corpus[j])) j++;
            var token = corpus[i..j];
            if (!starts.TryGetValue(token, out var list)) starts[token] = list = [];
            list.Add(i);
        }

        var checkedInputs = 0;
        foreach (var task in SyntheticSuite.Generate(Small.Suite!))
        {
            var inputs = task.Instances.Select(i => i.Input).Concat(task.PositiveExamples.Select(e => e.Input));
            foreach (var input in inputs)
            {
                // One or two bare numbers ("64", "31 30") are vocabulary, exempt by design: every countdown contains such pairs.
                var tokens = input.Split(' ');
                var exempt = tokens.Length <= 2 && tokens.All(t => t.Length > 0 && t.All(char.IsAsciiDigit));
                Assert.Equal(exempt, SyntheticCorpus.IsExemptInput(input));
                if (exempt) continue;
                Assert.True(char.IsAsciiLetterOrDigit(input[0]), $"{task.Info.Name}: input '{input}' starts with punctuation; extend this check");
                var j = 0;
                while (j < input.Length && char.IsAsciiLetterOrDigit(input[j])) j++;
                checkedInputs++;
                if (!starts.TryGetValue(input[..j], out var positions)) continue;
                foreach (var p in positions)
                {
                    var end = p + input.Length;
                    var hit = end <= corpus.Length && string.CompareOrdinal(corpus, p, input, 0, input.Length) == 0
                              && (end == corpus.Length || !char.IsAsciiLetterOrDigit(corpus[end]));
                    Assert.False(hit, $"corpus repeats input '{input}' of {task.Info.Name} at offset {p}");
                }
            }
        }
        Assert.True(checkedInputs > 30_000, $"only {checkedInputs} inputs checked");
    }

    [Fact]
    public void Corpus_NeverVerbalisesATestTaskComposition()
    {
        // Chains are verbalised as "If you first A, then B, ..." with the steps' instructions; no test-task pair may show up
        // as one chain. A test task's definition gives its instruction sequence.
        var text = string.Join("\n", SmallCorpus.Value);
        var checkedChains = 0;
        foreach (var t in SyntheticSuite.Describe(new SyntheticSuiteOptions()).Where(i => i.Split == TaskSplit.Test))
        {
            string chain;
            var two = t.Definition.IndexOf(" First ", StringComparison.Ordinal);
            var many = t.Definition.IndexOf("Apply these steps in order: first ", StringComparison.Ordinal);
            if (two >= 0)
                chain = t.Definition[(two + 7)..SentenceEnd(t.Definition, two)];
            else
            {
                Assert.True(many >= 0, $"unexpected definition form: {t.Definition}");
                var body = t.Definition[(many + 34)..SentenceEnd(t.Definition, many)];
                chain = body.Replace("; then ", ", then ", StringComparison.Ordinal).Replace("; finally ", ", then ", StringComparison.Ordinal);
            }
            Assert.DoesNotContain("If you first " + chain + ",", text);
            checkedChains++;
        }
        Assert.True(checkedChains >= 20);
        // The check is meaningful: train-task chains are verbalised in exactly this form.
        Assert.Contains("If you first ", text);
    }

    [Fact]
    public void Corpus_HalfTheDocumentsAreExerciseSheetsOfTrainTasksOnly()
    {
        var docs = SmallCorpus.Value;
        var sheets = docs.Where(d => d.StartsWith("Exercise: ", StringComparison.Ordinal)).ToArray();
        Assert.InRange(sheets.Length, docs.Count * 0.4, docs.Count * 0.6);
        var tasks = SyntheticSuite.Describe(new SyntheticSuiteOptions());
        var train = tasks.Where(t => t.Split == TaskSplit.Train).Select(t => "Exercise: " + t.Definition + " Question: ").ToArray();
        Assert.All(sheets, d => Assert.Contains(train, prefix => d.StartsWith(prefix, StringComparison.Ordinal)));
        // no test task's instruction is ever shown with its answers
        var text = string.Join("\n", docs);
        Assert.All(tasks.Where(t => t.Split == TaskSplit.Test), t => Assert.DoesNotContain(t.Definition, text));
        // the worked answers are the operation's: an uppercase sheet answers with the question in capitals
        var upper = sheets.First(d => d.StartsWith("Exercise: " + tasks.Single(t => t.Name.EndsWith("_uppercase_word", StringComparison.Ordinal)).Definition, StringComparison.Ordinal));
        var first = upper[(upper.IndexOf(" Question: ", StringComparison.Ordinal) + 11)..];
        var (question, answer) = (first[..first.IndexOf(" Answer: ", StringComparison.Ordinal)], first[(first.IndexOf(" Answer: ", StringComparison.Ordinal) + 9)..first.IndexOf('.')]);
        Assert.Equal(question.ToUpperInvariant(), answer);
    }

    [Fact]
    public void Corpus_AQuarterOfTheDocumentsAreCopyDrillsOfTrainTaskInputs()
    {
        var docs = SmallCorpus.Value;
        var drills = docs.Where(d => d.StartsWith("Once more: ", StringComparison.Ordinal)).ToArray();
        Assert.InRange(drills.Length, docs.Count * 0.18, docs.Count * 0.32);
        foreach (var line in drills.SelectMany(d => d.Split(". Once more: ")))
        {
            var body = line.StartsWith("Once more: ", StringComparison.Ordinal) ? line[11..] : line;
            var parts = body.TrimEnd('.').Split(" Again: ");
            Assert.Equal(2, parts.Length);
            Assert.Equal(parts[0], parts[1]);
        }
    }

    [Fact]
    public void Corpus_WordsAndSequencesHaveTheSuitesStatistics()
    {
        // What a base learns on corpus words must carry over to suite words: every letter the suite's inputs use, and
        // double letters, occur in the corpus's worked questions (corpus v2's consonant-vowel words had no c, h, j, q,
        // w, x, y and no double letters, and its tuned models could not copy "Anna").
        var sheets = SmallCorpus.Value.Where(d => d.StartsWith("Exercise: ", StringComparison.Ordinal)).ToArray();
        var questions = sheets.SelectMany(d => d.Split(" Question: ").Skip(1).Select(q => q[..q.IndexOf(" Answer: ", StringComparison.Ordinal)])).ToArray();
        var corpusWords = questions.SelectMany(q => q.Split(' ')).Where(w => w.Length > 0 && w.All(char.IsAsciiLetter)).Select(w => w.ToLowerInvariant()).ToHashSet();
        var suiteWords = SyntheticSuite.Generate(Small.Suite!).SelectMany(t => t.Instances).SelectMany(i => i.Input.Split(' ', ',', ':'))
            .Where(w => w.Length > 0 && w.All(char.IsAsciiLetter)).Select(w => w.ToLowerInvariant()).ToHashSet();
        var missing = suiteWords.SelectMany(w => w).Distinct().Where(c => !corpusWords.Any(w => w.Contains(c))).ToArray();
        Assert.True(missing.Length == 0, "letters of suite inputs that no corpus question uses: " + new string(missing));
        Assert.Contains(corpusWords, w => w.Zip(w.Skip(1)).Any(p => p.First == p.Second));
        Assert.Contains(corpusWords, w => w.Contains("ch", StringComparison.Ordinal));
        // ... yet no corpus word is one the suite could draw
        Assert.DoesNotContain(corpusWords, w => PeftLab.Synthetic.Vocabulary.Reserved.Contains(w) && !PeftLab.Synthetic.Vocabulary.TableWords.Contains(w));

        // Sequences start where the suite's do (a Fibonacci-like sequence from two numbers of 1..9): v2 started them at
        // 10..18. Drawn from the corpus vocabulary directly: with 81 possible starts, the corpus itself drops nearly
        // every such question as a suite input.
        var fib = PeftLab.Synthetic.TaskCatalog.All.Single(t => t.Slug == "next_in_fibonacci_sequence");
        var rng = new PeftLab.Synthetic.SplitMix64(7);
        var starts = Enumerable.Range(0, 200)
            .Select(_ => PeftLab.Synthetic.TaskGenerator.Draw(fib, rng, PeftLab.Synthetic.Vocabulary.Corpus, null, null).Input.Render())
            .Select(q => q.Split(' ')[..2].Select(int.Parse).ToArray()).ToArray();
        Assert.All(starts, s => Assert.All(s, n => Assert.InRange(n, 1, 9)));
        Assert.True(starts.Select(s => s[0] * 10 + s[1]).Distinct().Count() > 40, "the corpus draws too few distinct starts");
    }

    /// <summary>End of the sentence starting at <paramref name="from"/> (definitions end with a period).</summary>
    private static int SentenceEnd(string text, int from)
    {
        var end = text.IndexOf(". ", from, StringComparison.Ordinal);
        return end >= 0 ? end : text.Length - 1;
    }

    [Fact]
    public void Corpus_IsDeterministicAndSeedDependent()
    {
        var a = SyntheticCorpus.Generate(Small with { Documents = 200 });
        var b = SyntheticCorpus.Generate(Small with { Documents = 200 });
        var c = SyntheticCorpus.Generate(Small with { Documents = 200, Seed = Small.Seed + 1 });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(a, SmallCorpus.Value.Take(200));
    }

    [Fact]
    public void Write_PutsOneDocumentPerLine()
    {
        var dir = TestPaths.NewTempDir("peftlab-synth-corpus");
        try
        {
            var path = Path.Combine(dir, "sub", "corpus.txt");
            var options = Small with { Documents = 50 };
            SyntheticCorpus.Write(path, options);
            var bytes = File.ReadAllBytes(path);
            Assert.NotEqual(0xEF, bytes[0]);
            var text = Encoding.UTF8.GetString(bytes);
            Assert.DoesNotContain('\r', text);
            Assert.EndsWith("\n", text);
            Assert.Equal(SmallCorpus.Value.Take(50), text.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Options_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticCorpus.Generate(new CorpusOptions(Documents: 0)));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticCorpus.Generate(new CorpusOptions(MinSentencesPerDocument: 5, MaxSentencesPerDocument: 4)));
        Assert.Contains("MaxSentencesPerDocument", ex.Message);
    }
}
