namespace PeftLab.Synthetic;

/// <summary>Draws one task input; the intro is the noun phrase the definition uses for it ("a lowercase word").</summary>
internal sealed record InputGen(string Id, Kind Kind, string Intro, Func<SplitMix64, Vocabulary, Val> Draw);

/// <summary>
/// The input generators tasks are built on. Value ranges are small so tiny models can learn them. The sequence
/// generators draw through <see cref="Vocabulary.Int"/>, which moves them to another band in the corpus: their input
/// spaces are so small that the suite uses most of them. Other numbers keep their ranges in the corpus (so thresholds
/// such as "greater than 50" stay meaningful); collisions there are rare and the corpus drops them.
/// </summary>
internal static class Gens
{
    public static readonly InputGen Word = new("word", Kind.Word, "a lowercase English word",
        (r, v) => Val.Word(v.Word(r, 3, 8)));

    /// <summary>Random letters, for the long-form spelling tasks (real words of that length are too few).</summary>
    public static readonly InputGen LetterString = new("letter_string", Kind.Word, "a string of 8 to 11 random lowercase letters",
        (r, _) => Val.Word(new string(Enumerable.Range(0, r.Range(8, 11)).Select(_ => (char)('a' + r.Next(26))).ToArray())));

    /// <summary>Half the draws are palindromes made of random letters, so palindrome checks are balanced.</summary>
    public static readonly InputGen MaybePalindrome = new("maybe_palindrome", Kind.Word, "a lowercase string of letters",
        (r, v) =>
        {
            if (!r.Chance(0.5)) return Val.Word(v.Word(r, 3, 7));
            var half = new string(Enumerable.Range(0, r.Range(2, 3)).Select(_ => (char)('a' + r.Next(26))).ToArray());
            var mid = r.Chance(0.5) ? ((char)('a' + r.Next(26))).ToString() : "";
            return Val.Word(half + mid + new string(half.Reverse().ToArray()));
        });

    public static readonly InputGen Sentence = new("sentence", Kind.Words, "a list of lowercase words separated by spaces",
        (r, v) => Val.Words(Enumerable.Range(0, r.Range(3, 6)).Select(_ => v.Word(r, 3, 7))));

    /// <summary>Three or four short words, for formats that lengthen the output.</summary>
    public static readonly InputGen ShortSentence = new("short_sentence", Kind.Words, "a list of lowercase words separated by spaces",
        (r, v) => Val.Words(Enumerable.Range(0, r.Range(3, 4)).Select(_ => v.Word(r, 3, 6))));

    /// <summary>Words with some repeats, for de-duplication tasks.</summary>
    public static readonly InputGen SentenceRepeats = new("sentence_repeats", Kind.Words, "a list of lowercase words separated by spaces",
        (r, v) =>
        {
            var pool = Enumerable.Range(0, r.Range(2, 4)).Select(_ => v.Word(r, 3, 6)).ToArray();
            return Val.Words(Enumerable.Range(0, r.Range(4, 7)).Select(_ => r.Pick(pool)));
        });

    public static readonly InputGen CategoryWords = new("category_words", Kind.Words, "a list of words, each an animal, a color or a fruit",
        (r, _) => Val.Words(Enumerable.Range(0, r.Range(3, 5)).Select(_ => r.Next(3) switch
        {
            0 => r.Pick(Vocabulary.Animals),
            1 => r.Pick(Vocabulary.Colors),
            _ => r.Pick(Vocabulary.Fruits),
        })));

    public static readonly InputGen ColorWords = new("color_words", Kind.Words, "a list of color words",
        (r, _) => Val.Words(Enumerable.Range(0, r.Range(3, 5)).Select(_ => r.Pick(Vocabulary.ColorFruit).Key)));

    public static readonly InputGen AnimalWords = new("animal_words", Kind.Words, "a list of animals",
        (r, _) => Val.Words(Enumerable.Range(0, r.Range(3, 5)).Select(_ => r.Pick(Vocabulary.AnimalSound).Key)));

    public static readonly InputGen OppositeWords = new("opposite_words", Kind.Words, "a list of words",
        (r, _) => Val.Words(Enumerable.Range(0, r.Range(3, 5)).Select(_ =>
        {
            var (a, b) = r.Pick(Vocabulary.Opposites);
            return r.Chance(0.5) ? a : b;
        })));

    public static readonly InputGen Numbers = new("numbers", Kind.Numbers, "a list of numbers separated by spaces",
        (r, _) => Val.Numbers(Enumerable.Range(0, r.Range(4, 7)).Select(_ => (long)r.Range(0, 99))));

    public static readonly InputGen SmallNumbers = new("small_numbers", Kind.Numbers, "a list of numbers separated by spaces",
        (r, _) => Val.Numbers(Enumerable.Range(0, r.Range(3, 6)).Select(_ => (long)r.Range(1, 20))));

    /// <summary>Values from a narrow range so that duplicates are common.</summary>
    public static readonly InputGen NumbersRepeats = new("numbers_repeats", Kind.Numbers, "a list of numbers separated by spaces",
        (r, _) => Val.Numbers(Enumerable.Range(0, r.Range(5, 8)).Select(_ => (long)r.Range(1, 9))));

    /// <summary>Half the draws are sorted ascending, so sortedness checks are balanced.</summary>
    public static readonly InputGen MaybeSorted = new("maybe_sorted", Kind.Numbers, "a list of numbers separated by spaces",
        (r, _) =>
        {
            var ns = Enumerable.Range(0, r.Range(4, 6)).Select(_ => (long)r.Range(0, 99)).ToList();
            if (r.Chance(0.5)) ns.Sort();
            return Val.Numbers(ns);
        });

    public static readonly InputGen Digits = new("digits", Kind.Numbers, "a list of single digits separated by spaces",
        (r, _) => Val.Numbers(Enumerable.Range(0, r.Range(3, 6)).Select(_ => (long)r.Range(0, 9))));

    public static readonly InputGen Pair = new("pair", Kind.Numbers, "two numbers separated by a space",
        (r, _) => Val.Numbers([r.Range(0, 99), r.Range(0, 99)]));

    /// <summary>First number not smaller than the second, so differences are never negative.</summary>
    public static readonly InputGen PairOrdered = new("pair_ordered", Kind.Numbers, "two numbers separated by a space",
        (r, _) =>
        {
            long a = r.Range(0, 99), b = r.Range(0, 99);
            return Val.Numbers([Math.Max(a, b), Math.Min(a, b)]);
        });

    public static readonly InputGen PairSmall = new("pair_small", Kind.Numbers, "two numbers separated by a space",
        (r, _) => Val.Numbers([r.Range(2, 12), r.Range(2, 12)]));

    public static readonly InputGen Number = new("number", Kind.Number, "a number",
        (r, _) => Val.Number(r.Range(0, 99)));

    public static readonly InputGen SmallNumber = new("small_number", Kind.Number, "a number from 2 to 19",
        (r, _) => Val.Number(r.Range(2, 19)));

    public static readonly InputGen MonthNumber = new("month_number", Kind.Number, "a number from 1 to 12",
        (r, _) => Val.Number(r.Range(1, 12)));

    public static readonly InputGen RomanNumber = new("roman_number", Kind.Number, "a number from 1 to 50",
        (r, _) => Val.Number(r.Range(1, 50)));

    public static readonly InputGen CountdownNumber = new("countdown_number", Kind.Number, "a number from 15 to 45",
        (r, _) => Val.Number(r.Range(15, 45)));

    public static readonly InputGen BigNumber = new("big_number", Kind.Number, "a number with three to five digits",
        (r, _) => Val.Number(r.Range(100, 99999)));

    public static readonly InputGen ArithSeq = new("arith_seq", Kind.Numbers, "the start of an arithmetic sequence (the same amount is added each time)",
        (r, v) =>
        {
            int start = v.Int(r, 0, 20), step = r.Range(1, 9);
            return Val.Numbers(Enumerable.Range(0, r.Range(4, 5)).Select(i => (long)(start + i * step)));
        });

    public static readonly InputGen GeoSeq = new("geo_seq", Kind.Numbers, "the start of a sequence in which each number is multiplied by the same factor",
        (r, v) =>
        {
            long x = v.Int(r, 1, 9), f = r.Range(2, 4);
            var len = f == 4 ? 3 : r.Range(3, 4);
            var ns = new List<long>();
            for (var i = 0; i < len; i++) { ns.Add(x); x *= f; }
            return Val.Numbers(ns);
        });

    public static readonly InputGen FibSeq = new("fib_seq", Kind.Numbers, "the start of a sequence in which each number is the sum of the two before it",
        (r, v) =>
        {
            var ns = new List<long> { v.Int(r, 1, 9), v.Int(r, 1, 9) };
            var len = r.Range(4, 5);
            while (ns.Count < len) ns.Add(ns[^1] + ns[^2]);
            return Val.Numbers(ns);
        });

    /// <summary>A repeating cycle of two or three words, cut at a random point.</summary>
    public static readonly InputGen CycleSeq = new("cycle_seq", Kind.Words, "a sequence of words that repeats a fixed pattern",
        (r, v) =>
        {
            var n = r.Range(2, 3);
            var cycle = new List<string>();
            while (cycle.Count < n)
            {
                var w = v.Word(r, 3, 5);
                if (!cycle.Contains(w)) cycle.Add(w);
            }
            var len = r.Range(n + 2, 2 * n + 2);
            return Val.Words(Enumerable.Range(0, len).Select(i => cycle[i % n]));
        });

    public static readonly InputGen LetterSeq = new("letter_seq", Kind.Words, "a sequence of letters that moves through the alphabet in equal steps",
        (r, v) =>
        {
            // Steps are 1-3 in the suite and 4-6 in the corpus, so corpus sequences never contain a suite sequence.
            var step = v.Int(r, 1, 3);
            var len = r.Range(3, Math.Min(5, 25 / step));
            var start = r.Range(0, 25 - step * len);
            return Val.Words(Enumerable.Range(0, len).Select(i => ((char)('a' + start + i * step)).ToString()));
        });

    /// <summary>A shuffled mix of lowercase words, capitalised names and numbers.</summary>
    public static readonly InputGen Mixed = new("mixed", Kind.Mixed, "a text mixing lowercase words, capitalized names and numbers",
        (r, v) =>
        {
            var tokens = new List<string>();
            for (int i = 0, n = r.Range(1, 3); i < n; i++) tokens.Add(v.Word(r, 3, 6));
            for (int i = 0, n = r.Range(1, 3); i < n; i++) tokens.Add(Val.Fmt(r.Range(1, 99)));
            for (int i = 0, n = r.Range(1, 2); i < n; i++) tokens.Add(v.Name(r));
            return Val.Mixed(r.Shuffle(tokens));
        });

    public static readonly InputGen Record = new("record", Kind.Record, "a record with the fields name, age and city",
        (r, v) => Val.Record("name", v.Name(r), "age", Val.Fmt(r.Range(18, 90)), "city", v.City(r)));
}
