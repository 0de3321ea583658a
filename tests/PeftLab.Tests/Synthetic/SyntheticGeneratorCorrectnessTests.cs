using System.Globalization;

namespace PeftLab.Tests.Synthetic;

/// <summary>Recomputes the answers of a sample of tasks with code written independently of the generator.</summary>
[Collection(SyntheticSuiteCollection.Name)]
public sealed class SyntheticGeneratorCorrectnessTests(SyntheticSuiteFixture fx)
{
    private static readonly string[] Nato =
        ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima", "mike",
         "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"];

    private void Check(string slug, Func<string, string> expected)
    {
        var n = 0;
        foreach (var (input, output, _) in fx.Instances(slug))
        {
            Assert.True(expected(input) == output, $"{slug}: input '{input}' gave '{output}', expected '{expected(input)}'");
            n++;
        }
        Assert.Equal(fx.Options.InstancesPerTask, n);
        // Positive examples obey the same rule.
        foreach (var ex in fx.Task(slug).GetProperty("Positive Examples").EnumerateArray())
            Assert.Equal(expected(ex.GetProperty("input").GetString()!), ex.GetProperty("output").GetString());
    }

    private static long[] Nums(string s) => s.Split(' ').Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
    private static string Join(IEnumerable<long> xs) => string.Join(" ", xs);
    private static string Rev(string s) { var a = s.ToCharArray(); Array.Reverse(a); return new string(a); }
    private static bool Vowel(char c) => "aeiouAEIOU".Contains(c);

    [Fact]
    public void StringTasks() 
    {
        Check("reverse_letters", Rev);
        Check("uppercase_word", s => s.ToUpperInvariant());
        Check("reverse_then_uppercase", s => Rev(s).ToUpperInvariant());
        Check("remove_vowels_then_reverse", s => Rev(new string(s.Where(c => !Vowel(c)).ToArray())));
        Check("double_letters", s => string.Concat(s.Select(c => $"{c}{c}")));
        Check("shift_letters", s => new string(s.Select(c => c == 'z' ? 'a' : (char)(c + 1)).ToArray()));
        Check("pluralize", s =>
            s.EndsWith("s") || s.EndsWith("x") || s.EndsWith("z") || s.EndsWith("ch") || s.EndsWith("sh") ? s + "es"
            : s.EndsWith("y") && !Vowel(s[^2]) ? s[..^1] + "ies" : s + "s");
        Check("dedupe_then_sort_letters", s => new string(s.Distinct().OrderBy(c => c).ToArray()));
    }

    [Fact]
    public void NumberAndListTasks()
    {
        Check("sort_ascending", s => Join(Nums(s).OrderBy(x => x)));
        Check("smallest_three", s => Join(Nums(s).OrderBy(x => x).Take(3)));
        Check("sum_of_list", s => Nums(s).Sum().ToString(CultureInfo.InvariantCulture));
        Check("keep_even_numbers", s => Join(Nums(s).Where(x => x % 2 == 0)));
        Check("running_totals", s => { long t = 0; return Join(Nums(s).Select(x => t += x)); });
        Check("dedupe_then_reverse_list", s => Join(Nums(s).Distinct().Reverse()));
        Check("digit_sum_of_product", s => Nums(s).Aggregate(1L, (a, b) => a * b).ToString(CultureInfo.InvariantCulture).Sum(c => c - '0').ToString(CultureInfo.InvariantCulture));
        Check("next_in_arithmetic_sequence", s => { var a = Nums(s); return (a[^1] + a[1] - a[0]).ToString(CultureInfo.InvariantCulture); });
        Check("countdown", s => Join(Enumerable.Range(1, int.Parse(s, CultureInfo.InvariantCulture)).Reverse().Select(i => (long)i)));
        Check("multiplication_table", s => string.Join(" ", Enumerable.Range(1, 10).Select(i => $"{s}x{i}={int.Parse(s, CultureInfo.InvariantCulture) * i}")));
        Check("describe_numbers", s =>
        {
            var a = Nums(s);
            return $"There are {a.Length} numbers; the smallest is {a.Min()}, the largest is {a.Max()} and the sum is {a.Sum()}.";
        });
    }

    [Fact]
    public void CountingAndClassificationTasks()
    {
        Check("count_vowels", s => s.Count(Vowel).ToString(CultureInfo.InvariantCulture));
        Check("count_distinct_numbers", s => Nums(s).Distinct().Count().ToString(CultureInfo.InvariantCulture));
        Check("is_palindrome", s => s == Rev(s) ? "yes" : "no");
        Check("is_sorted", s => { var a = Nums(s); return a.SequenceEqual(a.OrderBy(x => x)) ? "yes" : "no"; });
        Check("total_letters_even_or_odd", s => s.Split(' ').Sum(w => w.Length) % 2 == 0 ? "even" : "odd");
        Check("sum_even_or_odd", s => Nums(s).Sum() % 2 == 0 ? "even" : "odd");
    }

    [Fact]
    public void ExtractionFormattingAndLookupTasks()
    {
        Check("sum_of_extracted_numbers", s => s.Split(' ').Where(t => t.All(char.IsDigit)).Sum(t => long.Parse(t, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture));
        Check("extract_names_sorted", s => string.Join(" ", s.Split(' ').Where(t => char.IsUpper(t[0])).Order(StringComparer.Ordinal)));
        Check("get_age", s => s.Split("; ").Single(f => f.StartsWith("age: ")).Substring(5));
        Check("camel_case", s =>
        {
            var w = s.Split(' ');
            return w[0] + string.Concat(w.Skip(1).Select(x => char.ToUpperInvariant(x[0]) + x[1..]));
        });
        Check("sort_words_join_commas", s => string.Join(", ", s.Split(' ').Order(StringComparer.Ordinal)));
        Check("month_name", s => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(int.Parse(s, CultureInfo.InvariantCulture)).ToLowerInvariant());
        Check("roman_numeral", s =>
        {
            var n = int.Parse(s, CultureInfo.InvariantCulture);
            string[] tens = ["", "X", "XX", "XXX", "XL", "L"], ones = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"];
            return tens[n / 10] + ones[n % 10];
        });
        Check("nato_spelling_reversed", s => string.Join(" ", Rev(s).Select(c => Nato[c - 'a'])));

        // The colour table is stated in the definition; parse it from there and apply it.
        var def = fx.Task("color_to_fruit").GetProperty("Definition")[0].GetString()!;
        var table = def[(def.IndexOf("table: ", StringComparison.Ordinal) + 7)..def.IndexOf(". Write", StringComparison.Ordinal)]
            .Split(", ").Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal(6, table.Count);
        Check("color_to_fruit", s => string.Join(" ", s.Split(' ').Select(w => table[w])));
        Check("color_to_fruit_sorted", s => string.Join(" ", s.Split(' ').Select(w => table[w]).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void MultipleReferences_ListEveryCorrectAnswer()
    {
        foreach (var (input, output, all) in fx.Instances("longest_word"))
        {
            var words = input.Split(' ');
            var longest = words.Where(w => w.Length == words.Max(x => x.Length)).Distinct().ToArray();
            Assert.Equal(longest, all);
            Assert.Equal(longest[0], output);
        }
        string[] units = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
        string[] tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
        foreach (var (input, output, all) in fx.Instances("number_in_words"))
        {
            var n = int.Parse(input, CultureInfo.InvariantCulture);
            if (n < 20 || n % 10 == 0)
            {
                Assert.Equal([n < 20 ? units[n] : tens[n / 10]], all);
            }
            else
            {
                Assert.Equal($"{tens[n / 10]}-{units[n % 10]}", output);
                Assert.Equal([output, $"{tens[n / 10]} {units[n % 10]}"], all);
            }
        }
    }
}
