using System.Text.Json;
using PeftLab.Data;

namespace PeftLab.Synthetic;

/// <summary>One synthetic harness task written by <see cref="HarnessSuite"/>.</summary>
/// <param name="Name">The task's name (its file is <c>Name.yaml</c>).</param>
/// <param name="OutputType">Its harness output type.</param>
/// <param name="Stands">The benchmark it stands in for.</param>
/// <param name="Test">Documents in its test split.</param>
/// <param name="Train">Documents in its train split (few-shot source).</param>
/// <param name="Group">The capability group it measures in an open-instruction study.</param>
public sealed record HarnessTaskInfo(string Name, string OutputType, string Stands, int Test, int Train, Training.CapabilityGroup Group);

/// <summary>
/// Offline counterparts of the open-instruction benchmarks, as lm-evaluation-harness task files over JSONL, so the
/// harness kinds run without downloads: multiple choice by log-likelihood (an MMLU-style knowledge quiz over the
/// synthetic suite's facts: animal sounds, colour fruits, opposites), arithmetic word problems with worked solutions
/// ending <c>#### N</c> (GSM8K-style, strict and flexible extraction), passages with extractive questions (TyDiQA-style,
/// token F1), a last-word cloze (LAMBADA-style log-likelihood), tiny Python functions with tests (HumanEval schema,
/// pass@1 in the sandbox) and open prompts with reference answers (AlpacaEval-style pairwise judging). Deterministic per seed.
/// </summary>
public static class HarnessSuite
{
    /// <summary>File name of the training mixture <see cref="Write"/> adds when asked.</summary>
    public const string MixtureFile = "mixture.jsonl";

    /// <summary>
    /// Writes the task files and their data into <paramref name="dir"/>; returns what it wrote. With
    /// <paramref name="mixturePerTask"/> &gt; 0 it also writes <see cref="MixtureFile"/>: that many conversations per task
    /// in chat <c>messages</c> form, drawn from a stream of their own (no document equal to a test document), the user
    /// turn the task's zero-shot prompt and the assistant turn its answer (the target after the target delimiter; for
    /// code the canonical solution; a loglikelihood target as it is) - the stand-ins' own instruction mixture, as Tulu's is for its evaluation suite.
    /// </summary>
    public static IReadOnlyList<HarnessTaskInfo> Write(string dir, ulong seed, int instances, int mixturePerTask = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(instances, 4);
        Directory.CreateDirectory(dir);
        var written = new List<HarnessTaskInfo>();
        var mixture = new List<string>();
        void Task(string name, string type, string stands, Training.CapabilityGroup group, string yaml, Func<DeterministicRng, Dictionary<string, object>> make)
        {
            var rng = DeterministicRng.ForStream((long)seed, "harness/" + name);
            var folder = Path.Combine(dir, name);
            Directory.CreateDirectory(folder);
            int train = Math.Max(8, instances / 4);
            // one draw order: train documents first, then test, so changing the count keeps the train documents
            var trainDocs = Enumerable.Range(0, train).Select(_ => make(rng)).ToArray();
            var testDocs = Enumerable.Range(0, instances).Select(_ => make(rng)).ToArray();
            File.WriteAllLines(Path.Combine(folder, "train.jsonl"), trainDocs.Select(d => JsonSerializer.Serialize(d)));
            File.WriteAllLines(Path.Combine(folder, "test.jsonl"), testDocs.Select(d => JsonSerializer.Serialize(d)));
            File.WriteAllText(Path.Combine(dir, name + ".yaml"), $"# synthetic stand-in for {stands}, written by peftlab data synth --harness\ntask: {name}\ndataset_path: {name}\n{yaml}");
            written.Add(new HarnessTaskInfo(name, type, stands, testDocs.Length, trainDocs.Length, group));
            if (mixturePerTask > 0) mixture.AddRange(Mixture(Path.Combine(dir, name + ".yaml"), testDocs, DeterministicRng.ForStream((long)seed, "harness-mixture/" + name), make, mixturePerTask));
        }

        Task("synth_mc", "multiple_choice", "MMLU (knowledge, multiple choice)", Training.CapabilityGroup.Knowledge,
            "output_type: multiple_choice\ntest_split: test\nfewshot_split: train\nfewshot_config:\n  sampler: first_n\nnum_fewshot: 3\n" +
            "doc_to_text: \"{{question}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\nD. {{choices[3]}}\\nAnswer:\"\n" +
            "doc_to_choice: [\"A\", \"B\", \"C\", \"D\"]\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n",
            rng =>
            {
                var (question, right, pool) = rng.NextInt(3) switch
                {
                    0 => Fact(rng, Vocabulary.AnimalSound, (a, _) => $"Which sound does a {a} make?"),
                    1 => Fact(rng, Vocabulary.ColorFruit, (c, _) => $"Which fruit is {c}?"),
                    _ => Fact(rng, Vocabulary.Opposites.Concat(Vocabulary.Opposites.Select(p => (p.B, p.A))).ToArray(), (w, _) => $"What is the opposite of {w}?"),
                };
                var choices = pool.Where(x => x != right).Distinct().OrderBy(_ => rng.NextUInt64()).Take(3).Append(right).OrderBy(_ => rng.NextUInt64()).ToArray();
                return new() { ["question"] = question, ["choices"] = choices, ["answer"] = Array.IndexOf(choices, right) };
            });

        Task("synth_arith", "generate_until", "GSM8K (arithmetic word problems with worked solutions)", Training.CapabilityGroup.Reasoning,
            "output_type: generate_until\ntest_split: test\nfewshot_split: train\nnum_fewshot: 2\n" +
            "doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_target: \"{{answer}}\"\n" +
            "metric_list:\n  - metric: exact_match\n    ignore_case: true\n    regexes_to_ignore: [\",\", \"\\\\$\", \"(?s).*#### \", \"\\\\.$\"]\n" +
            "generation_kwargs:\n  until: [\"Question:\", \"\\n\\n\"]\n  max_gen_toks: 48\n" +
            "filter_list:\n  - name: strict-match\n    filter:\n      - function: regex\n        regex_pattern: \"#### (\\\\-?[0-9\\\\.\\\\,]+)\"\n      - function: take_first\n" +
            "  - name: flexible-extract\n    filter:\n      - function: regex\n        group_select: -1\n        regex_pattern: \"(-?[$0-9.,]{2,})|(-?[0-9]+)\"\n      - function: take_first\n",
            rng =>
            {
                string who = Names[rng.NextInt(Names.Length)], thing = Vocabulary.Fruits[rng.NextInt(Vocabulary.Fruits.Length)] + "s";
                int a = 2 + rng.NextInt(30), b = 1 + rng.NextInt(20);
                bool buys = rng.NextInt(2) == 0 || b > a;
                int result = buys ? a + b : a - b;
                var question = buys ? $"{who} has {a} {thing} and buys {b} more. How many {thing} does {who} have now?"
                    : $"{who} has {a} {thing} and gives away {b}. How many {thing} does {who} have left?";
                var answer = $"{who} starts with {a} {thing} and {(buys ? "adds" : "takes away")} {b}: {a} {(buys ? "+" : "-")} {b} = {result}.\n#### {result}";
                return new() { ["question"] = question, ["answer"] = answer };
            });

        Task("synth_qa", "generate_until", "TyDiQA gold passage (extractive QA)", Training.CapabilityGroup.Knowledge,
            "output_type: generate_until\ntest_split: test\nfewshot_split: train\nnum_fewshot: 1\n" +
            "doc_to_text: \"Answer the following question based on the information in the given passage.\\n\\nPassage: {{context}}\\nQuestion: {{question}}\\nAnswer:\"\n" +
            "doc_to_target: \"{{answers.text[0]}}\"\nmetric_list:\n  - metric: f1\n  - metric: exact_match\n    ignore_case: true\n    ignore_punctuation: true\n" +
            "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 16\nfilter_list:\n  - name: answer\n    filter:\n      - function: remove_whitespace\n      - function: take_first\n",
            rng =>
            {
                string who = Names[rng.NextInt(Names.Length)], animal = Vocabulary.Animals[rng.NextInt(Vocabulary.Animals.Length)];
                string color = Vocabulary.Colors[rng.NextInt(Vocabulary.Colors.Length)], month = Vocabulary.Months[rng.NextInt(Vocabulary.Months.Length)];
                string pet = PetNames[rng.NextInt(PetNames.Length)];
                var context = $"{who} has a {color} {animal} called {pet}. {pet} was born in {month}. Every morning {who} feeds {pet} before school.";
                var (question, answer) = rng.NextInt(4) switch
                {
                    0 => ($"What is the name of {who}'s {animal}?", pet),
                    1 => ($"In which month was {pet} born?", month),
                    2 => ($"What colour is {pet}?", color),
                    _ => ($"What kind of animal is {pet}?", animal),
                };
                return new() { ["context"] = context, ["question"] = question, ["answers"] = new Dictionary<string, object> { ["text"] = new[] { answer } } };
            });

        Task("synth_cloze", "loglikelihood", "LAMBADA (last-word cloze, log-likelihood)", Training.CapabilityGroup.LongForm,
            "output_type: loglikelihood\ntest_split: test\ndoc_to_text: \"{{text.split(' ')[:-1]|join(' ')}}\"\ndoc_to_target: \"{{' '+text.split(' ')[-1]}}\"\n" +
            "metric_list:\n  - metric: perplexity\n  - metric: acc\n",
            rng =>
            {
                var (animal, sound) = Vocabulary.AnimalSound[rng.NextInt(Vocabulary.AnimalSound.Length)];
                string who = Names[rng.NextInt(Names.Length)];
                return new() { ["text"] = $"{who} listened to the {animal} in the yard. The {animal} said {sound}" };
            });

        Task("synth_code", "generate_until", "HumanEval (Python functions from a docstring, pass@1)", Training.CapabilityGroup.Coding,
            "output_type: generate_until\ntest_split: test\nunsafe_code: true\ndoc_to_text: \"{{prompt}}\"\ndoc_to_target: \"{{test}}\\ncheck({{entry_point}})\"\n" +
            "generation_kwargs:\n  until: [\"\\ndef\", \"\\nclass\", \"\\n#\", \"\\nif\", \"\\nprint\", \"\\n\\n\"]\n  max_gen_toks: 24\n" +
            "metric_list:\n  - metric: pass_at_k\n    k: [1]\nfilter_list:\n  - name: create_test\n    filter:\n      - function: prepend_prompt\n",
            rng => CodeProblem(rng));

        Task("synth_open", "generate_until", "AlpacaEval (open prompts against reference answers, pairwise judging)", Training.CapabilityGroup.LongForm,
            "output_type: generate_until\ntest_split: test\ndoc_to_text: \"{{instruction}}\\n\"\ndoc_to_target: \"{{output}}\"\n" +
            "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 32\nmetric_list:\n  - metric: win_rate\nfilter_list:\n  - name: answer\n    filter:\n      - function: remove_whitespace\n",
            rng =>
            {
                string who = Names[rng.NextInt(Names.Length)], animal = Vocabulary.Animals[rng.NextInt(Vocabulary.Animals.Length)];
                string color = Vocabulary.Colors[rng.NextInt(Vocabulary.Colors.Length)], pet = PetNames[rng.NextInt(PetNames.Length)];
                var (sound, fruit) = (Vocabulary.AnimalSound[rng.NextInt(Vocabulary.AnimalSound.Length)], Vocabulary.Fruits[rng.NextInt(Vocabulary.Fruits.Length)]);
                var (instruction, output) = rng.NextInt(3) switch
                {
                    0 => ($"Write one sentence about {who} and a {color} {animal} called {pet}.", $"{who} walks {pet}, a friendly {color} {animal}, to the park every day."),
                    1 => ($"Tell me what a {sound.Key} says, in one sentence.", $"A {sound.Key} says {sound.Value} when it wants attention."),
                    _ => ($"Describe a {fruit} to a child in one sentence.", $"A {fruit} is a sweet fruit you can eat for a snack."),
                };
                return new() { ["instruction"] = instruction, ["output"] = output, ["generator"] = "synthetic_reference", ["dataset"] = "synth_open" };
            });
        if (mixturePerTask > 0) File.WriteAllLines(Path.Combine(dir, MixtureFile), mixture);
        return written;
    }

    /// <summary>Conversations for one task's documents (see <see cref="Write"/>), skipping documents equal to a test document.</summary>
    private static IEnumerable<string> Mixture(string taskFile, IReadOnlyList<Dictionary<string, object>> testDocs, DeterministicRng rng,
        Func<DeterministicRng, Dictionary<string, object>> make, int count)
    {
        var task = Evaluation.Harness.HarnessTask.Load(taskFile);
        var test = testDocs.Select(d => JsonSerializer.Serialize(d)).ToHashSet(StringComparer.Ordinal);
        int made = 0;
        for (int tries = 0; made < count && tries < count * 20; tries++)
        {
            var json = JsonSerializer.Serialize(make(rng));
            if (test.Contains(json)) continue;
            using var parsed = JsonDocument.Parse(json);
            var doc = (IReadOnlyDictionary<string, object?>)Evaluation.Harness.HarnessData.FromJson(parsed.RootElement)!;
            // the answer as the task scores it: a choice or a generation after the target delimiter, a loglikelihood
            // target as it is (it carries its own space), code as the canonical body
            var answer = doc.TryGetValue("canonical_solution", out var code) && code is string solution ? solution
                : task.Spec.OutputType == Evaluation.Harness.HarnessOutputType.Loglikelihood ? task.TargetText(doc)
                : task.Spec.TargetDelimiter + Evaluation.Harness.HarnessEvaluator.AnswerText(task, doc);
            made++;
            yield return JsonSerializer.Serialize(new
            {
                messages = new[] { new { role = "user", content = Evaluation.Harness.HarnessEvaluator.Prompt(task, doc, []) }, new { role = "assistant", content = answer } },
            });
        }
    }

    /// <summary>
    /// A tiny Python function in HumanEval's schema: its signature and docstring, a one-line solution, and a check with
    /// three asserts whose expected values are computed here (right by construction; the tests run them in the sandbox).
    /// </summary>
    private static Dictionary<string, object> CodeProblem(DeterministicRng rng)
    {
        int k = 2 + rng.NextInt(9);
        int[] xs = [rng.NextInt(20), rng.NextInt(50) + 20, rng.NextInt(7) + 1];
        string word = Vocabulary.Animals[rng.NextInt(Vocabulary.Animals.Length)];
        string[] words = [Vocabulary.Fruits[rng.NextInt(Vocabulary.Fruits.Length)], Vocabulary.Colors[rng.NextInt(Vocabulary.Colors.Length)], word];
        static string Py(string s) => "'" + s + "'";
        static string PyBool(bool b) => b ? "True" : "False";
        var (name, args, doc, body, cases) = rng.NextInt(7) switch
        {
            0 => ($"add_{k}", "x", $"Return x plus {k}.", $"x + {k}", xs.Select(x => ($"{x}", $"{x + k}")).ToArray()),
            1 => ($"times_{k}", "x", $"Return x times {k}.", $"x * {k}", xs.Select(x => ($"{x}", $"{x * k}")).ToArray()),
            2 => ($"repeat_{word}", "n", $"Return the word '{word}' repeated n times.", $"'{word}' * n", xs.Select(x => ($"{x % 4}", Py(string.Concat(Enumerable.Repeat(word, x % 4))))).ToArray()),
            3 => ("first_letter", "s", "Return the first letter of s.", "s[0]", words.Select(w => (Py(w), Py(w[..1]))).ToArray()),
            4 => ("last_letter", "s", "Return the last letter of s.", "s[-1]", words.Select(w => (Py(w), Py(w[^1..]))).ToArray()),
            5 => ("shout", "s", "Return s in upper case.", "s.upper()", words.Select(w => (Py(w), Py(w.ToUpperInvariant()))).ToArray()),
            _ => ("is_even", "n", "Return whether n is even.", "n % 2 == 0", xs.Select(x => ($"{x}", PyBool(x % 2 == 0))).ToArray()),
        };
        var prompt = $"def {name}({args}):\n    \"\"\"{doc}\"\"\"\n";
        var test = "\n\ndef check(candidate):\n" + string.Concat(cases.Select(c => $"    assert candidate({c.Item1}) == {c.Item2}\n"));
        return new() { ["task_id"] = $"Synth/{name}", ["prompt"] = prompt, ["canonical_solution"] = $"    return {body}\n", ["test"] = test, ["entry_point"] = name };
    }

    private static (string Question, string Right, string[] Pool) Fact(DeterministicRng rng, (string Key, string Value)[] table, Func<string, string, string> ask)
    {
        var (key, value) = table[rng.NextInt(table.Length)];
        return (ask(key, value), value, table.Select(t => t.Value).ToArray());
    }

    private static readonly string[] Names = ["Tom", "Anna", "Ben", "Lily", "Sam", "Mia", "Max", "Zoe", "Leo", "Ella"];
    private static readonly string[] PetNames = ["Biscuit", "Pepper", "Noodle", "Ziggy", "Maple", "Otto", "Luna", "Pip"];
}
