using PeftLab.Runtime;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Runtime;

/// <summary><c>model.dtype: auto</c>: the host's matmul rates, their cache, and the rule that picks a precision from them.</summary>
public sealed class HostPrecisionTests
{
    private static MatmulRates Rates(double fp32, double bf16) => new(fp32, bf16, 2, 1024, new DateTime(2026, 12, 7, 6, 0, 0, DateTimeKind.Utc));

    [Theory]
    [InlineData(190.0, 413.0, ScalarType.BFloat16)]   // the AMD EPYC of an earlier round: bf16 2.2x
    [InlineData(233.0, 144.0, ScalarType.Float32)]    // an Intel Xeon with AVX-512 BF16: bf16 0.6x
    [InlineData(233.0, 1.5, ScalarType.Float32)]      // a libtorch without a fast bf16 kernel for this CPU
    [InlineData(200.0, 200.0, ScalarType.Float32)]    // a tie keeps float32 (no rounding for nothing)
    public void AutoPicksThePrecisionThatMultipliesFaster(double fp32, double bf16, ScalarType expected)
    {
        Assert.Equal(expected, ComputeDtypes.Choose(Rates(fp32, bf16)));
        Assert.Equal(bf16 / fp32, Rates(fp32, bf16).Bfloat16Ratio, 12);
    }

    [Fact]
    public void ExplicitPrecisionsAreNeverMeasured()
    {
        Assert.Equal(ScalarType.Float32, ComputeDtypes.Resolve(ComputeDtype.Float32));
        Assert.Equal(ScalarType.BFloat16, ComputeDtypes.Resolve(ComputeDtype.Bfloat16));
        Assert.Equal(ComputeDtypes.Choose(HostPrecision.Rates), ComputeDtypes.Resolve(ComputeDtype.Auto));
    }

    [Fact]
    public void TheMeasurementTimesBothPrecisionsAtTheGivenThreadCount()
    {
        int before = get_num_threads();
        var r = HostPrecision.Measure(128, threads: 1, seconds: 0.02);
        Assert.Equal(before, get_num_threads());                                // the process setting is restored
        Assert.Equal((1, 128), (r.Threads, r.Size));
        Assert.True(r.Float32Gflops > 0.1 && r.Bfloat16Gflops > 0.01, r.ToString());
        Assert.True(r.Float32Gflops < 1e5 && r.Bfloat16Gflops < 1e5, r.ToString());   // no division by a zero time
        Assert.Contains("GFLOP/s", r.ToString());
    }

    [Fact]
    public void CachedRatesReadBackAsWritten()
    {
        var path = Path.Combine(TestPaths.NewTempDir("precision"), "sub", "host.json");
        var written = HostPrecision.WriteCache(path, Rates(186.4, 418.8));
        Assert.Equal(written, HostPrecision.ReadCache(path));
        Assert.Null(HostPrecision.ReadCache(path + ".absent"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1, 2]")]
    [InlineData("{}")]
    [InlineData("""{"fp32_gflops": 0, "bf16_gflops": 400, "threads": 2, "size": 1024, "measured_utc": "2026-12-07T06:00:00Z"}""")]
    [InlineData("""{"fp32_gflops": 190, "bf16_gflops": "fast", "threads": 2, "size": 1024, "measured_utc": "2026-12-07T06:00:00Z"}""")]
    [InlineData("""{"fp32_gflops": 190, "bf16_gflops": 400, "threads": 2, "size": 1024, "measured_utc": "yesterday"}""")]
    public void ADamagedCacheIsMeasuredAgainNotTrusted(string text)
    {
        var path = Path.Combine(TestPaths.NewTempDir("precision"), "host.json");
        File.WriteAllText(path, text);
        Assert.Null(HostPrecision.ReadCache(path));
    }

    [Fact]
    public void DoctorPrintsTheChoiceAndTheRates()
    {
        var output = CliRunner.Ok("doctor");
        var line = output.Split('\n').Single(l => l.StartsWith("precision: ", StringComparison.Ordinal));
        Assert.Matches(@"^precision: model\.dtype auto picks (bfloat16|float32): bf16 \d+ vs fp32 \d+ GFLOP/s \(\d+\.\d\dx; 1024x1024 linear, \d+ threads, measured ", line);
    }
}
