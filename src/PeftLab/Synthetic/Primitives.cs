using System.Text;

namespace PeftLab.Synthetic;

/// <summary>The primitive library. Each factory returns a fresh <see cref="Primitive"/>; parameters are baked into its text.</summary>
internal static class Prims
{
    private const string Vowels = "aeiou";
    private static readonly string[] YesNo = ["yes", "no"];

    private static Val? W(string s) => s.Length == 0 ? null : Val.Word(s);
    private static Val Yn(bool b) => Val.Label(b ? "yes" : "no");
    private static bool IsVowel(char c) => Vowels.Contains(c, StringComparison.Ordinal);

    private static Primitive WordToWord(string id, string instr, string explain, string fact, Func<string, string> f) =>
        new(id, instr, explain, fact, [(Kind.Word, Kind.Word)], v => W(f(v.S)));

    // ---------------------------------------------------------------- letters of one word

    public static Primitive ReverseLetters() => WordToWord("reverse_letters", "reverse the order of the letters",
        "Reversing the letters of {0} gives {1}.", "{0} spelled backwards is {1}.", s => new string(s.Reverse().ToArray()));

    public static Primitive Uppercase() => new("uppercase", "convert every letter to uppercase",
        "Writing {0} in uppercase gives {1}.", "In capital letters, {0} is {1}.",
        [(Kind.Word, Kind.Word), (Kind.Words, Kind.Words), (Kind.Text, Kind.Text)],
        v => v.Kind switch
        {
            Kind.Words => Val.Words(v.Ws.Select(w => w.ToUpperInvariant())),
            Kind.Text => Val.Text(v.S.ToUpperInvariant()),
            _ => Val.Word(v.S.ToUpperInvariant()),
        });

    public static Primitive Capitalize() => WordToWord("capitalize", "make the first letter uppercase",
        "Capitalizing {0} gives {1}.", "With a capital first letter, {0} becomes {1}.", Vocabulary.Capitalise);

    public static Primitive DoubleLetters() => WordToWord("double_letters", "write every letter twice",
        "Doubling each letter of {0} gives {1}.", "If every letter of {0} is written twice, we get {1}.",
        s => string.Concat(s.Select(c => new string(c, 2))));

    public static Primitive RemoveVowels() => WordToWord("remove_vowels", "delete every vowel (a, e, i, o, u)",
        "Removing the vowels from {0} leaves {1}.", "Without its vowels, {0} is {1}.",
        s => new string(s.Where(c => !IsVowel(char.ToLowerInvariant(c))).ToArray()));

    public static Primitive DedupeLetters() => WordToWord("dedupe_letters", "remove repeated letters, keeping only the first occurrence of each letter",
        "Keeping the first occurrence of each letter of {0} gives {1}.", "With repeated letters removed, {0} becomes {1}.",
        s => new string(s.Distinct().ToArray()));

    public static Primitive SortLetters() => WordToWord("sort_letters", "sort the letters in alphabetical order",
        "Sorting the letters of {0} alphabetically gives {1}.", "The letters of {0} in alphabetical order are {1}.",
        s => new string(s.Order().ToArray()));

    public static Primitive FirstLetters(int k) => WordToWord("first_k_letters", $"keep only the first {k} letters",
        $"The first {k} letters of {{0}} are {{1}}.", $"Cut after {k} letters, {{0}} becomes {{1}}.", s => s[..Math.Min(k, s.Length)]);

    public static Primitive LastLetters(int k) => WordToWord("last_k_letters", $"keep only the last {k} letters",
        $"The last {k} letters of {{0}} are {{1}}.", $"Keeping its final {k} letters, {{0}} becomes {{1}}.", s => s[Math.Max(0, s.Length - k)..]);

    public static Primitive RotateLetters() => WordToWord("rotate_letters", "move the first letter to the end",
        "Moving the first letter of {0} to the end gives {1}.", "Rotating {0} by one letter gives {1}.", s => s[1..] + s[0]);

    public static Primitive ShiftLetters() => WordToWord("shift_letters", "replace every letter with the next letter of the alphabet (z becomes a)",
        "Shifting each letter of {0} forward by one gives {1}.", "One step along the alphabet, {0} becomes {1}.",
        s => new string(s.Select(c => c switch { 'z' => 'a', 'Z' => 'A', _ => char.IsAsciiLetter(c) ? (char)(c + 1) : c }).ToArray()));

    public static Primitive SwapEnds() => WordToWord("swap_ends", "swap the first and the last letter",
        "Swapping the first and last letters of {0} gives {1}.", "Exchanging the end letters of {0} gives {1}.",
        s => s.Length < 2 ? s : s[^1] + s[1..^1] + s[0]);

    public static Primitive Pluralize() => WordToWord("pluralize",
        "write its plural with these rules: add \"es\" after s, x, z, ch or sh; change a final consonant followed by y into \"ies\"; otherwise add \"s\"",
        "The plural of {0} is {1}.", "One {0}, two {1}.", Plural);

    internal static string Plural(string s)
    {
        if (s.EndsWith('s') || s.EndsWith('x') || s.EndsWith('z') || s.EndsWith("ch", StringComparison.Ordinal) || s.EndsWith("sh", StringComparison.Ordinal))
            return s + "es";
        if (s.Length >= 2 && s[^1] == 'y' && !IsVowel(s[^2])) return s[..^1] + "ies";
        return s + "s";
    }

    public static Primitive MirrorWord() => WordToWord("mirror_word", "write the word followed by its reverse",
        "{0} followed by its reverse is {1}.", "Mirroring {0} gives {1}.", s => s + new string(s.Reverse().ToArray()));

    public static Primitive HyphenateLetters() => new("hyphenate_letters", "put a hyphen between every two letters",
        "Spelling {0} with hyphens gives {1}.", "Letter by letter, {0} is written {1}.",
        [(Kind.Word, Kind.Text)], v => Val.Text(string.Join('-', v.S.ToCharArray())));

    public static Primitive LengthOf() => new("length_of", "count the letters",
        "{0} has {1} letters.", "The number of letters in {0} is {1}.",
        [(Kind.Word, Kind.Number)], v => Val.Number(v.S.Length));

    public static Primitive CountVowels() => new("count_vowels", "count the vowels (a, e, i, o, u)",
        "{0} contains {1} vowels.", "The number of vowels in {0} is {1}.",
        [(Kind.Word, Kind.Number)], v => Val.Number(v.S.Count(c => IsVowel(char.ToLowerInvariant(c)))));

    public static Primitive CountLetter(char x) => new("count_letter", $"count how many times the letter \"{x}\" appears",
        $"The letter {x} appears {{1}} times in {{0}}.", $"{{0}} has {{1}} copies of the letter {x}.",
        [(Kind.Word, Kind.Number)], v => Val.Number(v.S.Count(c => c == x)));

    public static Primitive LetterPositions() => new("letter_positions", "replace every letter with its position in the alphabet (a=1, b=2, ..., z=26)",
        "The alphabet positions of the letters of {0} are {1}.", "Letter by letter, {0} is {1} in the alphabet.",
        [(Kind.Word, Kind.Numbers)], v => Val.Numbers(v.S.Select(c => (long)(char.ToLowerInvariant(c) - 'a' + 1))));

    public static Primitive IsPalindrome() => new("is_palindrome", "answer \"yes\" if the string reads the same forwards and backwards, and \"no\" otherwise",
        "Asked whether {0} reads the same backwards, the answer is {1}.", "Is {0} a palindrome? {1}.",
        [(Kind.Word, Kind.Label)], v => Yn(v.S.SequenceEqual(v.S.Reverse())), YesNo);

    public static Primitive StartsWithVowel() => new("starts_with_vowel", "answer \"yes\" if it starts with a vowel (a, e, i, o, u), and \"no\" otherwise",
        "Asked whether {0} starts with a vowel, the answer is {1}.", "Does {0} begin with a vowel? {1}.",
        [(Kind.Word, Kind.Label)], v => Yn(IsVowel(char.ToLowerInvariant(v.S[0]))), YesNo);

    public static Primitive LongerThan(int k) => new("longer_than", $"answer \"yes\" if it has more than {k} letters, and \"no\" otherwise",
        $"Asked whether {{0}} has more than {k} letters, the answer is {{1}}.", $"Is {{0}} longer than {k} letters? {{1}}.",
        [(Kind.Word, Kind.Label)], v => Yn(v.S.Length > k), YesNo);

    public static Primitive NatoSpell() => new("nato_spell", "spell it with the NATO alphabet (a=alpha, b=bravo, c=charlie, and so on), one code word per letter",
        "In the NATO alphabet, {0} is spelled {1}.", "Spoken over the radio, {0} becomes {1}.",
        [(Kind.Word, Kind.Words)], v => v.S.All(char.IsAsciiLetter) ? Val.Words(v.S.Select(c => Vocabulary.Nato[char.ToLowerInvariant(c) - 'a'])) : null);

    public static Primitive Prefixes() => new("prefixes", "list all of its prefixes, from the first letter alone up to the whole word",
        "The prefixes of {0} are {1}.", "Growing {0} one letter at a time gives {1}.",
        [(Kind.Word, Kind.Words)], v => Val.Words(Enumerable.Range(1, v.S.Length).Select(n => v.S[..n])));

    public static Primitive Rotations() => new("rotations", "list all of its rotations, starting with the word itself and each time moving the first letter to the end",
        "The rotations of {0} are {1}.", "Turning {0} around one letter at a time gives {1}.",
        [(Kind.Word, Kind.Words)], v => Val.Words(Enumerable.Range(0, v.S.Length).Select(i => v.S[i..] + v.S[..i])));

    // ---------------------------------------------------------------- lists of numbers or words

    private static readonly (Kind, Kind)[] ListToList = [(Kind.Numbers, Kind.Numbers), (Kind.Words, Kind.Words)];

    private static Val? Rebuild(Val like, IEnumerable<string> items) => like.Kind == Kind.Numbers
        ? Val.Numbers(items.Select(long.Parse))
        : Val.Words(items);

    private static Val? NonEmpty(Val? v) => v is null || v.IsEmpty ? null : v;

    public static Primitive ReverseItems() => new("reverse_items", "reverse the order of the list",
        "Reversing the order of {0} gives {1}.", "Read from the end, {0} is {1}.",
        ListToList, v => Rebuild(v, v.ItemStrings.Reverse()));

    public static Primitive DedupeItems() => new("dedupe_items", "remove repeated items, keeping the first occurrence of each",
        "Without repeats, {0} becomes {1}.", "Keeping each item of {0} only once gives {1}.",
        ListToList, v => Rebuild(v, v.ItemStrings.Distinct(StringComparer.Ordinal)));

    public static Primitive FirstItems(int k) => new("first_k_items", $"keep only the first {k} items",
        $"The first {k} items of {{0}} are {{1}}.", $"Taking {k} items from the start of {{0}} gives {{1}}.",
        ListToList, v => Rebuild(v, v.ItemStrings.Take(k)));

    public static Primitive LastItems(int k) => new("last_k_items", $"keep only the last {k} items",
        $"The last {k} items of {{0}} are {{1}}.", $"Taking {k} items from the end of {{0}} gives {{1}}.",
        ListToList, v => Rebuild(v, v.ItemStrings.TakeLast(k)));

    public static Primitive DropFirstItem() => new("drop_first_item", "remove the first item",
        "Removing the first item of {0} leaves {1}.", "Without its first item, {0} is {1}.",
        ListToList, v => NonEmpty(Rebuild(v, v.ItemStrings.Skip(1))));

    public static Primitive RotateItems() => new("rotate_items", "move the first item to the end of the list",
        "Moving the first item of {0} to the end gives {1}.", "Rotating {0} by one place gives {1}.",
        ListToList, v => Rebuild(v, v.ItemStrings.Skip(1).Append(v.ItemStrings[0])));

    public static Primitive CountItems() => new("count_items", "count the items in the list",
        "{0} has {1} items.", "Counting the items of {0} gives {1}.",
        [(Kind.Numbers, Kind.Number), (Kind.Words, Kind.Number)], v => Val.Number(v.Count));

    public static Primitive JoinComma() => new("join_comma", "join the items with a comma and a space",
        "Joined with commas, {0} becomes {1}.", "As a comma-separated list, {0} is {1}.",
        [(Kind.Numbers, Kind.Text), (Kind.Words, Kind.Text)], v => Val.Text(string.Join(", ", v.ItemStrings)));

    public static Primitive WrapBrackets() => new("wrap_brackets", "put square brackets around it",
        "In square brackets, {0} is {1}.", "Wrapping {0} in brackets gives {1}.",
        [(Kind.Word, Kind.Text), (Kind.Words, Kind.Text), (Kind.Numbers, Kind.Text), (Kind.Text, Kind.Text), (Kind.Number, Kind.Text)],
        v => Val.Text("[" + v.Render() + "]"));

    public static Primitive NumberItems() => new("number_items", "number the items, writing \"1.\" before the first, \"2.\" before the second, and so on",
        "Numbering the items of {0} gives {1}.", "As a numbered list, {0} is {1}.",
        [(Kind.Numbers, Kind.Text), (Kind.Words, Kind.Text)],
        v => Val.Text(string.Join(' ', v.ItemStrings.Select((s, i) => $"{i + 1}. {s}"))));

    // ---------------------------------------------------------------- lists of numbers

    private static Primitive NumsToNums(string id, string instr, string explain, string fact, Func<IReadOnlyList<long>, IEnumerable<long>?> f) =>
        new(id, instr, explain, fact, [(Kind.Numbers, Kind.Numbers)], v => f(v.Ns) is { } r ? NonEmpty(Val.Numbers(r)) : null);

    private static Primitive NumsToNum(string id, string instr, string explain, string fact, Func<IReadOnlyList<long>, long?> f) =>
        new(id, instr, explain, fact, [(Kind.Numbers, Kind.Number)], v => v.Ns.Count == 0 ? null : f(v.Ns) is { } r ? Val.Number(r) : null);

    public static Primitive SortAsc() => NumsToNums("sort_asc", "sort the numbers from smallest to largest",
        "Sorting {0} from smallest to largest gives {1}.", "In increasing order, {0} is {1}.", ns => ns.Order());

    public static Primitive SortDesc() => NumsToNums("sort_desc", "sort the numbers from largest to smallest",
        "Sorting {0} from largest to smallest gives {1}.", "In decreasing order, {0} is {1}.", ns => ns.OrderDescending());

    public static Primitive FilterEven() => NumsToNums("filter_even", "keep only the even numbers",
        "The even numbers in {0} are {1}.", "Dropping the odd numbers from {0} leaves {1}.", ns => ns.Where(n => n % 2 == 0));

    public static Primitive FilterOdd() => NumsToNums("filter_odd", "keep only the odd numbers",
        "The odd numbers in {0} are {1}.", "Dropping the even numbers from {0} leaves {1}.", ns => ns.Where(n => n % 2 != 0));

    public static Primitive FilterGreater(int k) => NumsToNums("filter_greater", $"keep only the numbers greater than {k}",
        $"The numbers greater than {k} in {{0}} are {{1}}.", $"Above {k}, {{0}} keeps {{1}}.", ns => ns.Where(n => n > k));

    public static Primitive AddEach(int k) => NumsToNums("add_each", $"add {k} to every number",
        $"Adding {k} to every number of {{0}} gives {{1}}.", $"Each number of {{0}} plus {k} gives {{1}}.", ns => ns.Select(n => n + k));

    public static Primitive DoubleEach() => NumsToNums("double_each", "multiply every number by 2",
        "Doubling every number of {0} gives {1}.", "Twice each number of {0} is {1}.", ns => ns.Select(n => n * 2));

    public static Primitive PrefixSums() => NumsToNums("prefix_sums", "replace every number with the sum of all numbers up to and including it",
        "The running totals of {0} are {1}.", "Adding up {0} step by step gives {1}.",
        ns => { long acc = 0; return ns.Select(n => acc += n).ToArray(); });

    public static Primitive Differences() => NumsToNums("differences", "write the difference between each number and the one before it (later minus earlier)",
        "The differences between neighbours in {0} are {1}.", "Step by step, {0} changes by {1}.",
        ns => ns.Count < 2 ? null : Enumerable.Range(1, ns.Count - 1).Select(i => ns[i] - ns[i - 1]));

    public static Primitive Sum() => NumsToNum("sum", "add up all the numbers",
        "The sum of {0} is {1}.", "Adding {0} together gives {1}.", ns => ns.Sum());

    public static Primitive Product() => NumsToNum("product", "multiply the numbers together",
        "The product of {0} is {1}.", "Multiplying {0} together gives {1}.", ns => ns.Aggregate(1L, (a, b) => a * b));

    public static Primitive Difference() => NumsToNum("difference", "subtract the second number from the first",
        "Subtracting the second number of {0} from the first gives {1}.", "For {0}, the first minus the second is {1}.",
        ns => ns.Count == 2 ? ns[0] - ns[1] : null);

    public static Primitive Max() => NumsToNum("max", "find the largest number",
        "The largest number in {0} is {1}.", "The biggest of {0} is {1}.", ns => ns.Max());

    public static Primitive Min() => NumsToNum("min", "find the smallest number",
        "The smallest number in {0} is {1}.", "The least of {0} is {1}.", ns => ns.Min());

    public static Primitive Range() => NumsToNum("range", "subtract the smallest number from the largest",
        "The largest minus the smallest number of {0} is {1}.", "The spread of {0} is {1}.", ns => ns.Max() - ns.Min());

    public static Primitive IsSorted() => new("is_sorted", "answer \"yes\" if the numbers are in increasing order (each at least as large as the one before), and \"no\" otherwise",
        "Asked whether {0} is in increasing order, the answer is {1}.", "Is {0} sorted? {1}.",
        [(Kind.Numbers, Kind.Label)], v => Yn(v.Ns.Zip(v.Ns.Skip(1)).All(p => p.First <= p.Second)), YesNo);

    public static Primitive HasDuplicates() => new("has_duplicates", "answer \"yes\" if some number appears more than once, and \"no\" otherwise",
        "Asked whether {0} repeats a number, the answer is {1}.", "Does {0} contain a repeated number? {1}.",
        [(Kind.Numbers, Kind.Label)], v => Yn(v.Ns.Distinct().Count() < v.Ns.Count), YesNo);

    public static Primitive DigitNames() => new("digit_names", "replace every digit with its English name",
        "In words, the digits {0} are {1}.", "Reading {0} aloud digit by digit gives {1}.",
        [(Kind.Numbers, Kind.Words)], v => v.Ns.All(n => n is >= 0 and <= 9) ? Val.Words(v.Ns.Select(n => Vocabulary.DigitNames[n])) : null);

    public static Primitive NumberNames() => new("number_names", "write every number in English words, separating the numbers with commas",
        "In English words, {0} is {1}.", "Spelled out, {0} reads {1}.",
        [(Kind.Numbers, Kind.Text)], v => v.Ns.All(n => n is >= 0 and <= 999) ? Val.Text(string.Join(", ", v.Ns.Select(n => NumberWords(n, true)))) : null,
        Alternatives: v => v.Ns.All(n => n is >= 0 and <= 999) ? [string.Join(", ", v.Ns.Select(n => NumberWords(n, false)))] : []);

    // ---------------------------------------------------------------- one number

    private static Primitive NumToNum(string id, string instr, string explain, string fact, Func<long, long?> f) =>
        new(id, instr, explain, fact, [(Kind.Number, Kind.Number)], v => f(v.N) is { } r ? Val.Number(r) : null);

    public static Primitive AddK(int k) => NumToNum("add_k", $"add {k} to the number",
        $"{{0}} plus {k} is {{1}}.", $"Adding {k} to {{0}} gives {{1}}.", n => n + k);

    public static Primitive SubtractK(int k) => NumToNum("subtract_k", $"subtract {k} from the number",
        $"{{0}} minus {k} is {{1}}.", $"Taking {k} away from {{0}} leaves {{1}}.", n => n - k);

    public static Primitive MultiplyK(int k) => NumToNum("multiply_k", $"multiply the number by {k}",
        $"{{0}} times {k} is {{1}}.", $"Multiplying {{0}} by {k} gives {{1}}.", n => n * k);

    public static Primitive Square() => NumToNum("square", "multiply the number by itself",
        "The square of {0} is {1}.", "{0} multiplied by itself is {1}.", n => n * n);

    public static Primitive DigitSum() => NumToNum("digit_sum", "add up the digits of the number",
        "The digits of {0} add up to {1}.", "Adding the digits of {0} gives {1}.",
        n => Math.Abs(n).ToString(System.Globalization.CultureInfo.InvariantCulture).Sum(c => (long)(c - '0')));

    public static Primitive Parity() => new("parity", "answer \"even\" if the number is even and \"odd\" if it is odd",
        "{0} is {1}.", "Divided by two, {0} turns out {1}.",
        [(Kind.Number, Kind.Label)], v => Val.Label(v.N % 2 == 0 ? "even" : "odd"), ["even", "odd"]);

    public static Primitive GreaterThan(int k) => new("greater_than", $"answer \"yes\" if the number is greater than {k}, and \"no\" otherwise",
        $"Asked whether {{0}} is greater than {k}, the answer is {{1}}.", $"Is {{0}} above {k}? {{1}}.",
        [(Kind.Number, Kind.Label)], v => Yn(v.N > k), YesNo);

    public static Primitive NumberName() => new("number_name", "write the number in English words",
        "{0} in words is {1}.", "Spelled out, {0} reads {1}.",
        [(Kind.Number, Kind.Text)], v => v.N is >= 0 and <= 999 ? Val.Text(NumberWords(v.N, true)) : null,
        Alternatives: v => v.N is >= 0 and <= 999 ? [NumberWords(v.N, false)] : []);

    public static Primitive Roman() => new("roman", "write the number as a Roman numeral",
        "{0} in Roman numerals is {1}.", "The Romans wrote {0} as {1}.",
        [(Kind.Number, Kind.Word)], v => v.N is >= 1 and <= 3999 ? Val.Word(RomanNumeral(v.N)) : null);

    public static Primitive MonthName() => new("month_name", "write the name of the month with that number (1 is january, 12 is december)",
        "Month number {0} is {1}.", "The month numbered {0} is called {1}.",
        [(Kind.Number, Kind.Word)], v => v.N is >= 1 and <= 12 ? Val.Word(Vocabulary.Months[v.N - 1]) : null);

    public static Primitive DigitsOf() => new("digits_of", "split the number into its digits, separated by spaces",
        "The digits of {0} are {1}.", "Digit by digit, {0} is {1}.",
        [(Kind.Number, Kind.Numbers)], v => v.N < 0 ? null : Val.Numbers(Val.Fmt(v.N).Select(c => (long)(c - '0'))));

    public static Primitive TimesTable() => new("times_table", "write its multiplication table from 1 to 10 in the form 7x1=7, separated by spaces",
        "The multiplication table of {0} is {1}.", "Multiplying {0} by 1 to 10 gives {1}.",
        [(Kind.Number, Kind.Text)], v => v.N is < 1 or > 99 ? null : Val.Text(string.Join(' ', Enumerable.Range(1, 10).Select(i => $"{v.N}x{i}={v.N * i}"))));

    public static Primitive Countdown() => new("countdown", "count down from the number to 1",
        "Counting down from {0} gives {1}.", "From {0} down to one: {1}.",
        [(Kind.Number, Kind.Numbers)], v => v.N is < 1 or > 200 ? null : Val.Numbers(Enumerable.Range(1, (int)v.N).Select(i => v.N + 1 - i)));

    // ---------------------------------------------------------------- lists of words

    private static Primitive WordsToWords(string id, string instr, string explain, string fact, Func<IReadOnlyList<string>, IEnumerable<string>?> f) =>
        new(id, instr, explain, fact, [(Kind.Words, Kind.Words)], v => f(v.Ws) is { } r ? NonEmpty(Val.Words(r)) : null);

    public static Primitive SortWords() => WordsToWords("sort_words", "sort the words in alphabetical order",
        "Sorting {0} alphabetically gives {1}.", "In dictionary order, {0} is {1}.", ws => ws.Order(StringComparer.Ordinal));

    public static Primitive SortByLength() => WordsToWords("sort_by_length", "sort the words from shortest to longest, keeping the original order of words of equal length",
        "Sorting {0} by length gives {1}.", "From shortest to longest, {0} is {1}.", ws => ws.OrderBy(w => w.Length));

    public static Primitive CapitalizeEach() => WordsToWords("capitalize_each", "capitalize the first letter of every word",
        "Capitalizing every word of {0} gives {1}.", "In title case, {0} is {1}.", ws => ws.Select(Vocabulary.Capitalise));

    public static Primitive ReverseEachWord() => WordsToWords("reverse_each_word", "reverse the letters of every word, keeping the words in their order",
        "Reversing each word of {0} gives {1}.", "With every word spelled backwards, {0} is {1}.", ws => ws.Select(w => new string(w.Reverse().ToArray())));

    public static Primitive FilterLongWords(int k) => WordsToWords("filter_long_words", $"keep only the words with more than {k} letters",
        $"The words of {{0}} with more than {k} letters are {{1}}.", $"Dropping the words of at most {k} letters from {{0}} leaves {{1}}.",
        ws => ws.Where(w => w.Length > k));

    public static Primitive FilterVowelStart() => WordsToWords("filter_vowel_start", "keep only the words that start with a vowel",
        "The words of {0} that start with a vowel are {1}.", "From {0}, the words beginning with a vowel are {1}.",
        ws => ws.Where(w => IsVowel(w[0])));

    public static Primitive WordLengths() => new("word_lengths", "replace every word with its number of letters",
        "The word lengths of {0} are {1}.", "Counting the letters of each word of {0} gives {1}.",
        [(Kind.Words, Kind.Numbers)], v => Val.Numbers(v.Ws.Select(w => (long)w.Length)));

    public static Primitive LongestWord() => new("longest_word", "find the longest word (if several words are equally long, any of them is correct)",
        "The longest word in {0} is {1}.", "Of {0}, the longest word is {1}.",
        [(Kind.Words, Kind.Word)], v => Val.Word(v.Ws.First(w => w.Length == v.Ws.Max(x => x.Length))),
        Alternatives: v => v.Ws.Where(w => w.Length == v.Ws.Max(x => x.Length)).Distinct(StringComparer.Ordinal));

    public static Primitive ShortestWord() => new("shortest_word", "find the shortest word (if several words are equally short, any of them is correct)",
        "The shortest word in {0} is {1}.", "Of {0}, the shortest word is {1}.",
        [(Kind.Words, Kind.Word)], v => Val.Word(v.Ws.First(w => w.Length == v.Ws.Min(x => x.Length))),
        Alternatives: v => v.Ws.Where(w => w.Length == v.Ws.Min(x => x.Length)).Distinct(StringComparer.Ordinal));

    public static Primitive Initials() => new("initials", "write the first letter of every word, joined together",
        "The initials of {0} are {1}.", "Taking the first letter of each word of {0} gives {1}.",
        [(Kind.Words, Kind.Word)], v => Val.Word(string.Concat(v.Ws.Select(w => w[0]))));

    public static Primitive SnakeCase() => new("snake_case", "join the words with underscores",
        "Joined with underscores, {0} becomes {1}.", "In snake case, {0} is {1}.",
        [(Kind.Words, Kind.Word)], v => Val.Word(string.Join('_', v.Ws)));

    public static Primitive CamelCase() => new("camel_case", "join the words in camel case (first word lowercase, every later word capitalized, no spaces)",
        "In camel case, {0} is {1}.", "Gluing {0} together in camel case gives {1}.",
        [(Kind.Words, Kind.Word)], v => Val.Word(v.Ws[0].ToLowerInvariant() + string.Concat(v.Ws.Skip(1).Select(Vocabulary.Capitalise))));

    public static Primitive CategoryOfEach() => new("category_of_each", "replace every word with its category: \"animal\", \"color\" or \"fruit\"",
        "The categories of {0} are {1}.", "Word by word, {0} names {1}.",
        [(Kind.Words, Kind.Words)], v => v.Ws.All(w => CategoryOf(w) is not null) ? Val.Words(v.Ws.Select(w => CategoryOf(w)!)) : null);

    private static string? CategoryOf(string w) =>
        Vocabulary.Animals.Contains(w) ? "animal" : Vocabulary.Colors.Contains(w) ? "color" : Vocabulary.Fruits.Contains(w) ? "fruit" : null;

    private static string Article(string category) => category == "animal" ? "an animal" : "a " + category;

    public static Primitive FilterCategory(string category) => WordsToWords("filter_category", $"keep only the words that name {Article(category)}",
        $"The words of {{0}} that name {Article(category)} are {{1}}.", $"Picking each {category} out of {{0}} gives {{1}}.",
        ws => ws.Where(w => CategoryOf(w) == category));

    public static Primitive ContainsCategory(string category) => new("contains_category",
        $"answer \"yes\" if at least one word names {Article(category)}, and \"no\" otherwise",
        $"Asked whether {{0}} mentions {Article(category)}, the answer is {{1}}.", $"Is there {Article(category)} in {{0}}? {{1}}.",
        [(Kind.Words, Kind.Label)], v => Yn(v.Ws.Any(w => CategoryOf(w) == category)), YesNo);

    private static Primitive TableMap(string id, string what, (string Key, string Value)[] table, string explain, string fact) =>
        new(id, $"replace every {what} using this table: {string.Join(", ", table.Select(p => p.Key + "=" + p.Value))}",
            explain, fact, [(Kind.Words, Kind.Words)],
            v => v.Ws.All(w => table.Any(p => p.Key == w)) ? Val.Words(v.Ws.Select(w => table.First(p => p.Key == w).Value)) : null);

    public static Primitive ColorFruit() => TableMap("color_fruit", "color with its fruit", Vocabulary.ColorFruit,
        "Mapping the colors {0} to fruits gives {1}.", "Each color of {0} stands for a fruit: {1}.");

    public static Primitive AnimalSound() => TableMap("animal_sound", "animal with its sound", Vocabulary.AnimalSound,
        "The animals {0} make the sounds {1}.", "Listening to {0}, we hear {1}.");

    public static Primitive Opposites() => new("opposites", "replace every word with its opposite (for example hot and cold, big and small, up and down)",
        "The opposites of {0} are {1}.", "Turning {0} into opposites gives {1}.",
        [(Kind.Words, Kind.Words)], v => v.Ws.All(w => OppositeOf(w) is not null) ? Val.Words(v.Ws.Select(w => OppositeOf(w)!)) : null);

    private static string? OppositeOf(string w)
    {
        foreach (var (a, b) in Vocabulary.Opposites)
        {
            if (a == w) return b;
            if (b == w) return a;
        }
        return null;
    }

    // ---------------------------------------------------------------- extraction

    public static Primitive ExtractNumbers() => new("extract_numbers", "extract the numbers, in the order they appear",
        "The numbers in {0} are {1}.", "Picking the numbers out of {0} gives {1}.",
        [(Kind.Mixed, Kind.Numbers)], v => NonEmpty(Val.Numbers(v.Ws.Where(t => t.All(char.IsAsciiDigit)).Select(long.Parse))));

    public static Primitive ExtractNames() => new("extract_names", "extract the capitalized names, in the order they appear",
        "The names in {0} are {1}.", "Picking the names out of {0} gives {1}.",
        [(Kind.Mixed, Kind.Words)], v => NonEmpty(Val.Words(v.Ws.Where(t => char.IsAsciiLetterUpper(t[0])))));

    public static Primitive ExtractWords() => new("extract_words", "extract the lowercase words, in the order they appear",
        "The lowercase words in {0} are {1}.", "Picking the plain words out of {0} gives {1}.",
        [(Kind.Mixed, Kind.Words)], v => NonEmpty(Val.Words(v.Ws.Where(t => char.IsAsciiLetterLower(t[0])))));

    private static Primitive GetField(string field, Kind outKind) => new("get_" + field, $"take the value of the {field} field",
        $"The {field} in {{0}} is {{1}}.", $"Reading the {field} from {{0}} gives {{1}}.",
        [(Kind.Record, outKind)], v => v.Field(field) is { } s ? (outKind == Kind.Number ? Val.Number(long.Parse(s)) : Val.Word(s)) : null);

    public static Primitive GetName() => GetField("name", Kind.Word);
    public static Primitive GetAge() => GetField("age", Kind.Number);
    public static Primitive GetCity() => GetField("city", Kind.Word);

    // ---------------------------------------------------------------- pattern completion

    public static Primitive NextArith() => NumsToNum("next_arith", "give the next number, adding the common difference to the last one",
        "The sequence {0} continues with {1}.", "After {0} comes {1}.",
        ns => ns.Count >= 2 && Enumerable.Range(2, ns.Count - 2).All(i => ns[i] - ns[i - 1] == ns[1] - ns[0]) ? ns[^1] + (ns[1] - ns[0]) : null);

    public static Primitive NextGeometric() => NumsToNum("next_geometric", "give the next number, multiplying the last one by the common factor",
        "The sequence {0} continues with {1}.", "After {0} comes {1}.",
        ns => ns.Count >= 2 && ns[0] != 0 && ns[1] % ns[0] == 0 && Enumerable.Range(1, ns.Count - 1).All(i => ns[i] == ns[i - 1] * (ns[1] / ns[0]))
            ? ns[^1] * (ns[1] / ns[0]) : null);

    public static Primitive NextFib() => NumsToNum("next_fib", "give the next number, the sum of the last two",
        "The sequence {0} continues with {1}.", "After {0} comes {1}.",
        ns => ns.Count >= 3 && Enumerable.Range(2, ns.Count - 2).All(i => ns[i] == ns[i - 1] + ns[i - 2]) ? ns[^1] + ns[^2] : null);

    public static Primitive NextCycle() => new("next_cycle", "give the next word of the repeating pattern",
        "The pattern {0} continues with {1}.", "After {0} comes {1}.",
        [(Kind.Words, Kind.Word)], v =>
        {
            var ws = v.Ws;
            for (var p = 1; p <= ws.Count / 2; p++)
                if (Enumerable.Range(p, ws.Count - p).All(i => ws[i] == ws[i - p])) return Val.Word(ws[ws.Count - p]);
            return null;
        });

    public static Primitive NextLetter() => new("next_letter", "give the next letter of the sequence",
        "The letters {0} continue with {1}.", "After {0} comes {1}.",
        [(Kind.Words, Kind.Word)], v =>
        {
            var ws = v.Ws;
            if (ws.Count < 2 || ws.Any(w => w.Length != 1)) return null;
            var step = ws[1][0] - ws[0][0];
            if (step <= 0 || Enumerable.Range(1, ws.Count - 1).Any(i => ws[i][0] - ws[i - 1][0] != step)) return null;
            var next = (char)(ws[^1][0] + step);
            return next > 'z' ? null : Val.Word(next.ToString());
        });

    // ---------------------------------------------------------------- composite, long-form

    public static Primitive DescribeNumbers() => new("describe_numbers",
        "describe the list in the form \"There are N numbers; the smallest is A, the largest is B and the sum is S.\"",
        "Describing {0} gives {1}.", "A summary of {0}: {1}.",
        [(Kind.Numbers, Kind.Text)],
        v => Val.Text($"There are {v.Ns.Count} numbers; the smallest is {v.Ns.Min()}, the largest is {v.Ns.Max()} and the sum is {v.Ns.Sum()}."),
        Components: ["count_items", "min", "max", "sum"]);

    public static Primitive DescribeWord() => new("describe_word",
        "describe the word in the form \"W has N letters and V vowels, and reversed it reads R.\"",
        "Describing {0} gives {1}.", "A summary of {0}: {1}.",
        [(Kind.Word, Kind.Text)],
        v => Val.Text($"{v.S} has {v.S.Length} letters and {v.S.Count(c => IsVowel(char.ToLowerInvariant(c)))} vowels, and reversed it reads {new string(v.S.Reverse().ToArray())}."),
        Components: ["length_of", "count_vowels", "reverse_letters"]);

    // ---------------------------------------------------------------- helpers

    /// <summary>English words for 0..999; <paramref name="hyphen"/> selects "forty-two" over "forty two".</summary>
    internal static string NumberWords(long n, bool hyphen)
    {
        if (n is < 0 or > 999) throw new ArgumentOutOfRangeException(nameof(n), n, "number names cover 0..999");
        if (n < 10) return Vocabulary.DigitNames[n];
        if (n < 20) return Vocabulary.Teens[n - 10];
        if (n < 100) return n % 10 == 0 ? Vocabulary.Tens[n / 10] : Vocabulary.Tens[n / 10] + (hyphen ? "-" : " ") + Vocabulary.DigitNames[n % 10];
        var rest = n % 100;
        var head = Vocabulary.DigitNames[n / 100] + " hundred";
        return rest == 0 ? head : head + " " + NumberWords(rest, hyphen);
    }

    internal static string RomanNumeral(long n)
    {
        ReadOnlySpan<int> values = [1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1];
        string[] symbols = ["M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"];
        var sb = new StringBuilder();
        for (var i = 0; i < values.Length; i++)
            while (n >= values[i]) { sb.Append(symbols[i]); n -= values[i]; }
        return sb.ToString();
    }
}
