using System.Text.Json;
using PeftLab.Checkpoints;
using PeftLab.Runtime;
using static TorchSharp.torch;

namespace PeftLab.Tests.Checkpoints;

public sealed class CheckpointDirectoryTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>Ten F32 tensors "t00".."t09" of 100 bytes each (25 floats), filled with their index.</summary>
    private static List<TensorEntry> TenTensors()
    {
        var list = new List<TensorEntry>();
        for (int i = 0; i < 10; i++)
        {
            var data = new byte[100];
            for (int j = 0; j < 25; j++) BitConverter.TryWriteBytes(data.AsSpan(j * 4), (float)(i * 100 + j));
            list.Add(TensorEntry.FromBytes($"t{i:D2}", SafeDType.F32, [5, 5], data));
        }
        return list;
    }

    private static void AssertTenTensors(CheckpointDirectory ckpt)
    {
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"t{i:D2}"), ckpt.Names);
        foreach (var name in ckpt.Names)
        {
            int i = int.Parse(name[1..]);
            var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(ckpt.FileOf(name).GetSpan(name)).ToArray();
            Assert.Equal(Enumerable.Range(0, 25).Select(j => (float)(i * 100 + j)), floats);
        }
    }

    [Fact]
    public void WritesShardsAndIndexLikeTransformers()
    {
        // 250-byte shards: two 100-byte tensors each, so five shards.
        var written = CheckpointDirectory.WriteSharded(_tmp.Path, TenTensors(), 250, new Dictionary<string, string> { ["who"] = "test" });
        var names = written.Select(p => Path.GetFileName(p)!).ToList();
        Assert.Equal(
        [
            "model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors", "model-00003-of-00005.safetensors",
            "model-00004-of-00005.safetensors", "model-00005-of-00005.safetensors", "model.safetensors.index.json",
        ], names);
        Assert.False(File.Exists(_tmp.File("model.safetensors")));

        using (var index = JsonDocument.Parse(File.ReadAllBytes(_tmp.File("model.safetensors.index.json"))))
        {
            Assert.Equal(1000, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            var map = index.RootElement.GetProperty("weight_map");
            Assert.Equal("model-00001-of-00005.safetensors", map.GetProperty("t01").GetString());
            Assert.Equal("model-00003-of-00005.safetensors", map.GetProperty("t04").GetString());
            Assert.Equal(10, map.EnumerateObject().Count());
        }

        using var ckpt = CheckpointDirectory.Open(_tmp.Path);
        Assert.True(ckpt.IsSharded);
        Assert.Equal(5, ckpt.Files.Count);
        Assert.Equal("test", ckpt.Metadata["who"]);
        Assert.Equal("pt", ckpt.Metadata["format"]);
        AssertTenTensors(ckpt);
        Assert.EndsWith("model-00005-of-00005.safetensors", ckpt.FileOf("t09").FilePath);

        TorchRuntime.EnsureInitialised();
        using var t = TensorConversions.ToTensor(ckpt, "t07");
        Assert.Equal(700f, t[0, 0].item<float>());
        using (NewDisposeScope())
        {
            var all = TensorConversions.ToTensors(ckpt, ScalarType.BFloat16);
            Assert.Equal(10, all.Count);
            Assert.All(all.Values, v => Assert.Equal(ScalarType.BFloat16, v.dtype));
        }

        // The index file itself can be opened too.
        using var viaIndex = CheckpointDirectory.Open(_tmp.File("model.safetensors.index.json"));
        Assert.Equal(10, viaIndex.Tensors.Count);
    }

    [Fact]
    public void OversizedTensorGetsItsOwnShard()
    {
        var entries = new List<TensorEntry>
        {
            TensorEntry.FromBytes("a", SafeDType.U8, [10], new byte[10]),
            TensorEntry.FromBytes("b", SafeDType.U8, [500], new byte[500]),
            TensorEntry.FromBytes("c", SafeDType.U8, [10], new byte[10]),
        };
        var written = CheckpointDirectory.WriteSharded(_tmp.Path, entries, 100);
        Assert.Equal(4, written.Count); // a | b | c | index
        using var ckpt = CheckpointDirectory.Open(_tmp.Path);
        Assert.Equal(3, ckpt.Files.Count);
        Assert.Equal(500, ckpt.Tensors["b"].ByteLength);
    }

    [Fact]
    public void SingleFileWhenItFitsAndStaleFilesAreRemoved()
    {
        CheckpointDirectory.WriteSharded(_tmp.Path, TenTensors(), 250);
        File.WriteAllText(_tmp.File("model-00001-of-00009.safetensors"), "stale shard of an older save");
        File.WriteAllText(_tmp.File("config.json"), "{}");

        var written = CheckpointDirectory.WriteSharded(_tmp.Path, TenTensors(), 1000);
        Assert.Equal([_tmp.File("model.safetensors")], written);
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(_tmp.Path).Select(p => Path.GetFileName(p)!).Order().ToArray());
        using (var single = CheckpointDirectory.Open(_tmp.Path))
        {
            Assert.False(single.IsSharded);
            AssertTenTensors(single);
        }

        // And back to shards: the single file goes (readers would prefer it), the other count's shards too.
        CheckpointDirectory.WriteSharded(_tmp.Path, TenTensors(), 450);
        Assert.False(File.Exists(_tmp.File("model.safetensors")));
        Assert.Equal(3, Directory.GetFiles(_tmp.Path, "model-*-of-00003.safetensors").Length);
        Assert.Empty(Directory.GetFiles(_tmp.Path, "model-*-of-00005.safetensors"));
        using var sharded = CheckpointDirectory.Open(_tmp.Path);
        Assert.Equal(3, sharded.Files.Count);
        AssertTenTensors(sharded);
    }

    [Fact]
    public void ShardsCanBeRewrittenFromTheOpenCheckpoint()
    {
        CheckpointDirectory.WriteSharded(_tmp.Path, TenTensors(), 250);
        using (var ckpt = CheckpointDirectory.Open(_tmp.Path))
            CheckpointDirectory.WriteSharded(_tmp.Path, ckpt.Names.Select(n => TensorEntry.FromFile(ckpt.FileOf(n), n)).ToList(), 350);
        using var again = CheckpointDirectory.Open(_tmp.Path);
        Assert.Equal(4, again.Files.Count);
        AssertTenTensors(again);
    }

    private string Index(string weightMapJson)
    {
        string path = _tmp.File("model.safetensors.index.json");
        File.WriteAllText(path, $$"""{"metadata": {"total_size": 0}, "weight_map": {{weightMapJson}}}""");
        return path;
    }

    private static void Shard(string path, params string[] names)
        => SafeTensorsWriter.Write(path, names.Select(n => TensorEntry.FromBytes(n, SafeDType.U8, [1], new byte[] { 1 })));

    [Fact]
    public void MissingShard()
    {
        Shard(_tmp.File("s1.safetensors"), "a");
        string index = Index("""{"a": "s1.safetensors", "b": "s2.safetensors"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.StartsWith(index, ex.Message);
        Assert.Contains("shard 's2.safetensors' is missing", ex.Message);
        Assert.Contains("'b'", ex.Message);
    }

    [Fact]
    public void TensorMissingFromItsShard()
    {
        Shard(_tmp.File("s1.safetensors"), "a");
        Shard(_tmp.File("s2.safetensors"), "b");
        Index("""{"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Contains("maps tensor 'c' to shard 's2.safetensors', but that shard does not contain it", ex.Message);

        Index("""{"a": "s2.safetensors", "b": "s2.safetensors"}""");
        Shard(_tmp.File("s2.safetensors"), "b");
        ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Contains("tensor 'a'", ex.Message);
    }

    [Fact]
    public void SameTensorInTwoShards()
    {
        Shard(_tmp.File("s1.safetensors"), "a", "b");
        Shard(_tmp.File("s2.safetensors"), "b", "c");
        Index("""{"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Contains("tensor 'b' appears in two shards: 's1.safetensors' and 's2.safetensors'", ex.Message);
    }

    [Fact]
    public void UnlistedTensorInShard()
    {
        Shard(_tmp.File("s1.safetensors"), "a", "extra");
        Index("""{"a": "s1.safetensors"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Contains("holds tensor 'extra', which the index does not list", ex.Message);
    }

    [Fact]
    public void MalformedIndex()
    {
        Shard(_tmp.File("s1.safetensors"), "a");
        string path = Index("""{"a": "s1.safetensors",}""");
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path)).Message);
        File.WriteAllText(path, """{"metadata": {}}""");
        Assert.Contains("no \"weight_map\"", Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path)).Message);
        Index("""{"a": "../s1.safetensors"}""");
        Assert.Contains("not a file name inside", Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path)).Message);
        Index("""{"a": 3}""");
        Assert.Contains("tensor 'a'", Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path)).Message);
    }

    [Fact]
    public void BrokenShardIsNamed()
    {
        File.WriteAllBytes(_tmp.File("s1.safetensors"), [1, 2, 3]);
        Index("""{"a": "s1.safetensors"}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Equal(_tmp.File("s1.safetensors"), ex.FilePath);
    }

    [Fact]
    public void EmptyOrMissingFolder()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => CheckpointDirectory.Open(_tmp.Path));
        Assert.Contains("no model.safetensors and no model.safetensors.index.json", ex.Message);
        File.WriteAllText(_tmp.File("pytorch_model.bin"), "");
        Assert.Contains("not supported", Assert.Throws<FileNotFoundException>(() => CheckpointDirectory.Open(_tmp.Path)).Message);
        Assert.Throws<DirectoryNotFoundException>(() => CheckpointDirectory.Open(_tmp.File("nope")));
    }
}
