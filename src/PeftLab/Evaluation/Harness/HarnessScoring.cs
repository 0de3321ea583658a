using System.Text;
using System.Text.RegularExpressions;
using PeftLab.Data;

namespace PeftLab.Evaluation.Harness;

/// <summary>The harness's answer filters and generation metrics, as pure functions.</summary>
public static class HarnessScoring
{
    /// <summary>Cuts <paramref name="text"/> at the first occurrence of any stop sequence (the harness's <c>until</c>).</summary>
    public static string CutAtStop(string text, IReadOnlyList<string> until)
    {
        int cut = text.Length;
        foreach (var stop in until)
            if (stop.Length > 0 && text.IndexOf(stop, StringComparison.Ordinal) is var at and >= 0 && at < cut) cut = at;
        return text[..cut];
    }

    /// <summary>Runs one filter pipeline over a generated answer of <paramref name="doc"/> (prepend_prompt reads its <c>prompt</c> field).</summary>
    /// <exception cref="TemplateException">prepend_prompt on a document without a text <c>prompt</c> field.</exception>
    public static string Filter(IReadOnlyList<HarnessFilterStep> steps, string answer, IReadOnlyDictionary<string, object?>? doc = null)
    {
        foreach (var step in steps)
            answer = step.Function switch
            {
                HarnessFilterFunction.Regex => RegexFilter(step, answer),
                HarnessFilterFunction.TakeFirst => answer,
                HarnessFilterFunction.Lowercase => answer.ToLowerInvariant(),
                HarnessFilterFunction.Uppercase => answer.ToUpperInvariant(),
                HarnessFilterFunction.RemoveWhitespace => answer.StartsWith(' ') ? answer[1..] : answer,
                HarnessFilterFunction.PrependPrompt => DocPrompt(doc) + answer.Replace("```python\n", "", StringComparison.Ordinal),
                HarnessFilterFunction.ExtractCode => ExtractCode(answer),
                _ => throw new ArgumentOutOfRangeException(nameof(steps), step.Function, null),
            };
        return answer;
    }

    private static string DocPrompt(IReadOnlyDictionary<string, object?>? doc) =>
        doc is not null && doc.TryGetValue("prompt", out var p) && p is string text ? text
        : throw new TemplateException("filter prepend_prompt needs the document's text field 'prompt' (HumanEval's schema: prompt, canonical_solution, test, entry_point)" +
            (doc is null ? "" : $"; the document has {string.Join(", ", doc.Keys)}"));

    /// <summary>
    /// MBPP's code extraction: the body of the first <c>```lang … ```</c> block of <c>"```" + answer</c> (the answer
    /// continues an opened block), else of the answer with <c>```python</c> made a bare fence, else the whole answer;
    /// always after <c>from __future__ import annotations</c>.
    /// </summary>
    public static string ExtractCode(string answer)
    {
        const string annotations = "from __future__ import annotations\n";
        var fence = new Regex(@"```(?:\w+)?\n?(.*?)\n?```", RegexOptions.Singleline | RegexOptions.CultureInvariant);
        var m = fence.Match("```" + answer);
        if (!m.Success) m = fence.Match(answer.Replace("```python", "```", StringComparison.Ordinal));
        return annotations + (m.Success ? m.Groups[1].Value : answer);
    }

    /// <summary>
    /// Python's <c>re.findall</c>: with no group each match's text, with groups the groups (a tuple, of which the
    /// harness keeps the first non-empty); the match at <see cref="HarnessFilterStep.GroupSelect"/>, stripped.
    /// </summary>
    private static string RegexFilter(HarnessFilterStep step, string answer)
    {
        var regex = new Regex(step.RegexPattern!, RegexOptions.CultureInvariant);
        var found = regex.Matches(answer).Select(m =>
        {
            var groups = m.Groups.Cast<Group>().Skip(1).ToArray();
            return groups.Length == 0 ? m.Value : groups.Select(g => g.Success ? g.Value : "").FirstOrDefault(v => v.Length > 0) ?? "";
        }).ToArray();
        if (found.Length == 0) return step.Fallback;
        int k = step.GroupSelect < 0 ? found.Length + step.GroupSelect : step.GroupSelect;
        return k >= 0 && k < found.Length ? PyText.Strip(found[k]) : step.Fallback;
    }

    /// <summary>
    /// exact_match as the harness computes it (Hugging Face evaluate's): patterns removed, then case and ASCII
    /// punctuation dropped when asked, then equality; 1 or 0.
    /// </summary>
    public static double ExactMatch(string prediction, string reference, HarnessMetric options)
    {
        string Norm(string s)
        {
            foreach (var pattern in options.RegexesToIgnore ?? []) s = Regex.Replace(s, pattern, "");
            if (options.IgnoreCase) s = s.ToLowerInvariant();
            if (options.IgnorePunctuation) s = new string(s.Where(c => !PyText.IsPunctuation(c)).ToArray());
            return s;
        }
        return Norm(prediction) == Norm(reference) ? 1 : 0;
    }

    /// <summary>
    /// Token F1 of the SQuAD / TyDiQA official evaluation: both sides lower-cased, punctuation and the articles a, an,
    /// the removed, whitespace collapsed, then the harmonic mean of token precision and recall over the shared bag of
    /// tokens; 1 when both are empty.
    /// </summary>
    public static double TokenF1(string prediction, string reference)
    {
        var p = SquadTokens(prediction);
        var r = SquadTokens(reference);
        if (p.Length == 0 || r.Length == 0) return p.Length == r.Length ? 1 : 0;
        var counts = r.GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
        int common = 0;
        foreach (var t in p)
            if (counts.TryGetValue(t, out int c) && c > 0) { common++; counts[t] = c - 1; }
        if (common == 0) return 0;
        double precision = (double)common / p.Length, recall = (double)common / r.Length;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>The SQuAD answer normalisation, split into tokens.</summary>
    public static string[] SquadTokens(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s.ToLowerInvariant()) if (!PyText.IsPunctuation(c)) sb.Append(c);
        var noArticles = Regex.Replace(sb.ToString(), @"\b(a|an|the)\b", " ");
        return noArticles.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }
}
