using System.Diagnostics;
using System.Text;
using PeftLab.Configuration;

namespace PeftLab.Tests.Configuration;

/// <summary>Hostile YAML (alias bombs, deep nesting, huge documents) is refused quickly, with a message naming the limit.</summary>
public sealed class YamlLimitsTests
{
    private static string Laughs(int levels, int fanout)
    {
        var sb = new StringBuilder("a0: &a0 [\"lol\"]\n");
        for (int i = 1; i <= levels; i++)
            sb.Append($"a{i}: &a{i} [").Append(string.Join(", ", Enumerable.Repeat($"*a{i - 1}", fanout))).Append("]\n");
        return sb.ToString();
    }

    [Theory]
    [InlineData(9, 9)]     // the classic billion laughs: 9^9 leaves
    [InlineData(30, 2)]    // 2^30 by doubling
    [InlineData(6, 40)]    // wide
    public void AliasBombsAreRefusedByTheirExpansion(int levels, int fanout)
    {
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<ConfigException>(() => ConfigNode.Parse(Laughs(levels, fanout), "bomb.yaml"));
        Assert.Contains("expands to more than", e.Message);
        Assert.Contains("aliases", e.Message);
        Assert.Contains("bomb.yaml", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
    }

    [Fact]
    public void AnAliasUsedAFewTimesIsFine()
    {
        var node = (ConfigMapping)ConfigNode.Parse("base: &b {lr: 1.0e-3}\nother: *b\nthird: *b\n");
        Assert.Equal(3, node.Entries.Count);
    }

    [Theory]
    [InlineData("[", "]", 100_000)]
    [InlineData("{a: ", "}", 100_000)]
    [InlineData("[", "]", 65)]
    public void DeepNestingIsRefusedWithoutOverflowingTheStack(string open, string close, int depth)
    {
        var yaml = string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth));
        var e = Assert.Throws<ConfigException>(() => ConfigNode.Parse(yaml, "deep.yaml"));
        Assert.Contains($"more than {ConfigNode.MaxDepth} levels deep", e.Message);
    }

    [Fact]
    public void DeepBlockNestingIsRefusedToo()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 200; i++) sb.Append(new string(' ', 2 * i)).Append("k:\n");
        var e = Assert.Throws<ConfigException>(() => ConfigNode.Parse(sb.ToString(), "block.yaml"));
        Assert.Contains("levels deep", e.Message);
    }

    [Fact]
    public void NestingAtTheLimitIsAccepted()
    {
        int depth = ConfigNode.MaxDepth;
        var yaml = string.Concat(Enumerable.Repeat("[", depth)) + "1" + string.Concat(Enumerable.Repeat("]", depth));
        Assert.IsType<ConfigSequence>(ConfigNode.Parse(yaml));
    }

    [Fact]
    public void AHugeDocumentIsRefusedBeforeParsing()
    {
        var yaml = "k: \"" + new string('x', ConfigNode.MaxDocumentChars) + "\"\n";
        var e = Assert.Throws<ConfigException>(() => ConfigNode.Parse(yaml, "huge.yaml"));
        Assert.Contains("characters", e.Message);
        Assert.Contains("at most", e.Message);

        var path = Path.Combine(Path.GetTempPath(), $"peftlab-huge-{Guid.NewGuid():N}.yaml");
        try
        {
            using (var f = File.Create(path)) f.SetLength(ConfigNode.MaxDocumentChars * 4L + 1);
            var e2 = Assert.Throws<ConfigException>(() => ConfigNode.Load(path));
            Assert.Contains("bytes", e2.Message);
            Assert.Contains(path, e2.Message);
        }
        finally { File.Delete(path); }
    }
}

/// <summary>Malformed YAML found by the fuzz test, each refused as a config error naming the file.</summary>
public sealed class MalformedYamlTests
{
    [Theory]
    [InlineData("method:\n  name: lora\n  : \ndata: {path: x}\n    output: runs/x\n")]
    [InlineData("a: {b: 1}\n  : \n    c: 2\n")]
    public void StructuresYamlDotNetCannotPlaceAreConfigErrors(string yaml)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigNode.Parse(yaml, "bad.yaml"));
        Assert.Contains("invalid YAML", e.Message);
        Assert.Contains("bad.yaml", e.Message);
    }
}
