using PeftLab.Checkpoints;
using PeftLab.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftLab.Tests.Checkpoints;

public sealed class TensorConversionsTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public TensorConversionsTests() => TorchRuntime.EnsureInitialised();

    public void Dispose() => _tmp.Dispose();

    private static Tensor RandomTensor(ScalarType type, long[] shape) => type switch
    {
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64 => randn(shape, ScalarType.Float64).to(type),
        ScalarType.Bool => rand(shape) > 0.5,
        ScalarType.Byte => randint(0, 256, shape, ScalarType.Byte),
        _ => randint(-100, 100, shape, type),
    };

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    [Fact]
    public void EveryTorchDTypeRoundTrips()
    {
        var types = new[]
        {
            ScalarType.Float32, ScalarType.Float64, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64, ScalarType.Int32,
            ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
        };
        using var scope = NewDisposeScope();
        var originals = new Dictionary<string, Tensor>();
        foreach (var type in types)
        {
            originals[$"{type}.matrix"] = RandomTensor(type, [3, 5]);
            originals[$"{type}.scalar"] = RandomTensor(type, []);
            originals[$"{type}.empty"] = RandomTensor(type, [0, 2]);
        }
        string path = _tmp.File("torch.safetensors");
        SafeTensorsWriter.Write(path, originals.Select(kv => TensorConversions.FromTensor(kv.Key, kv.Value)));

        using var f = SafeTensorsFile.Open(path);
        foreach (var (name, original) in originals)
        {
            var info = f.GetInfo(name);
            Assert.Equal(TensorConversions.ToSafeDType(original.dtype), info.DType);
            Assert.Equal(original.shape, info.Shape);
            Assert.Equal(Bytes(original), f.ReadBytes(name));

            var loaded = TensorConversions.ToTensor(f, name);
            Assert.Equal(original.dtype, loaded.dtype);
            Assert.Equal(original.shape, loaded.shape);
            Assert.Equal(DeviceType.CPU, loaded.device_type);
            Assert.Equal(Bytes(original), Bytes(loaded));
            using var same = original.eq(loaded).all();
            Assert.True(same.item<bool>(), name);
        }
    }

    [Fact]
    public void Bf16ValuesAndConversion()
    {
        // 1.0 = 0x3F80, -2.5 = 0xC020, 0.15625 = 0x3E20, 65280 = 0x477F (exactly representable in bfloat16).
        var raw = new byte[] { 0x80, 0x3F, 0x20, 0xC0, 0x20, 0x3E, 0x7F, 0x47 };
        float[] expected = [1f, -2.5f, 0.15625f, 65280f];
        string path = _tmp.File("bf16.safetensors");
        SafeTensorsWriter.Write(path,
        [
            TensorEntry.FromBytes("w", SafeDType.BF16, [2, 2], raw),
            TensorEntry.FromBytes("ids", SafeDType.I64, [2], new byte[16]),
        ]);
        using var f = SafeTensorsFile.Open(path);

        using (var asBf16 = TensorConversions.ToTensor(f, "w"))
        using (var up = asBf16.to(ScalarType.Float32))
        {
            Assert.Equal(ScalarType.BFloat16, asBf16.dtype);
            Assert.Equal([2L, 2], asBf16.shape);
            Assert.Equal(expected, up.data<float>().ToArray());
        }
        using (var asF32 = TensorConversions.ToTensor(f, "w", ScalarType.Float32))
        {
            Assert.Equal(ScalarType.Float32, asF32.dtype);
            Assert.Equal(expected, asF32.data<float>().ToArray());
        }
        // Integer tensors keep their type when a floating compute dtype is requested.
        using (var ids = TensorConversions.ToTensor(f, "ids", ScalarType.BFloat16))
            Assert.Equal(ScalarType.Int64, ids.dtype);

        var bad = Assert.Throws<ArgumentException>(() => TensorConversions.ToTensor(f, "w", ScalarType.Int32));
        Assert.Contains("floating-point", bad.Message);

        // Writing a bfloat16 tensor produces exactly those bytes.
        using var t = tensor(expected).to(ScalarType.BFloat16);
        string back = _tmp.File("bf16-back.safetensors");
        SafeTensorsWriter.Write(back, [TensorConversions.FromTensor("w", t.reshape(2, 2))]);
        using var g = SafeTensorsFile.Open(back);
        Assert.Equal(raw, g.ReadBytes("w"));
    }

    [Fact]
    public void F32ConvertsToBf16LikeTorch()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 7);
        string path = _tmp.File("f32.safetensors");
        SafeTensorsWriter.Write(path, [TensorConversions.FromTensor("x", x), TensorConversions.FromTensor("h", x.to(ScalarType.Float16))]);
        using var f = SafeTensorsFile.Open(path);
        var loaded = TensorConversions.ToTensor(f, "x", ScalarType.BFloat16, CPU);
        Assert.Equal(ScalarType.BFloat16, loaded.dtype);
        Assert.Equal(Bytes(x.to(ScalarType.BFloat16)), Bytes(loaded));
        var half = TensorConversions.ToTensor(f, "h", ScalarType.Float32);
        Assert.Equal(Bytes(x.to(ScalarType.Float16).to(ScalarType.Float32)), Bytes(half));
    }

    [Fact]
    public void ChunkedCopiesAreExact()
    {
        using var scope = NewDisposeScope();
        // Odd sizes and chunk sizes that are not multiples of the element size exercise slice offsets.
        var x = randn(37, 11).to(ScalarType.Float64);
        string path = _tmp.File("chunks.safetensors");
        SafeTensorsWriter.Write(path, [TensorConversions.FromTensor("x", x)]);
        using var f = SafeTensorsFile.Open(path);
        foreach (long chunk in new long[] { 1, 8, 20, 64, 1000 })
        {
            var loaded = TensorConversions.ToTensor(f, "x", null, null, chunk);
            Assert.Equal(Bytes(x), Bytes(loaded));

            var ms = new MemoryStream();
            TensorConversions.WriteTensor(x, ms, chunk);
            Assert.Equal(Bytes(x), ms.ToArray());
        }
    }

    [Fact]
    public void NonContiguousTensorIsWrittenInLogicalOrder()
    {
        using var scope = NewDisposeScope();
        var x = arange(12, ScalarType.Float32).reshape(3, 4);
        var xt = x.t();
        Assert.False(xt.is_contiguous());
        string path = _tmp.File("t.safetensors");
        SafeTensorsWriter.Write(path, [TensorConversions.FromTensor("xt", xt)]);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal([4L, 3], f.GetInfo("xt").Shape);
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(f.GetSpan("xt")).ToArray();
        Assert.Equal([0f, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], values);
    }

    [Fact]
    public void EntrySurvivesTheCallersDisposal()
    {
        TensorEntry entry;
        using (NewDisposeScope())
        {
            var t = arange(6, ScalarType.Int64);
            entry = TensorConversions.FromTensor("t", t);
            t.Dispose();
        }
        string path = _tmp.File("survive.safetensors");
        SafeTensorsWriter.Write(path, [entry]);
        using var f = SafeTensorsFile.Open(path);
        using var loaded = TensorConversions.ToTensor(f, "t");
        Assert.Equal([0L, 1, 2, 3, 4, 5], loaded.data<long>().ToArray());
    }

    [Fact]
    public void UnsupportedDTypeIsNamed()
    {
        string path = _tmp.File("u16.safetensors");
        SafeTensorsWriter.Write(path, [TensorEntry.FromBytes("odd", SafeDType.U16, [2], new byte[4])]);
        using var f = SafeTensorsFile.Open(path);
        var ex = Assert.Throws<NotSupportedException>(() => TensorConversions.ToTensor(f, "odd"));
        Assert.Contains("'odd'", ex.Message);
        Assert.Contains("U16", ex.Message);
        Assert.Contains(path, ex.Message);

        using var complex = zeros(2, ScalarType.ComplexFloat32);
        Assert.Throws<NotSupportedException>(() => TensorConversions.FromTensor("c", complex));
    }

    [Fact]
    public void ExpectedFixtureTensorsLoad()
    {
        string path = Path.Combine(TestPaths.HfFixtures, "llama-gqa", "expected.safetensors");
        using var f = SafeTensorsFile.Open(path);
        using var ids = TensorConversions.ToTensor(f, "input_ids");
        Assert.Equal(ScalarType.Int64, ids.dtype);
        Assert.Equal([2L, 12], ids.shape);
        var values = ids.data<long>().ToArray();
        Assert.All(values, v => Assert.InRange(v, 0, 96));

        using var logits = TensorConversions.ToTensor(f, "logits", ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        Assert.Equal([2L, 12, 97], logits.shape);
        using var finite = logits.isfinite().all();
        Assert.True(finite.item<bool>());
    }
}
