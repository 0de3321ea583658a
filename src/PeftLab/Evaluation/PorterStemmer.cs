namespace PeftLab.Evaluation;

/// <summary>
/// The Porter stemmer exactly as NLTK 3.8 <c>PorterStemmer()</c> runs it in its default <c>NLTK_EXTENSIONS</c> mode,
/// which is what google-research <c>rouge_score</c> (and so the official SuperNI ROUGE-L) uses.
/// </summary>
/// <remarks>
/// Differences from Porter (1980) that this mode has and this class reproduces: a table of irregular forms
/// ("dying" → "die", "news" → "news", ...); words of one or two code points are returned unstemmed; "ies"/"ied" on a
/// four-letter word give "ie" ("ties" → "tie", "died" → "die") and longer "-ied" words lose "ed" ("studied" → "studi");
/// the *o (cvc) condition also holds for a two-letter vowel-consonant stem; step 1c turns y into i only after a
/// consonant that is not the first letter ("enjoy" stays, "happy" → "happi"); step 2 applies -alli → -al first and
/// re-runs itself, uses -bli → -ble instead of -abli → -able, and adds -fulli → -ful and -logi → -log (measure taken
/// with the l); in each rule list the first rule whose suffix matches decides, even when its condition fails.
/// Like NLTK, the irregular-form lookup uses the word as given and the steps use its Python lowercase, and indices
/// count Unicode code points (Python string semantics), so non-ASCII input behaves as in Python.
/// </remarks>
public static class PorterStemmer
{
    private static readonly Dictionary<string, string> IrregularForms = new(StringComparer.Ordinal)
    {
        ["sky"] = "sky", ["skies"] = "sky",
        ["dying"] = "die", ["lying"] = "lie", ["tying"] = "tie",
        ["news"] = "news",
        ["innings"] = "inning", ["inning"] = "inning",
        ["outings"] = "outing", ["outing"] = "outing",
        ["cannings"] = "canning", ["canning"] = "canning",
        ["howe"] = "howe",
        ["proceed"] = "proceed", ["exceed"] = "exceed", ["succeed"] = "succeed",
    };

    /// <summary>A suffix rule condition, evaluated on <c>word[..stemLength]</c> (the word minus the suffix).</summary>
    private delegate bool Condition(int[] word, int stemLength);

    private readonly record struct Rule(string Suffix, string Replacement, Condition? When);

    private static readonly Condition MeasurePositive = (w, n) => Measure(w, n) > 0;
    private static readonly Condition MeasureAboveOne = (w, n) => Measure(w, n) > 1;

    private static readonly Rule[] Step1aRules =
    [
        new("sses", "ss", null), new("ies", "i", null), new("ss", "ss", null), new("s", "", null),
    ];

    private static readonly Rule[] Step2Rules =
    [
        new("ational", "ate", MeasurePositive), new("tional", "tion", MeasurePositive),
        new("enci", "ence", MeasurePositive), new("anci", "ance", MeasurePositive),
        new("izer", "ize", MeasurePositive), new("bli", "ble", MeasurePositive),
        new("alli", "al", MeasurePositive), new("entli", "ent", MeasurePositive),
        new("eli", "e", MeasurePositive), new("ousli", "ous", MeasurePositive),
        new("ization", "ize", MeasurePositive), new("ation", "ate", MeasurePositive),
        new("ator", "ate", MeasurePositive), new("alism", "al", MeasurePositive),
        new("iveness", "ive", MeasurePositive), new("fulness", "ful", MeasurePositive),
        new("ousness", "ous", MeasurePositive), new("aliti", "al", MeasurePositive),
        new("iviti", "ive", MeasurePositive), new("biliti", "ble", MeasurePositive),
        new("fulli", "ful", MeasurePositive),
        // The l stays with the stem for the measure, so short stems such as "geo" qualify.
        new("logi", "log", (w, n) => Measure(w, n + 1) > 0),
    ];

    private static readonly Rule[] Step3Rules =
    [
        new("icate", "ic", MeasurePositive), new("ative", "", MeasurePositive), new("alize", "al", MeasurePositive),
        new("iciti", "ic", MeasurePositive), new("ical", "ic", MeasurePositive), new("ful", "", MeasurePositive),
        new("ness", "", MeasurePositive),
    ];

    private static readonly Rule[] Step4Rules =
    [
        new("al", "", MeasureAboveOne), new("ance", "", MeasureAboveOne), new("ence", "", MeasureAboveOne),
        new("er", "", MeasureAboveOne), new("ic", "", MeasureAboveOne), new("able", "", MeasureAboveOne),
        new("ible", "", MeasureAboveOne), new("ant", "", MeasureAboveOne), new("ement", "", MeasureAboveOne),
        new("ment", "", MeasureAboveOne), new("ent", "", MeasureAboveOne),
        new("ion", "", (w, n) => Measure(w, n) > 1 && w[n - 1] is 's' or 't'),
        new("ou", "", MeasureAboveOne), new("ism", "", MeasureAboveOne), new("ate", "", MeasureAboveOne),
        new("iti", "", MeasureAboveOne), new("ous", "", MeasureAboveOne), new("ive", "", MeasureAboveOne),
        new("ize", "", MeasureAboveOne),
    ];

    /// <summary>Stems one word (NLTK <c>PorterStemmer().stem(word)</c>, <c>to_lowercase=True</c>).</summary>
    public static string Stem(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        string lower = PythonText.Lower(word);
        if (IrregularForms.TryGetValue(word, out var irregular)) return irregular;
        if (PythonText.ToCodePoints(word).Length <= 2) return lower;

        int[] w = PythonText.ToCodePoints(lower);
        w = Step1a(w);
        w = Step1b(w);
        w = Step1c(w);
        w = Step2(w);
        w = ApplyFirstMatching(w, Step3Rules);
        w = ApplyFirstMatching(w, Step4Rules);
        w = Step5a(w);
        w = Step5b(w);
        return PythonText.FromCodePoints(w);
    }

    private static int[] Step1a(int[] w)
    {
        if (w.Length == 4 && EndsWith(w, "ies")) return Replace(w, 3, "ie");
        return ApplyFirstMatching(w, Step1aRules);
    }

    private static int[] Step1b(int[] w)
    {
        if (EndsWith(w, "ied")) return Replace(w, 3, w.Length == 4 ? "ie" : "i");
        if (EndsWith(w, "eed")) return Measure(w, w.Length - 3) > 0 ? Replace(w, 1, "") : w;

        int cut;
        if (EndsWith(w, "ed") && ContainsVowel(w, w.Length - 2)) cut = 2;
        else if (EndsWith(w, "ing") && ContainsVowel(w, w.Length - 3)) cut = 3;
        else return w;

        int[] s = Replace(w, cut, "");
        if (EndsWith(s, "at") || EndsWith(s, "bl") || EndsWith(s, "iz")) return Replace(s, 0, "e");
        if (EndsDoubleConsonant(s, s.Length))
            // A double consonant is decided here: "fall", "hiss", "fizz" keep both letters and get no final e.
            return s[^1] is 'l' or 's' or 'z' ? s : Replace(s, 1, "");
        return Measure(s, s.Length) == 1 && EndsCvc(s, s.Length) ? Replace(s, 0, "e") : s;
    }

    private static int[] Step1c(int[] w)
    {
        int n = w.Length - 1;
        return w.Length > 0 && w[^1] == 'y' && n > 1 && IsConsonant(w, n - 1) ? Replace(w, 1, "i") : w;
    }

    private static int[] Step2(int[] w)
    {
        if (EndsWith(w, "alli") && Measure(w, w.Length - 4) > 0) return Step2(Replace(w, 2, ""));
        return ApplyFirstMatching(w, Step2Rules);
    }

    private static int[] Step5a(int[] w)
    {
        if (!EndsWith(w, "e")) return w;
        int n = w.Length - 1, m = Measure(w, n);
        return m > 1 || (m == 1 && !EndsCvc(w, n)) ? Replace(w, 1, "") : w;
    }

    private static int[] Step5b(int[] w) =>
        EndsWith(w, "ll") && Measure(w, w.Length - 1) > 1 ? Replace(w, 1, "") : w;

    /// <summary>The first rule whose suffix matches decides: replaced if its condition holds, otherwise unchanged.</summary>
    private static int[] ApplyFirstMatching(int[] w, Rule[] rules)
    {
        foreach (var rule in rules)
        {
            if (!EndsWith(w, rule.Suffix)) continue;
            int stemLength = w.Length - rule.Suffix.Length;
            return rule.When is null || rule.When(w, stemLength) ? Replace(w, rule.Suffix.Length, rule.Replacement) : w;
        }
        return w;
    }

    private static bool IsVowelLetter(int c) => c is 'a' or 'e' or 'i' or 'o' or 'u';

    /// <summary>Porter's consonant: not a, e, i, o, u, and y only at the start or after a vowel.</summary>
    private static bool IsConsonant(int[] w, int i)
    {
        if (IsVowelLetter(w[i])) return false;
        if (w[i] != 'y') return true;
        // A run of y's alternates: find the start of the run, whose status depends only on the letter before it.
        int j = i;
        while (j > 0 && w[j - 1] == 'y') j--;
        bool startIsConsonant = j == 0 || IsVowelLetter(w[j - 1]);
        return (i - j) % 2 == 0 ? startIsConsonant : !startIsConsonant;
    }

    /// <summary>Porter's measure m of <c>w[..n]</c>: the number of vowel-to-consonant transitions.</summary>
    private static int Measure(int[] w, int n)
    {
        int m = 0;
        bool previousVowel = false;
        for (int i = 0; i < n; i++)
        {
            bool consonant = IsConsonant(w, i);
            if (consonant && previousVowel) m++;
            previousVowel = !consonant;
        }
        return m;
    }

    private static bool ContainsVowel(int[] w, int n)
    {
        for (int i = 0; i < n; i++)
            if (!IsConsonant(w, i)) return true;
        return false;
    }

    private static bool EndsDoubleConsonant(int[] w, int n) =>
        n >= 2 && w[n - 1] == w[n - 2] && IsConsonant(w, n - 1);

    /// <summary>Condition *o on <c>w[..n]</c>: ends consonant-vowel-consonant, the last not w, x or y; or is exactly vowel-consonant.</summary>
    private static bool EndsCvc(int[] w, int n) =>
        (n >= 3 && IsConsonant(w, n - 3) && !IsConsonant(w, n - 2) && IsConsonant(w, n - 1) && w[n - 1] is not ('w' or 'x' or 'y'))
        || (n == 2 && !IsConsonant(w, 0) && IsConsonant(w, 1));

    private static bool EndsWith(int[] w, string suffix)
    {
        if (suffix.Length > w.Length) return false;
        int offset = w.Length - suffix.Length;
        for (int i = 0; i < suffix.Length; i++)
            if (w[offset + i] != suffix[i]) return false;
        return true;
    }

    private static int[] Replace(int[] w, int remove, string add)
    {
        var result = new int[w.Length - remove + add.Length];
        Array.Copy(w, result, w.Length - remove);
        for (int i = 0; i < add.Length; i++) result[w.Length - remove + i] = add[i];
        return result;
    }
}
