using PeftLab.Peft.LoKr;

namespace PeftLab.Tests.Peft;

/// <summary>LoKr's split of a layer side into the two Kronecker factors' sides, against PEFT's documented and computed values.</summary>
public sealed class LoKrFactorizationTests
{
    [Theory]
    // decompose_factor −1: the divisor pair closest to √dimension, smaller first (PEFT's docstring: 256, 128, 127)
    [InlineData(256, -1, 16, 16)]
    [InlineData(128, -1, 8, 16)]
    [InlineData(127, -1, 1, 127)]
    [InlineData(4096, -1, 64, 64)]
    [InlineData(11008, -1, 86, 128)]
    [InlineData(14336, -1, 112, 128)]
    [InlineData(896, -1, 28, 32)]
    [InlineData(4864, -1, 64, 76)]
    [InlineData(48, -1, 6, 8)]
    // a factor that divides the side is taken as given, even when it is the larger one (PEFT does not swap it)
    [InlineData(128, 4, 4, 32)]
    [InlineData(64, 16, 16, 4)]
    [InlineData(12, 2, 2, 6)]
    [InlineData(12, 3, 3, 4)]
    // a factor that does not divide: the largest divisor up to it
    [InlineData(250, 4, 2, 125)]
    [InlineData(360, 16, 15, 24)]
    public void SplitsAsPeftDoes(long dimension, int factor, long m, long n)
    {
        Assert.Equal((m, n), LoKrMethod.Factorization(dimension, factor));
        Assert.Equal(dimension, m * n);
    }
}
