using PeftLab.Configuration;

namespace PeftLab.Tests.Configuration;

/// <summary>A record whose knob lists sit beside its other keys (as a study's knob axes do).</summary>
public sealed record InlineGrid
{
    /// <summary>The keys that bind into <see cref="Knobs"/>.</summary>
    public static IReadOnlyList<string> KnobNames { get; } = ["rank", "width"];

    [ConfigAllowSingle] public IReadOnlyList<double>? Lr { get; init; }
    [ConfigAllowSingle, ConfigInline(typeof(InlineGrid), nameof(KnobNames))]
    public IReadOnlyDictionary<string, IReadOnlyList<int>> Knobs { get; init; } = new Dictionary<string, IReadOnlyList<int>>();
    public string? Name { get; init; }
}

/// <summary><see cref="ConfigInlineAttribute"/>: a dictionary bound from, listed among and written as the record's own keys.</summary>
public sealed class ConfigInlineTests
{
    private static InlineGrid Bind(string yaml) => ConfigBinder.Bind<InlineGrid>(ConfigNode.Parse(yaml));

    [Fact]
    public void ListedKeysBindIntoTheDictionary_ASingleItemAsAOneItemList()
    {
        var g = Bind("lr: [0.1]\nrank: [4, 8]\nwidth: 16\n");
        Assert.Equal([0.1], g.Lr);
        Assert.Equal(["rank", "width"], g.Knobs.Keys.Order());
        Assert.Equal([4, 8], g.Knobs["rank"]);
        Assert.Equal([16], g.Knobs["width"]);
        Assert.Empty(Bind("name: x").Knobs);
    }

    [Fact]
    public void OtherKeysStayUnknown_AndTheInlineKeysAreListedInThePropertysPlace()
    {
        var error = Assert.Single(Assert.Throws<ConfigException>(() => Bind("ranks: [4]")).Errors);
        Assert.Equal("ranks", error.Path);
        Assert.Equal("unknown key (did you mean 'rank'?); known keys: lr, rank, width, name", error.Message);
        // the dictionary's own key is not a key of the mapping
        Assert.Contains("knobs: unknown key", Assert.Throws<ConfigException>(() => Bind("knobs: {rank: [4]}")).Message);
    }

    [Fact]
    public void ValueErrorsNameTheInlineKeyPath()
    {
        var e = Assert.Throws<ConfigException>(() => Bind("rank: [4, x]\nwidth: {a: 1}"));
        Assert.Equal(["rank.1", "width"], e.Errors.Select(x => x.Path));
        Assert.Contains("expected an integer, got 'x'", e.Errors[0].Message);
    }

    [Fact]
    public void TheWriterPutsTheEntriesBesideTheOtherKeysAndTheyBindBack()
    {
        var g = new InlineGrid { Lr = [0.5], Knobs = new Dictionary<string, IReadOnlyList<int>> { ["width"] = [2], ["rank"] = [1, 3] }, Name = "grid" };
        var yaml = ConfigWriter.ToYaml(g);
        Assert.Equal("lr: [0.5]\nrank: [1, 3]\nwidth: [2]\nname: grid\n", yaml);
        var back = Bind(yaml);
        Assert.Equal([1, 3], back.Knobs["rank"]);
        Assert.Equal([2], back.Knobs["width"]);
    }
}
