using PeftLab.Evaluation.Harness;

namespace PeftLab.Tests.Evaluation.Harness;

/// <summary>The harness's filters and generation metrics against values worked out by hand (and as Python's re.findall gives them).</summary>
public sealed class HarnessScoringTests
{
    private static HarnessFilterStep Regex(string pattern, int group = 0) => new() { Function = HarnessFilterFunction.Regex, RegexPattern = pattern, GroupSelect = group };

    [Theory]
    // GSM8K strict-match: re.findall("#### (\-?[0-9\.\,]+)", ...) -> ['1,234']
    [InlineData("#### (\\-?[0-9\\.\\,]+)", 0, "She pays 3 + 4 = 7.\n#### 1,234", "1,234")]
    [InlineData("#### (\\-?[0-9\\.\\,]+)", 0, "no marker here", "[invalid]")]
    // flexible-extract: two groups per match, the first non-empty kept; group_select -1 = the last match
    [InlineData("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, "3 apples and 12 pears make 15", "15")]
    [InlineData("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, "so it is 7", "7")]
    [InlineData("(-?[$0-9.,]{2,})|(-?[0-9]+)", 0, "costs $18.50 then 3", "$18.50")]
    // BBH: a lookbehind, the rest of the line but its last character
    [InlineData("(?<=the answer is )(.*)(?=.)", 0, "A and B, so the answer is True.", "True")]
    // no group: the whole match
    [InlineData("[0-9]+", 1, "a 1 b 22 c", "22")]
    [InlineData("[0-9]+", 5, "a 1 b 22 c", "[invalid]")]
    public void RegexFiltersPickAsTheHarness(string pattern, int group, string answer, string expected) =>
        Assert.Equal(expected, HarnessScoring.Filter([Regex(pattern, group), new HarnessFilterStep()], answer));

    [Fact]
    public void OtherFiltersAndStopSequences()
    {
        Assert.Equal("abc ", HarnessScoring.Filter([new() { Function = HarnessFilterFunction.RemoveWhitespace }], "  abc ")[1..]);
        Assert.Equal("YES", HarnessScoring.Filter([new() { Function = HarnessFilterFunction.Uppercase }], "yes"));
        Assert.Equal("yes", HarnessScoring.Filter([new() { Function = HarnessFilterFunction.Lowercase }], "YeS"));
        Assert.Equal(" 42", HarnessScoring.CutAtStop(" 42\n\nQuestion: next", ["Question:", "\n\n"]));
        Assert.Equal("no stop", HarnessScoring.CutAtStop("no stop", ["</s>", ""]));
    }

    [Fact]
    public void ExactMatchAppliesTheGsm8kNormalisation()
    {
        var gsm = new HarnessMetric { Metric = "exact_match", IgnoreCase = true, RegexesToIgnore = [",", "\\$", "(?s).*#### ", "\\.$"] };
        Assert.Equal(1, HarnessScoring.ExactMatch("1,234", "Natalia sold 48 clips.\nSo $1234 total.\n#### 1,234", gsm));
        Assert.Equal(0, HarnessScoring.ExactMatch("1,235", "#### 1234", gsm));
        Assert.Equal(1, HarnessScoring.ExactMatch("$72.", "#### 72", gsm));
        var plain = new HarnessMetric { Metric = "exact_match" };
        Assert.Equal(0, HarnessScoring.ExactMatch("True", "true", plain));
        Assert.Equal(1, HarnessScoring.ExactMatch("True!", "true", plain with { IgnoreCase = true, IgnorePunctuation = true }));
    }

    [Theory]
    [InlineData("Paris", "paris", 1.0)]
    [InlineData("the city of Paris", "Paris", 2 * (1 / 3.0) * 1 / (1 / 3.0 + 1))]   // tokens city, of, paris: P 1/3, R 1
    [InlineData("in 1996", "1996 and 1997", 2 * 0.5 * (1 / 3.0) / (0.5 + 1 / 3.0))]
    [InlineData("a", "the", 1.0)]                                                    // both normalise to nothing
    [InlineData("x", "", 0.0)]
    [InlineData("cat cat", "cat", 2 * 0.5 * 1 / 1.5)]                                // bag of tokens: one shared
    public void TokenF1IsTheSquadOne(string prediction, string reference, double expected) =>
        Assert.Equal(expected, HarnessScoring.TokenF1(prediction, reference), 12);
}
