using PeftLab.Configuration;
using static PeftLab.Tests.Configuration.TestConfig;

namespace PeftLab.Tests.Configuration;

public sealed class ConfigOverridesTests
{
    public ConfigOverridesTests() => Register();

    private const string BaseYaml = """
        model:
          path: models/a
        optim:
          lr: 0.1
          betas: [0.9, 0.99]
        tags:
          team: nlp
        groups:
          head: {lr: 0.5}
        """;

    [Fact]
    public void OverridesBeatYaml()
    {
        var c = Bind(BaseYaml,
            "optim.lr=0.01",               // nested scalar
            "optim.betas.1=0.95",          // list index
            "tags.owner=me",               // new key under an existing mapping
            "model.dtype=float16",         // sibling of a YAML key
            "method.r=32",                 // intermediate mapping created; default variant kept
            "steps=500",
            "name=Answer: yes # not a comment"); // plain text stays verbatim
        Assert.Equal(0.01, c.Optim.Lr);
        Assert.Equal([0.9, 0.95], c.Optim.Betas);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "nlp", ["owner"] = "me" }, c.Tags);
        Assert.Equal(("models/a", TestDtype.Float16), (c.Model.Path, c.Model.Dtype));
        Assert.Equal(32, Assert.IsType<TestLora>(c.Method).R);
        Assert.Equal(500, c.Steps);
        Assert.Equal("Answer: yes # not a comment", c.Name);
    }

    [Fact]
    public void FlowValuesReplaceWholeNodes()
    {
        var c = Bind(BaseYaml, "optim.betas=[0.8, 0.9]", "method={name: prompt, num_virtual_tokens: 5}", "groups.head={betas: [0.1, 0.2]}",
            "eval_steps=[]", "name=\"123\"", "model.path=null");
        Assert.Equal([0.8, 0.9], c.Optim.Betas);
        Assert.Equal(5, Assert.IsType<TestPrompt>(c.Method).NumVirtualTokens);
        Assert.Equal(0.001, c.Groups!["head"].Lr); // the whole mapping was replaced: lr is back to the default
        Assert.Equal([0.1, 0.2], c.Groups["head"].Betas);
        Assert.Empty(c.EvalSteps);
        Assert.Equal("123", c.Name);
        Assert.Null(c.Model.Path);
        Assert.Equal(["superni", "flan"], Bind("datasets: [superni]", "datasets.1=flan").Datasets); // one past the end appends
    }

    [Fact]
    public void ListIndexIntoRecordsAndNullSections()
    {
        var root = ConfigOverrides.Apply(Yaml("items:\n  - {a: 1}\n  - {a: 2}\nempty:\n"), ["items.1.a=3", "empty.x=4"]);
        var m = Assert.IsType<ConfigMapping>(root);
        var items = Assert.IsType<ConfigSequence>(m["items"]);
        Assert.Equal("3", ((ConfigScalar)((ConfigMapping)items.Items[1])["a"]!).Value);
        Assert.Equal("1", ((ConfigScalar)((ConfigMapping)items.Items[0])["a"]!).Value);
        Assert.Equal("4", ((ConfigScalar)((ConfigMapping)m["empty"]!)["x"]!).Value);
        Assert.Equal(SourcePosition.CommandLine, ((ConfigMapping)m["empty"]!)["x"]!.Position);
        Assert.Equal(2, items.Items[0].Position.Line); // untouched nodes keep their file position
    }

    [Fact]
    public void MalformedOverridesAreAllReported()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigOverrides.Apply(Yaml(BaseYaml),
            ["steps", "optim..lr=1", "optim.betas.5=1", "optim.betas.x=1", "model.path.deep=1", "optim.betas=[1, 2"]));
        Assert.Equal(6, e.Errors.Count);
        Assert.Contains("override 'steps' must look like key.path=value", e.Message);
        Assert.Contains("override 'optim..lr=1' must look like key.path=value", e.Message);
        Assert.Contains("optim.betas.5: override 'optim.betas.5=1': 'optim.betas' is a list of 2 items; '5' is not an index from 0 to 2", e.Message);
        Assert.Contains("optim.betas.x: override 'optim.betas.x=1': 'optim.betas' is a list of 2 items", e.Message);
        Assert.Contains("model.path.deep: override 'model.path.deep=1': 'model.path' is the scalar 'models/a' (train.yaml:2), not a mapping or list", e.Message);
        Assert.Contains("optim.betas: override 'optim.betas=[1, 2': invalid YAML: ", e.Message);
    }
}
