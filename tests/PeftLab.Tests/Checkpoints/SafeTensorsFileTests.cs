using PeftLab.Checkpoints;

namespace PeftLab.Tests.Checkpoints;

public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private CheckpointFormatException Bad(string header, byte[]? data = null, ulong? declaredLength = null)
    {
        string path = RawSafeTensors.Write(_tmp.File($"bad-{Guid.NewGuid():N}.safetensors"), header, data, declaredLength);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(path));
        Assert.StartsWith(path + ": ", ex.Message);
        Assert.Equal(path, ex.FilePath);
        return ex;
    }

    [Fact]
    public void ReadsHandCraftedFile()
    {
        var data = new byte[12 + 2 + 0];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i + 1);
        string path = RawSafeTensors.Write(_tmp.File("ok.safetensors"),
            """{"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"a":{"dtype":"I16","shape":[],"data_offsets":[12,14]},""" +
            """ "z":{"dtype":"U8","shape":[0,5],"data_offsets":[14,14]},"__metadata__":{"format":"pt","k":"v"}}   """, data);

        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(["a", "b", "z"], f.Names);
        Assert.Equal("v", f.Metadata["k"]);
        var b = f.GetInfo("b");
        Assert.Equal(SafeDType.F32, b.DType);
        Assert.Equal([3L], b.Shape);
        Assert.Equal(3, b.ElementCount);
        Assert.Equal(data[..12], f.ReadBytes("b"));
        var a = f.GetInfo("a");
        Assert.Empty(a.Shape);
        Assert.Equal(1, a.ElementCount);
        Assert.Equal(new byte[] { 13, 14 }, f.GetSpan("a").ToArray());
        Assert.Equal(0, f.GetInfo("z").ElementCount);
        Assert.Empty(f.ReadBytes("z"));

        var dest = new byte[12];
        f.CopyTo("b", dest);
        Assert.Equal(data[..12], dest);
        Assert.Throws<ArgumentException>(() => f.CopyTo("b", new byte[11]));

        nint native = System.Runtime.InteropServices.Marshal.AllocHGlobal(16);
        try
        {
            f.CopyTo("b", native, 16);
            var copied = new byte[12];
            System.Runtime.InteropServices.Marshal.Copy(native, copied, 0, 12);
            Assert.Equal(data[..12], copied);
            Assert.Throws<ArgumentException>(() => f.CopyTo("b", native, 11));
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeHGlobal(native);
        }
        using (var s = f.OpenRead("b"))
        {
            var viaStream = new byte[20];
            Assert.Equal(12, s.ReadAtLeast(viaStream, 20, throwOnEndOfStream: false));
            Assert.Equal(data[..12], viaStream[..12]);
        }

        var missing = Assert.Throws<KeyNotFoundException>(() => f.GetInfo("nope"));
        Assert.Contains("'nope'", missing.Message);
        Assert.Contains(path, missing.Message);
    }

    [Fact]
    public void DisposedFileRefusesReads()
    {
        string path = RawSafeTensors.Write(_tmp.File("d.safetensors"), """{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", [1, 2]);
        var f = SafeTensorsFile.Open(path);
        f.Dispose();
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.ReadBytes("a"));
    }

    [Fact]
    public void EmptyFileWithNoTensorsIsValid()
    {
        string path = RawSafeTensors.Write(_tmp.File("e.safetensors"), "{}");
        using var f = SafeTensorsFile.Open(path);
        Assert.Empty(f.Tensors);
        Assert.Empty(f.Metadata);
    }

    [Fact]
    public void TruncatedPrefix()
    {
        string path = _tmp.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("truncated", ex.Message);
        Assert.Contains("5 bytes", ex.Message);

        File.WriteAllBytes(path, []);
        Assert.Contains("truncated", Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(path)).Message);
    }

    [Fact]
    public void TruncatedData()
    {
        var ex = Bad("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", new byte[10]);
        Assert.Contains("tensor 'w'", ex.Message);
        Assert.Contains("past the end of the data buffer (10 bytes)", ex.Message);
        Assert.Contains("truncated", ex.Message);
        Assert.Equal("w", ex.TensorName);
    }

    [Fact]
    public void HeaderLengthBeyondFileSize()
    {
        var ex = Bad("""{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", [7], declaredLength: 5000);
        Assert.Contains("header length 5000 runs past the end of the file", ex.Message);
    }

    [Fact]
    public void HeaderLengthOverLimit()
    {
        var ex = Bad("{}", declaredLength: 1UL << 40);
        Assert.Contains("exceeds the limit", ex.Message);
    }

    [Fact]
    public void NonJsonHeader()
    {
        Assert.Contains("not valid JSON", Bad("""{"w": {"dtype": "F32", """).Message);
        Assert.Contains("not valid JSON", Bad("""{"w":1,}""").Message);
        Assert.Contains("not a JSON object", Bad("hello world").Message);
        Assert.Contains("not a JSON object", Bad("[1, 2, 3]").Message);
        Assert.Contains("not a JSON object", Bad("        ").Message);
    }

    [Fact]
    public void UnknownDType()
    {
        var ex = Bad("""{"weight":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}""", [0]);
        Assert.Contains("tensor 'weight'", ex.Message);
        Assert.Contains("unknown dtype 'Q7'", ex.Message);
        foreach (var d in new[] { "F32", "BF16", "F16", "I64", "BOOL", "U8" }) Assert.Contains(d, ex.Message);
        // Names are case-sensitive, as in the reference implementation.
        Assert.Contains("unknown dtype 'f32'", Bad("""{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}""", new byte[4]).Message);
    }

    [Fact]
    public void ShapeByteMismatch()
    {
        var ex = Bad("""{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", new byte[8]);
        Assert.Contains("tensor 'w'", ex.Message);
        Assert.Contains("needs 12 bytes", ex.Message);
        Assert.Contains("span 8", ex.Message);
    }

    [Fact]
    public void NegativeOrNonIntegerDimension()
    {
        Assert.Contains("negative dimension -2", Bad("""{"w":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,0]}}""").Message);
        Assert.Contains("non-integer dimension", Bad("""{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", new byte[4]).Message);
        Assert.Contains("too many elements",
            Bad("""{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""").Message);
    }

    [Fact]
    public void BadOffsets()
    {
        Assert.Contains("end before they begin", Bad("""{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}""", new byte[4]).Message);
        Assert.Contains("non-negative", Bad("""{"w":{"dtype":"U8","shape":[0],"data_offsets":[-1,0]}}""").Message);
        Assert.Contains("data_offsets", Bad("""{"w":{"dtype":"U8","shape":[0],"data_offsets":[0]}}""").Message);
        Assert.Contains("data_offsets", Bad("""{"w":{"dtype":"U8","shape":[0]}}""").Message);
        Assert.Contains("\"dtype\"", Bad("""{"w":{"shape":[0],"data_offsets":[0,0]}}""").Message);
        Assert.Contains("not an object", Bad("""{"w":[1,2]}""").Message);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        var ex = Bad("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            new byte[12]);
        Assert.Contains("tensor 'b'", ex.Message);
        Assert.Contains("overlap tensor 'a'", ex.Message);
        Assert.Equal("b", ex.TensorName);

        // Two views of the same bytes (what torch's shared storage would produce) are rejected too.
        var same = Bad("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""",
            new byte[8]);
        Assert.Contains("overlap", same.Message);
    }

    [Fact]
    public void Gaps()
    {
        var ex = Bad("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""",
            new byte[12]);
        Assert.Contains("tensor 'b'", ex.Message);
        Assert.Contains("gap of 4 bytes", ex.Message);
        Assert.Contains("end of tensor 'a'", ex.Message);

        var atStart = Bad("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8]);
        Assert.Contains("gap of 4 bytes", atStart.Message);
        Assert.Contains("start of the data buffer", atStart.Message);
    }

    [Fact]
    public void TrailingBytes()
    {
        var ex = Bad("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[7]);
        Assert.Contains("3 trailing bytes", ex.Message);
    }

    [Fact]
    public void DuplicateNames()
    {
        var ex = Bad("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""",
            new byte[2]);
        Assert.Contains("duplicate tensor name 'a'", ex.Message);
        Assert.Contains("twice", Bad("""{"__metadata__":{},"__metadata__":{}}""").Message);
    }

    [Fact]
    public void BadMetadata()
    {
        Assert.Contains("must be strings", Bad("""{"__metadata__":{"format":"pt","n":3}}""").Message);
        Assert.Contains("not an object", Bad("""{"__metadata__":"pt"}""").Message);
    }

    [Fact]
    public void MissingFile()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(_tmp.File("absent.safetensors")));
        Assert.Contains("absent.safetensors", ex.Message);
    }
}
