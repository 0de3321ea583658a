using System.Numerics;
using PeftLab.Evaluation.Code;

namespace PeftLab.Tests.Evaluation.Code;

/// <summary>The unbiased pass@k estimator against its closed form 1 − C(n−c, k) / C(n, k), computed here exactly with big integers.</summary>
public sealed class PassAtKTests
{
    private static BigInteger Choose(int n, int k)
    {
        if (k < 0 || k > n) return BigInteger.Zero;
        BigInteger r = BigInteger.One;
        for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
        return r;
    }

    private static double ClosedForm(int n, int c, int k)
    {
        var num = Choose(n - c, k);
        var den = Choose(n, k);
        return 1.0 - (double)(num * 1_000_000_000_000L / den) / 1e12;
    }

    [Theory]
    [InlineData(1, 1, 1)] [InlineData(1, 0, 1)] [InlineData(5, 2, 1)] [InlineData(10, 3, 2)] [InlineData(20, 1, 10)]
    [InlineData(20, 0, 10)] [InlineData(20, 11, 10)] [InlineData(200, 7, 1)] [InlineData(200, 7, 10)] [InlineData(200, 7, 100)]
    [InlineData(100, 50, 3)] [InlineData(64, 63, 1)]
    public void EqualsTheClosedForm(int n, int c, int k) => Assert.Equal(ClosedForm(n, c, k), PassAtK.Estimate(n, c, k), 1e-9);

    [Fact]
    public void SpecialCasesByHand()
    {
        Assert.Equal(0.4, PassAtK.Estimate(5, 2, 1), 12);              // pass@1 = c / n
        Assert.Equal(1 - 21.0 / 45, PassAtK.Estimate(10, 3, 2), 12);   // 1 − C(7,2)/C(10,2)
        Assert.Equal(0.5, PassAtK.Estimate(20, 1, 10), 12);            // one right of 20, draw half
        Assert.Equal(1.0, PassAtK.Estimate(20, 11, 10));               // n − c < k: every draw of 10 holds a right one
        Assert.Equal(0.0, PassAtK.Estimate(20, 0, 10));
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 2, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 6, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(5, 1, 0));
    }
}
