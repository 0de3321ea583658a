using System.Text.Json;
using PeftLab.Checkpoints;

namespace PeftLab.Tests.Checkpoints;

public sealed class SafeTensorsWriterTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public void EveryDTypeRoundTripsByteForByte()
    {
        var shapes = new long[][] { [], [3], [2, 3], [0, 4], [1, 2, 3] };
        var entries = new List<TensorEntry>();
        var expected = new Dictionary<string, (SafeDType, long[], byte[])>();
        int seed = 0;
        foreach (var dtype in SafeDTypes.All)
        {
            foreach (var shape in shapes)
            {
                long count = shape.Aggregate(1L, (a, d) => a * d);
                var data = RandomBytes((int)(count * dtype.ElementSize()), seed++);
                string name = $"{dtype.HeaderName().ToLowerInvariant()}.{string.Join("x", shape)}";
                entries.Add(TensorEntry.FromBytes(name, dtype, shape, data));
                expected[name] = (dtype, shape, data);
            }
        }
        string path = _tmp.File("all.safetensors");
        long size = SafeTensorsWriter.Write(path, entries, new Dictionary<string, string> { ["note"] = "ünïcode ok" });
        Assert.Equal(new FileInfo(path).Length, size);

        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(expected.Count, f.Tensors.Count);
        Assert.Equal("ünïcode ok", f.Metadata["note"]);
        Assert.Equal("pt", f.Metadata["format"]);
        foreach (var (name, (dtype, shape, data)) in expected)
        {
            var info = f.GetInfo(name);
            Assert.Equal(dtype, info.DType);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(data, f.ReadBytes(name));
        }
    }

    [Fact]
    public void HeaderIsAlignedSpacePaddedSortedAndTagged()
    {
        // Name lengths 1..12 make the unpadded header length take every residue mod 8.
        for (int len = 1; len <= 12; len++)
        {
            string path = _tmp.File($"h{len}.safetensors");
            var entries = new[]
            {
                TensorEntry.FromBytes(new string('z', len), SafeDType.F32, [2], new byte[8]),
                TensorEntry.FromBytes("a", SafeDType.I64, [1], new byte[8]),
                TensorEntry.FromBytes("m", SafeDType.BF16, [3], new byte[6]),
            };
            SafeTensorsWriter.Write(path, entries, new Dictionary<string, string> { ["extra"] = "1" });

            var (n, raw, json) = RawSafeTensors.ReadHeader(path);
            using (json)
            {
                Assert.Equal(0, (8 + n) % 8);
                string text = System.Text.Encoding.UTF8.GetString(raw);
                string trimmed = text.TrimEnd(' ');
                Assert.EndsWith("}", trimmed);
                Assert.True(text.Length - trimmed.Length < 8, "padding must be shorter than 8 bytes");
                Assert.DoesNotContain("\n", text);
                Assert.DoesNotContain(": ", text); // compact

                var meta = json.RootElement.GetProperty("__metadata__");
                Assert.Equal("pt", meta.GetProperty("format").GetString());
                Assert.Equal("1", meta.GetProperty("extra").GetString());

                var names = json.RootElement.EnumerateObject().Select(p => p.Name).Where(p => p != "__metadata__").ToList();
                Assert.Equal(["a", "m", new string('z', len)], names);
                long expectedBegin = 0;
                foreach (var name in names)
                {
                    var offsets = json.RootElement.GetProperty(name).GetProperty("data_offsets");
                    Assert.Equal(expectedBegin, offsets[0].GetInt64());
                    expectedBegin = offsets[1].GetInt64();
                }
                Assert.Equal(new FileInfo(path).Length, 8 + n + expectedBegin);
            }
        }
    }

    [Fact]
    public void CallerMetadataMayOverrideFormat()
    {
        string path = _tmp.File("fmt.safetensors");
        SafeTensorsWriter.Write(path, [], new Dictionary<string, string> { ["format"] = "np" });
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal("np", f.Metadata["format"]);
        Assert.Empty(f.Tensors);
    }

    [Fact]
    public void DuplicateAndReservedNamesAreRejected()
    {
        string path = _tmp.File("dup.safetensors");
        var ex = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path,
        [
            TensorEntry.FromBytes("w", SafeDType.U8, [1], new byte[1]),
            TensorEntry.FromBytes("w", SafeDType.U8, [1], new byte[1]),
        ]));
        Assert.Contains("'w' is given twice", ex.Message);
        Assert.False(File.Exists(path));

        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("__metadata__", SafeDType.U8, [1], new byte[1]));
        Assert.Contains("needs 12 bytes", Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("x", SafeDType.F32, [3], new byte[8])).Message);
        Assert.Throws<ArgumentException>(() => TensorEntry.FromBytes("x", SafeDType.F32, [-1], new byte[0]));
    }

    [Fact]
    public void FailedWriteKeepsTheOldFileAndLeavesNoTemporaries()
    {
        string path = _tmp.File("keep.safetensors");
        SafeTensorsWriter.Write(path, [TensorEntry.FromBytes("old", SafeDType.U8, [2], new byte[] { 1, 2 })]);
        byte[] before = File.ReadAllBytes(path);

        var shortSource = new TensorEntry("a", SafeDType.F32, [4], s => s.Write(new byte[10]));
        var ex = Assert.Throws<InvalidOperationException>(() => SafeTensorsWriter.Write(path, [shortSource]));
        Assert.Contains("tensor 'a'", ex.Message);
        Assert.Contains("wrote 10 bytes, expected 16", ex.Message);

        var longSource = new TensorEntry("b", SafeDType.U8, [4], s => s.Write(new byte[5]));
        Assert.Contains("more than the 4 bytes", Assert.Throws<InvalidOperationException>(() => SafeTensorsWriter.Write(path, [longSource])).Message);

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_tmp.Path));
    }

    [Fact]
    public void OverwritesWhileTheOldFileIsOpen()
    {
        string path = _tmp.File("over.safetensors");
        SafeTensorsWriter.Write(path, [TensorEntry.FromBytes("x", SafeDType.U8, [2], new byte[] { 1, 2 })]);
        using var old = SafeTensorsFile.Open(path);
        // Rewriting from the open file itself: the data is read from the old mapping while the new file is written.
        SafeTensorsWriter.Write(path, [TensorEntry.FromFile(old, "x", "y"), TensorEntry.FromBytes("z", SafeDType.U8, [1], new byte[] { 9 })]);
        Assert.Equal(new byte[] { 1, 2 }, old.ReadBytes("x"));
        using var fresh = SafeTensorsFile.Open(path);
        Assert.Equal(["y", "z"], fresh.Names);
        Assert.Equal(new byte[] { 1, 2 }, fresh.ReadBytes("y"));
    }

    [Fact]
    public void StreamedEntriesMayWriteInPieces()
    {
        string path = _tmp.File("pieces.safetensors");
        var entry = new TensorEntry("p", SafeDType.I32, [5], s =>
        {
            for (int i = 0; i < 5; i++) s.Write(BitConverter.GetBytes(i * 10));
        });
        SafeTensorsWriter.Write(path, [entry]);
        using var f = SafeTensorsFile.Open(path);
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(f.GetSpan("p")).ToArray();
        Assert.Equal([0, 10, 20, 30, 40], values);
    }

    [Fact]
    public void WrittenHeaderParsesAsPlainJson()
    {
        string path = _tmp.File("json.safetensors");
        SafeTensorsWriter.Write(path, [TensorEntry.FromBytes("name with \"quotes\" and ü", SafeDType.U8, [1], new byte[] { 5 })]);
        var (_, _, json) = RawSafeTensors.ReadHeader(path);
        using (json) Assert.True(json.RootElement.TryGetProperty("name with \"quotes\" and ü", out var e) && e.ValueKind == JsonValueKind.Object);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(new byte[] { 5 }, f.ReadBytes("name with \"quotes\" and ü"));
    }
}
