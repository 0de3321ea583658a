using static PeftLab.Synthetic.Prims;
using C = PeftLab.Synthetic.SyntheticCategory;

namespace PeftLab.Synthetic;

/// <summary>One task family: an input generator and a pipeline of primitive steps.</summary>
internal sealed record TaskSpec(int Number, string Slug, SyntheticCategory Category, TaskSplit Split, InputGen Gen, IReadOnlyList<Primitive> Steps)
{
    public string Name => $"synth{Number:000}_{Slug}";

    /// <summary>The prefix of instance ids ("synth001").</summary>
    public string IdPrefix => $"synth{Number:000}";

    public IReadOnlyList<string> Primitives { get; } = Steps.SelectMany(s => s.ComponentIds).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>Kind of the final output (the pipeline is type-checked when the catalog is built).</summary>
    public Kind OutKind { get; } = Steps.Aggregate(Gen.Kind, (k, s) => s.OutKind(k)
        ?? throw new InvalidOperationException($"internal error: synthetic task '{Slug}': step '{s.Id}' does not accept input of kind {k}"));

    public string Definition { get; } = BuildDefinition(Number, Gen, Steps);

    private static string BuildDefinition(int number, InputGen gen, IReadOnlyList<Primitive> steps)
    {
        var intro = (number % 3) switch
        {
            0 => $"In this task, you are given {gen.Intro}.",
            1 => $"You are given {gen.Intro}.",
            _ => $"The input is {gen.Intro}.",
        };
        string body;
        if (steps.Count == 1) body = Cap(steps[0].Instr) + ".";
        else if (steps.Count == 2) body = $"First {steps[0].Instr}, then {steps[1].Instr}.";
        else
        {
            var parts = new List<string> { "first " + steps[0].Instr };
            for (var i = 1; i < steps.Count - 1; i++) parts.Add("then " + steps[i].Instr);
            parts.Add("finally " + steps[^1].Instr);
            body = "Apply these steps in order: " + string.Join("; ", parts) + ".";
        }
        var outKind = steps.Aggregate(gen.Kind, (k, s) => s.OutKind(k) ?? k);
        var outro = outKind switch
        {
            Kind.Number => " Answer with a single number.",
            Kind.Numbers => " Write the resulting numbers separated by single spaces.",
            Kind.Words => " Write the resulting words separated by single spaces.",
            Kind.Word or Kind.Text => " Write only the result.",
            _ => "",
        };
        return intro + " " + body + outro;
    }

    private static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}

/// <summary>
/// The fixed list of task families and the train/test split. Test tasks are compositions whose primitive set is not
/// contained in any train task's set, while every primitive they use occurs in training (checked in <see cref="Build"/>).
/// </summary>
internal static class TaskCatalog
{
    private static readonly Lazy<IReadOnlyList<TaskSpec>> Instance = new(Build);

    public static IReadOnlyList<TaskSpec> All => Instance.Value;

    /// <summary>
    /// The tasks of some categories (null or empty: all), catalog order: their train tasks, and their test tasks whose
    /// every primitive occurs in one of those train tasks (see <see cref="SyntheticSuiteOptions.Categories"/>).
    /// </summary>
    public static IReadOnlyList<TaskSpec> Select(IReadOnlyCollection<SyntheticCategory>? categories)
    {
        if (categories is not { Count: > 0 }) return All;
        var kept = All.Where(s => categories.Contains(s.Category)).ToArray();
        var trained = new HashSet<string>(kept.Where(s => s.Split == TaskSplit.Train).SelectMany(s => s.Primitives), StringComparer.Ordinal);
        return kept.Where(s => s.Split == TaskSplit.Train || s.Primitives.All(trained.Contains)).ToArray();
    }

    private sealed class Builder
    {
        public readonly List<TaskSpec> Specs = [];

        public void Train(string slug, C cat, InputGen gen, params Primitive[] steps) =>
            Specs.Add(new TaskSpec(Specs.Count + 1, slug, cat, TaskSplit.Train, gen, steps));

        public void Test(string slug, C cat, InputGen gen, params Primitive[] steps) =>
            Specs.Add(new TaskSpec(Specs.Count + 1, slug, cat, TaskSplit.Test, gen, steps));
    }

    private static IReadOnlyList<TaskSpec> Build()
    {
        var b = new Builder();

        // ---- String Transformation
        b.Train("reverse_letters", C.StringTransformation, Gens.Word, ReverseLetters());
        b.Train("uppercase_word", C.StringTransformation, Gens.Word, Uppercase());
        b.Train("capitalize_word", C.StringTransformation, Gens.Word, Capitalize());
        b.Train("double_letters", C.StringTransformation, Gens.Word, DoubleLetters());
        b.Train("remove_vowels", C.StringTransformation, Gens.Word, RemoveVowels());
        b.Train("dedupe_letters", C.StringTransformation, Gens.Word, DedupeLetters());
        b.Train("sort_letters", C.StringTransformation, Gens.Word, SortLetters());
        b.Train("first_three_letters", C.StringTransformation, Gens.Word, FirstLetters(3));
        b.Train("last_three_letters", C.StringTransformation, Gens.Word, LastLetters(3));
        b.Train("rotate_letters", C.StringTransformation, Gens.Word, RotateLetters());
        b.Train("shift_letters", C.StringTransformation, Gens.Word, ShiftLetters());
        b.Train("swap_first_last_letter", C.StringTransformation, Gens.Word, SwapEnds());
        b.Train("pluralize", C.StringTransformation, Gens.Word, Pluralize());
        b.Train("mirror_word", C.StringTransformation, Gens.Word, MirrorWord());
        b.Train("reverse_each_word", C.StringTransformation, Gens.Sentence, ReverseEachWord());
        b.Train("reverse_then_double_letters", C.StringTransformation, Gens.Word, ReverseLetters(), DoubleLetters());
        b.Train("first_three_letters_uppercase", C.StringTransformation, Gens.Word, FirstLetters(3), Uppercase());
        b.Train("remove_vowels_then_capitalize", C.StringTransformation, Gens.Word, RemoveVowels(), Capitalize());
        b.Train("shift_then_uppercase", C.StringTransformation, Gens.Word, ShiftLetters(), Uppercase());
        b.Train("sort_letters_first_three", C.StringTransformation, Gens.Word, SortLetters(), FirstLetters(3));
        b.Train("dedupe_letters_then_reverse", C.StringTransformation, Gens.Word, DedupeLetters(), ReverseLetters());
        b.Train("swap_ends_then_capitalize", C.StringTransformation, Gens.Word, SwapEnds(), Capitalize());
        b.Train("rotate_then_capitalize", C.StringTransformation, Gens.Word, RotateLetters(), Capitalize());
        b.Test("reverse_then_uppercase", C.StringTransformation, Gens.Word, ReverseLetters(), Uppercase());
        b.Test("remove_vowels_then_reverse", C.StringTransformation, Gens.Word, RemoveVowels(), ReverseLetters());
        b.Test("dedupe_then_sort_letters", C.StringTransformation, Gens.Word, DedupeLetters(), SortLetters());

        // ---- List Operations
        b.Train("reverse_number_list", C.ListOperations, Gens.Numbers, ReverseItems());
        b.Train("reverse_word_list", C.ListOperations, Gens.Sentence, ReverseItems());
        b.Train("dedupe_number_list", C.ListOperations, Gens.NumbersRepeats, DedupeItems());
        b.Train("dedupe_word_list", C.ListOperations, Gens.SentenceRepeats, DedupeItems());
        b.Train("first_three_numbers", C.ListOperations, Gens.Numbers, FirstItems(3));
        b.Train("last_two_words", C.ListOperations, Gens.Sentence, LastItems(2));
        b.Train("drop_first_number", C.ListOperations, Gens.Numbers, DropFirstItem());
        b.Train("rotate_word_list", C.ListOperations, Gens.Sentence, RotateItems());
        b.Train("keep_even_numbers", C.ListOperations, Gens.Numbers, FilterEven());
        b.Train("keep_odd_numbers", C.ListOperations, Gens.Numbers, FilterOdd());
        b.Train("keep_numbers_above_50", C.ListOperations, Gens.Numbers, FilterGreater(50));
        b.Train("add_five_to_each", C.ListOperations, Gens.Numbers, AddEach(5));
        b.Train("double_each_number", C.ListOperations, Gens.Numbers, DoubleEach());
        b.Train("running_totals", C.ListOperations, Gens.SmallNumbers, PrefixSums());
        b.Train("neighbour_differences", C.ListOperations, Gens.Numbers, Differences());
        b.Train("keep_long_words", C.ListOperations, Gens.Sentence, FilterLongWords(4));
        b.Train("keep_vowel_words", C.ListOperations, Gens.Sentence, FilterVowelStart());
        b.Train("word_lengths", C.ListOperations, Gens.Sentence, WordLengths());
        b.Train("reverse_then_first_three", C.ListOperations, Gens.Numbers, ReverseItems(), FirstItems(3));
        b.Train("keep_even_sort_descending", C.ListOperations, Gens.Numbers, FilterEven(), SortDesc());
        b.Train("double_then_reverse_list", C.ListOperations, Gens.Numbers, DoubleEach(), ReverseItems());
        b.Train("keep_above_50_add_five", C.ListOperations, Gens.Numbers, FilterGreater(50), AddEach(5));
        b.Train("drop_first_running_totals", C.ListOperations, Gens.SmallNumbers, DropFirstItem(), PrefixSums());
        b.Test("dedupe_then_reverse_list", C.ListOperations, Gens.NumbersRepeats, DedupeItems(), ReverseItems());
        b.Test("keep_odd_then_double", C.ListOperations, Gens.Numbers, FilterOdd(), DoubleEach());

        // ---- Arithmetic
        b.Train("add_two_numbers", C.Arithmetic, Gens.Pair, Sum());
        b.Train("subtract_two_numbers", C.Arithmetic, Gens.PairOrdered, Difference());
        b.Train("multiply_two_numbers", C.Arithmetic, Gens.PairSmall, Product());
        b.Train("sum_of_list", C.Arithmetic, Gens.SmallNumbers, Sum());
        b.Train("add_seven", C.Arithmetic, Gens.Number, AddK(7));
        b.Train("subtract_four", C.Arithmetic, Gens.Number, SubtractK(4));
        b.Train("multiply_by_three", C.Arithmetic, Gens.Number, MultiplyK(3));
        b.Train("square_number", C.Arithmetic, Gens.Number, Square());
        b.Train("digit_sum", C.Arithmetic, Gens.BigNumber, DigitSum());
        b.Train("range_of_list", C.Arithmetic, Gens.Numbers, Range());
        b.Train("sum_of_odd_numbers", C.Arithmetic, Gens.Numbers, FilterOdd(), Sum());
        b.Train("multiply_by_three_add_four", C.Arithmetic, Gens.Number, MultiplyK(3), AddK(4));
        b.Train("square_plus_one", C.Arithmetic, Gens.Number, Square(), AddK(1));
        b.Train("digit_sum_of_total", C.Arithmetic, Gens.Numbers, Sum(), DigitSum());
        b.Train("product_minus_five", C.Arithmetic, Gens.PairSmall, Product(), SubtractK(5));
        b.Train("difference_times_two", C.Arithmetic, Gens.PairOrdered, Difference(), MultiplyK(2));
        b.Test("square_of_sum", C.Arithmetic, Gens.PairSmall, Sum(), Square());
        b.Test("digit_sum_of_product", C.Arithmetic, Gens.PairSmall, Product(), DigitSum());

        // ---- Counting
        b.Train("count_letters", C.Counting, Gens.Word, LengthOf());
        b.Train("count_vowels", C.Counting, Gens.Word, CountVowels());
        b.Train("count_letter_e", C.Counting, Gens.Word, CountLetter('e'));
        b.Train("count_words", C.Counting, Gens.Sentence, CountItems());
        b.Train("count_numbers", C.Counting, Gens.Numbers, CountItems());
        b.Train("count_even_numbers", C.Counting, Gens.Numbers, FilterEven(), CountItems());
        b.Train("count_numbers_above_50", C.Counting, Gens.Numbers, FilterGreater(50), CountItems());
        b.Train("count_animals", C.Counting, Gens.CategoryWords, FilterCategory("animal"), CountItems());
        b.Train("count_distinct_letters", C.Counting, Gens.Word, DedupeLetters(), LengthOf());
        b.Train("count_consonants", C.Counting, Gens.Word, RemoveVowels(), LengthOf());
        b.Test("count_distinct_numbers", C.Counting, Gens.NumbersRepeats, DedupeItems(), CountItems());
        b.Test("count_long_words", C.Counting, Gens.Sentence, FilterLongWords(4), CountItems());

        // ---- Rule-based Classification
        b.Train("is_palindrome", C.RuleClassification, Gens.MaybePalindrome, IsPalindrome());
        b.Train("starts_with_vowel", C.RuleClassification, Gens.Word, StartsWithVowel());
        b.Train("longer_than_five", C.RuleClassification, Gens.Word, LongerThan(5));
        b.Train("even_or_odd", C.RuleClassification, Gens.Number, Parity());
        b.Train("greater_than_fifty", C.RuleClassification, Gens.Number, GreaterThan(50));
        b.Train("is_sorted", C.RuleClassification, Gens.MaybeSorted, IsSorted());
        b.Train("has_duplicates", C.RuleClassification, Gens.SmallNumbers, HasDuplicates());
        b.Train("contains_animal", C.RuleClassification, Gens.CategoryWords, ContainsCategory("animal"));
        b.Train("digit_sum_even_or_odd", C.RuleClassification, Gens.BigNumber, DigitSum(), Parity());
        b.Train("more_than_two_vowels", C.RuleClassification, Gens.Word, CountVowels(), GreaterThan(2));
        b.Train("length_even_or_odd", C.RuleClassification, Gens.Word, LengthOf(), Parity());
        b.Train("largest_above_fifty", C.RuleClassification, Gens.Numbers, Max(), GreaterThan(50));
        b.Train("product_even_or_odd", C.RuleClassification, Gens.PairSmall, Product(), Parity());
        b.Train("distinct_letters_more_than_four", C.RuleClassification, Gens.Word, DedupeLetters(), LongerThan(4));
        b.Test("sum_even_or_odd", C.RuleClassification, Gens.SmallNumbers, Sum(), Parity());
        b.Test("smallest_even_or_odd", C.RuleClassification, Gens.Numbers, Min(), Parity());

        // ---- Extraction
        b.Train("extract_numbers", C.Extraction, Gens.Mixed, ExtractNumbers());
        b.Train("extract_names", C.Extraction, Gens.Mixed, ExtractNames());
        b.Train("extract_lowercase_words", C.Extraction, Gens.Mixed, ExtractWords());
        b.Train("get_age", C.Extraction, Gens.Record, GetAge());
        b.Train("get_name", C.Extraction, Gens.Record, GetName());
        b.Train("get_city", C.Extraction, Gens.Record, GetCity());
        b.Train("extract_fruits", C.Extraction, Gens.CategoryWords, FilterCategory("fruit"));
        b.Train("initials", C.Extraction, Gens.Sentence, Initials());
        b.Train("largest_extracted_number", C.Extraction, Gens.Mixed, ExtractNumbers(), Max());
        b.Train("count_names", C.Extraction, Gens.Mixed, ExtractNames(), CountItems());
        b.Train("extract_words_reversed", C.Extraction, Gens.Mixed, ExtractWords(), ReverseItems());
        b.Train("name_uppercase", C.Extraction, Gens.Record, GetName(), Uppercase());
        b.Train("age_in_five_years", C.Extraction, Gens.Record, GetAge(), AddK(5));
        b.Train("city_reversed", C.Extraction, Gens.Record, GetCity(), ReverseLetters());
        b.Test("sum_of_extracted_numbers", C.Extraction, Gens.Mixed, ExtractNumbers(), Sum());
        b.Test("extract_names_sorted", C.Extraction, Gens.Mixed, ExtractNames(), SortWords());

        // ---- Pattern Completion
        b.Train("next_in_arithmetic_sequence", C.PatternCompletion, Gens.ArithSeq, NextArith());
        b.Train("next_in_geometric_sequence", C.PatternCompletion, Gens.GeoSeq, NextGeometric());
        b.Train("next_in_fibonacci_sequence", C.PatternCompletion, Gens.FibSeq, NextFib());
        b.Train("next_in_word_cycle", C.PatternCompletion, Gens.CycleSeq, NextCycle());
        b.Train("next_letter_in_sequence", C.PatternCompletion, Gens.LetterSeq, NextLetter());
        b.Train("next_in_word_cycle_uppercase", C.PatternCompletion, Gens.CycleSeq, NextCycle(), Uppercase());
        b.Train("next_in_word_cycle_reversed", C.PatternCompletion, Gens.CycleSeq, NextCycle(), ReverseLetters());
        b.Train("next_fibonacci_even_or_odd", C.PatternCompletion, Gens.FibSeq, NextFib(), Parity());
        b.Train("next_geometric_in_words", C.PatternCompletion, Gens.GeoSeq, NextGeometric(), NumberName());
        b.Train("next_letter_nato", C.PatternCompletion, Gens.LetterSeq, NextLetter(), NatoSpell());
        b.Test("next_arithmetic_even_or_odd", C.PatternCompletion, Gens.ArithSeq, NextArith(), Parity());
        b.Test("next_fibonacci_in_words", C.PatternCompletion, Gens.FibSeq, NextFib(), NumberName());

        // ---- Formatting
        b.Train("join_words_with_commas", C.Formatting, Gens.Sentence, JoinComma());
        b.Train("join_numbers_with_commas", C.Formatting, Gens.Numbers, JoinComma());
        b.Train("word_in_brackets", C.Formatting, Gens.Word, WrapBrackets());
        b.Train("numbered_list", C.Formatting, Gens.ShortSentence, NumberItems());
        b.Train("snake_case", C.Formatting, Gens.Sentence, SnakeCase());
        b.Train("camel_case", C.Formatting, Gens.Sentence, CamelCase());
        b.Train("capitalize_each_word", C.Formatting, Gens.Sentence, CapitalizeEach());
        b.Train("hyphenate_letters", C.Formatting, Gens.Word, HyphenateLetters());
        b.Train("split_into_digits", C.Formatting, Gens.BigNumber, DigitsOf());
        b.Train("reverse_then_join_commas", C.Formatting, Gens.Sentence, ReverseItems(), JoinComma());
        b.Train("uppercase_in_brackets", C.Formatting, Gens.Word, Uppercase(), WrapBrackets());
        b.Train("sorted_numbered_list", C.Formatting, Gens.ShortSentence, SortWords(), NumberItems());
        b.Train("capitalize_then_join_commas", C.Formatting, Gens.Sentence, CapitalizeEach(), JoinComma());
        b.Train("snake_case_uppercase", C.Formatting, Gens.Sentence, SnakeCase(), Uppercase());
        b.Train("camel_case_in_brackets", C.Formatting, Gens.Sentence, CamelCase(), WrapBrackets());
        b.Test("sort_words_join_commas", C.Formatting, Gens.Sentence, SortWords(), JoinComma());
        b.Test("capitalize_each_in_brackets", C.Formatting, Gens.Sentence, CapitalizeEach(), WrapBrackets());

        // ---- Comparison and Sorting
        b.Train("sort_ascending", C.ComparisonSorting, Gens.Numbers, SortAsc());
        b.Train("sort_descending", C.ComparisonSorting, Gens.Numbers, SortDesc());
        b.Train("sort_words", C.ComparisonSorting, Gens.Sentence, SortWords());
        b.Train("largest_number", C.ComparisonSorting, Gens.Numbers, Max());
        b.Train("smallest_number", C.ComparisonSorting, Gens.Numbers, Min());
        b.Train("longest_word", C.ComparisonSorting, Gens.Sentence, LongestWord());
        b.Train("shortest_word", C.ComparisonSorting, Gens.Sentence, ShortestWord());
        b.Train("larger_of_two", C.ComparisonSorting, Gens.Pair, Max());
        b.Train("sort_by_length", C.ComparisonSorting, Gens.Sentence, SortByLength());
        b.Train("largest_three", C.ComparisonSorting, Gens.Numbers, SortDesc(), FirstItems(3));
        b.Train("shortest_word_uppercase", C.ComparisonSorting, Gens.Sentence, ShortestWord(), Uppercase());
        b.Train("longest_word_length", C.ComparisonSorting, Gens.Sentence, WordLengths(), Max());
        b.Train("shortest_word_length", C.ComparisonSorting, Gens.Sentence, WordLengths(), Min());
        b.Train("last_two_alphabetically", C.ComparisonSorting, Gens.Sentence, SortWords(), LastItems(2));
        b.Test("smallest_three", C.ComparisonSorting, Gens.Numbers, SortAsc(), FirstItems(3));
        b.Test("longest_word_uppercase", C.ComparisonSorting, Gens.Sentence, LongestWord(), Uppercase());

        // ---- Lookup and Mapping
        b.Train("digit_names", C.LookupMapping, Gens.Digits, DigitNames());
        b.Train("number_in_words", C.LookupMapping, Gens.Number, NumberName());
        b.Train("roman_numeral", C.LookupMapping, Gens.RomanNumber, Roman());
        b.Train("month_name", C.LookupMapping, Gens.MonthNumber, MonthName());
        b.Train("letter_positions", C.LookupMapping, Gens.Word, LetterPositions());
        b.Train("color_to_fruit", C.LookupMapping, Gens.ColorWords, ColorFruit());
        b.Train("animal_sounds", C.LookupMapping, Gens.AnimalWords, AnimalSound());
        b.Train("opposites", C.LookupMapping, Gens.OppositeWords, Opposites());
        b.Train("word_categories", C.LookupMapping, Gens.CategoryWords, CategoryOfEach());
        b.Train("digits_reversed", C.LookupMapping, Gens.BigNumber, DigitsOf(), ReverseItems());
        b.Train("opposites_uppercase", C.LookupMapping, Gens.OppositeWords, Opposites(), Uppercase());
        b.Train("color_to_fruit_commas", C.LookupMapping, Gens.ColorWords, ColorFruit(), JoinComma());
        b.Train("distinct_animal_sounds", C.LookupMapping, Gens.AnimalWords, AnimalSound(), DedupeItems());
        b.Train("distinct_categories", C.LookupMapping, Gens.CategoryWords, CategoryOfEach(), DedupeItems());
        b.Train("word_value", C.LookupMapping, Gens.Word, LetterPositions(), Sum());
        b.Train("month_abbreviation", C.LookupMapping, Gens.MonthNumber, MonthName(), FirstLetters(3));
        b.Test("spell_out_digits", C.LookupMapping, Gens.BigNumber, DigitsOf(), DigitNames());
        b.Test("opposites_reversed", C.LookupMapping, Gens.OppositeWords, Opposites(), ReverseItems());
        b.Test("color_to_fruit_sorted", C.LookupMapping, Gens.ColorWords, ColorFruit(), SortWords());

        // ---- Multi-step Reasoning (three or more steps)
        b.Train("two_largest_extracted_numbers", C.MultiStepReasoning, Gens.Mixed, ExtractNumbers(), SortDesc(), FirstItems(2));
        b.Train("sum_of_doubled_evens", C.MultiStepReasoning, Gens.Numbers, FilterEven(), DoubleEach(), Sum());
        b.Train("three_longest_word_lengths", C.MultiStepReasoning, Gens.Sentence, WordLengths(), SortDesc(), FirstItems(3));
        b.Train("first_four_doubled_uppercase", C.MultiStepReasoning, Gens.Word, FirstLetters(4), DoubleLetters(), Uppercase());
        b.Train("age_in_ten_years_even_or_odd", C.MultiStepReasoning, Gens.Record, GetAge(), AddK(10), Parity());
        b.Train("digits_descending_commas", C.MultiStepReasoning, Gens.BigNumber, DigitsOf(), SortDesc(), JoinComma());
        b.Train("word_value_above_fifty", C.MultiStepReasoning, Gens.Word, LetterPositions(), Sum(), GreaterThan(50));
        b.Train("sorted_distinct_categories", C.MultiStepReasoning, Gens.CategoryWords, CategoryOfEach(), DedupeItems(), SortWords());
        b.Train("sorted_reversed_hyphenated", C.MultiStepReasoning, Gens.Word, SortLetters(), ReverseLetters(), HyphenateLetters());
        b.Train("consonants_distinct_uppercase", C.MultiStepReasoning, Gens.Word, RemoveVowels(), DedupeLetters(), Uppercase());
        b.Test("sum_of_extracted_even_numbers", C.MultiStepReasoning, Gens.Mixed, ExtractNumbers(), FilterEven(), Sum());
        b.Test("total_letters_even_or_odd", C.MultiStepReasoning, Gens.Sentence, WordLengths(), Sum(), Parity());
        b.Test("city_reversed_uppercase", C.MultiStepReasoning, Gens.Record, GetCity(), ReverseLetters(), Uppercase());

        // ---- Long-form Generation (outputs of about 50-150 characters)
        b.Train("multiplication_table", C.LongFormGeneration, Gens.SmallNumber, TimesTable());
        b.Train("countdown", C.LongFormGeneration, Gens.CountdownNumber, Countdown());
        b.Train("nato_spelling", C.LongFormGeneration, Gens.LetterString, NatoSpell());
        b.Train("all_prefixes", C.LongFormGeneration, Gens.LetterString, Prefixes());
        b.Train("all_rotations", C.LongFormGeneration, Gens.LetterString, Rotations());
        b.Train("describe_numbers", C.LongFormGeneration, Gens.Numbers, DescribeNumbers());
        b.Train("describe_word", C.LongFormGeneration, Gens.Word, DescribeWord());
        b.Train("numbers_in_words", C.LongFormGeneration, Gens.Numbers, NumberNames());
        b.Train("nato_spelling_sorted_letters", C.LongFormGeneration, Gens.LetterString, SortLetters(), NatoSpell());
        b.Train("describe_doubled_numbers", C.LongFormGeneration, Gens.Numbers, DoubleEach(), DescribeNumbers());
        b.Train("sorted_numbers_in_words", C.LongFormGeneration, Gens.Numbers, SortDesc(), NumberNames());
        b.Train("prefixes_of_reversed_word", C.LongFormGeneration, Gens.LetterString, ReverseLetters(), Prefixes());
        b.Train("multiplication_table_of_difference", C.LongFormGeneration, Gens.PairOrdered, Difference(), TimesTable());
        b.Train("countdown_from_digit_sum", C.LongFormGeneration, Gens.BigNumber, DigitSum(), Countdown());
        b.Test("nato_spelling_reversed", C.LongFormGeneration, Gens.LetterString, ReverseLetters(), NatoSpell());
        b.Test("describe_distinct_numbers", C.LongFormGeneration, Gens.NumbersRepeats, DedupeItems(), DescribeNumbers());
        b.Test("uppercase_prefixes", C.LongFormGeneration, Gens.LetterString, Prefixes(), Uppercase());
        b.Test("multiplication_table_of_sum", C.LongFormGeneration, Gens.PairSmall, Sum(), TimesTable());

        Validate(b.Specs);
        return b.Specs;
    }

    /// <summary>Checks names, types and the compositional split; a failure is a bug in the catalog above.</summary>
    private static void Validate(IReadOnlyList<TaskSpec> specs)
    {
        var dup = specs.GroupBy(s => s.Slug, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOperationException($"internal error: synthetic task slug '{dup.Key}' is used twice");
        foreach (var s in specs) _ = s.OutKind; // type-checks the pipeline (throws on mismatch)

        // Template words must not be suite input words: the corpus drops every sentence containing a suite input.
        foreach (var step in specs.SelectMany(s => s.Steps))
        {
            var clash = (step.Instr + " " + step.Explain + " " + step.Fact).Split(' ', ',', '.', '(', ')', '"', '?', ':', ';')
                .FirstOrDefault(w => Vocabulary.SuiteWords.Contains(w) || Vocabulary.SuiteNames.Contains(w) || Vocabulary.SuiteCities.Contains(w));
            if (clash is not null)
                throw new InvalidOperationException($"internal error: primitive '{step.Id}' uses the suite input word '{clash}' in its sentences");
        }

        // Different primitives need different wording, or definitions (and corpus chains) could not tell them apart.
        var sameWords = specs.SelectMany(s => s.Steps).GroupBy(p => p.Instr, StringComparer.Ordinal)
            .FirstOrDefault(g => g.Select(p => p.Id).Distinct().Count() > 1);
        if (sameWords is not null)
            throw new InvalidOperationException($"internal error: primitives {string.Join(", ", sameWords.Select(p => p.Id).Distinct())} share the instruction '{sameWords.Key}'");

        var train = specs.Where(s => s.Split == TaskSplit.Train).ToArray();
        var trainPrims = new HashSet<string>(train.SelectMany(s => s.Primitives), StringComparer.Ordinal);
        foreach (var t in specs.Where(s => s.Split == TaskSplit.Test))
        {
            if (t.Primitives.Count < 2)
                throw new InvalidOperationException($"internal error: test task '{t.Name}' must compose at least two primitives");
            var missing = t.Primitives.FirstOrDefault(p => !trainPrims.Contains(p));
            if (missing is not null)
                throw new InvalidOperationException($"internal error: test task '{t.Name}' uses primitive '{missing}' that no train task uses");
            var covering = train.FirstOrDefault(tr => t.Primitives.All(p => tr.Primitives.Contains(p)));
            if (covering is not null)
                throw new InvalidOperationException(
                    $"internal error: test task '{t.Name}' ({string.Join("+", t.Primitives)}) is contained in train task '{covering.Name}' ({string.Join("+", covering.Primitives)})");
        }
    }
}
