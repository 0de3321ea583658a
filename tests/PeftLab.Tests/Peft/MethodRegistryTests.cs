using System.Text;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Peft;
using PeftLab.Studies;
using PeftLab.Studies.Report;
using PeftLab.Tests.Studies;
using PeftLab.Tests.Studies.Report;
using PeftLab.Tests.T5;
using PeftLab.Training;
using static TorchSharp.torch;

namespace PeftLab.Tests.Peft;

/// <summary>
/// Every registered method, from its descriptor alone: its names parse, a one-method study expands its capacity knob
/// into the trials' configs, a report lists it, and it attaches to both model layouts as its descriptor says. Plus the
/// guard that nothing outside <c>src/PeftLab/Peft/</c> names a method.
/// </summary>
public sealed class MethodRegistryTests
{
    public static TheoryData<string> Methods => new(PeftRegistry.All.Select(m => m.Name).ToArray());

    private static IPeftMethod Method(string name) => PeftRegistry.All.Single(m => m.Name == name);

    [Theory]
    [MemberData(nameof(Methods))]
    public void TheNameAndEveryAliasParse(string name)
    {
        var m = Method(name);
        Assert.Equal(name, PeftRegistry.NameOf(m.Kind));
        Assert.Same(m, PeftRegistry.Get(m.Kind));
        Assert.Equal(m.DefaultConfig.GetType(), PeftRegistry.ConfigTypes[name]);
        Assert.Equal(m.Kind, m.DefaultConfig.Kind);
        foreach (var spelling in m.Aliases.Prepend(name))
            foreach (var variant in new[] { spelling, spelling.ToUpperInvariant(), spelling.Replace('_', '-'), $" {spelling} " })
            {
                Assert.Equal(m.Kind, PeftRegistry.ParseKind(variant));
                Assert.Equal(name, Study.CanonicalMethod(variant));
            }
        // method.name in a training config binds to the method's config record
        Assert.IsType(m.DefaultConfig.GetType(), TrainConfigLoader.BindMethod(name, []));
        var unknown = Assert.Throws<ArgumentException>(() => PeftRegistry.ParseKind(name + "_x"));
        Assert.Contains($"known methods: {string.Join(", ", PeftRegistry.All.Select(x => x.Name))}", unknown.Message);
    }

    [Fact]
    public void NamesAliasesAndKnobAxesAreUnique()
    {
        static string Norm(string s) => s.ToLowerInvariant().Replace("-", "").Replace("_", "");
        var spellings = PeftRegistry.All.SelectMany(m => m.Aliases.Prepend(m.Name)).Select(Norm).ToArray();
        Assert.Equal(spellings.Length, spellings.Distinct().Count());
        Assert.Equal(PeftRegistry.All.Count, PeftRegistry.All.Select(m => m.Kind).Distinct().Count());
        Assert.Equal(Enum.GetValues<PeftMethodKind>().Order(), PeftRegistry.All.Select(m => m.Kind).Order());
        var axes = PeftRegistry.CapacityKnobs.Select(k => k.Knob.Axis).ToArray();
        Assert.Equal(axes.Length, axes.Distinct().Count());
        Assert.Equal(axes, StudyAxisNames.KnobAxes);
        Assert.Empty(axes.Intersect([StudyAxisNames.Method, StudyAxisNames.Lr, StudyAxisNames.Model, StudyAxisNames.TaskCount, StudyAxisNames.Seed, StudyAxisNames.Overrides]));
        Assert.Equal(PeftRegistry.All.Select(m => m.Name), StudyView.MethodOrder);
    }

    /// <summary>A scalar of a config record by key path (as the training config writes it), e.g. method.r.</summary>
    private static string? Value(TrainConfig config, string keyPath)
    {
        ConfigNode? node = ConfigNode.Parse(TrainConfigLoader.ToYaml(config));
        foreach (var part in keyPath.Split('.')) node = node is ConfigMapping m ? m[part] : null;
        return (node as ConfigScalar)?.Value;
    }

    private static Study LoadStudy(string rest)
    {
        var dir = TestPaths.NewTempDir("registry-study");
        return Study.Load(StudyFixtures.Write(dir, Path.Combine(dir, "out"), rest));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AOneMethodStudyExpandsItsCapacityKnobIntoTheTrialsConfigs(string name)
    {
        var m = Method(name);
        if (m.Capacity is not { } knob)
        {
            var single = LoadStudy($"axes: {{method: [{name}], lr: [1.0e-3, 2.0e-3]}}");
            Assert.Equal(["method", "lr"], single.AxisNames);
            Assert.All(single.Trials, t => Assert.Equal(m.Kind, t.Config.Method.Kind));
            // another method's knob axis is refused, naming its method
            var (otherMethod, otherKnob) = PeftRegistry.CapacityKnobs[0];
            var e = Assert.Throws<ConfigException>(() => LoadStudy($"axes: {{method: [{name}], {otherKnob.Axis}: [2]}}"));
            Assert.Contains($"axes.{otherKnob.Axis}: applies only to method {otherMethod.Name}, which is not on the method axis ({name})", e.Message);
            return;
        }
        var study = LoadStudy($"axes: {{method: [{name}], {knob.Axis}: [2, 3]}}");
        Assert.Equal(["method", knob.Axis], study.AxisNames);
        Assert.Equal([$"method={name} {knob.Axis}=2", $"method={name} {knob.Axis}=3"], study.Trials.Select(t => t.Entry.Describe()));
        Assert.Equal(["2", "3"], study.Trials.Select(t => Value(t.Config, knob.ConfigKey)));
        Assert.All(study.Trials, t => Assert.Equal(m.Kind, t.Config.Method.Kind));
        // an alias on the method axis, and the knob given per method
        var perMethod = LoadStudy($"axes: {{method: [{m.Aliases.FirstOrDefault() ?? name}]}}\nmethod_axes: {{{name}: {{{knob.Axis}: 5}}}}");
        Assert.Equal("5", Value(Assert.Single(perMethod.Trials).Config, knob.ConfigKey));
        // the knob axis also works as a command-line override of the study
        var dir = TestPaths.NewTempDir("registry-study");
        var overridden = Study.Load(StudyFixtures.Write(dir, Path.Combine(dir, "out"), $"axes: {{method: [{name}]}}"), [$"{knob.Axis}=[4]"]);
        Assert.Equal("4", Value(Assert.Single(overridden.Trials).Config, knob.ConfigKey));
        var unset = Study.Load(StudyFixtures.Write(dir, Path.Combine(dir, "out"), $"axes: {{method: [{name}], {knob.Axis}: [2, 3]}}"), [$"{knob.Axis}=null"]);
        Assert.Equal(["method"], unset.AxisNames);                                                            // null: not varied
        Assert.Single(unset.Trials);
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AReportListsTheMethodWithItsKnob(string name)
    {
        var m = Method(name);
        using var study = new FakeStudy();
        var instances = FakeStudy.Instances(new Dictionary<string, double> { ["Arithmetic"] = 30 });
        int?[] sizes = m.Capacity is null ? [null] : [8, 16];
        foreach (var size in sizes)
        {
            var axes = new Dictionary<string, object?> { ["method"] = name, ["lr"] = 1e-4, ["seed"] = 1 };
            if (size is int s) axes[m.Capacity!.Axis] = s;
            study.Add(axes, new FakeOutcome { Test = 30 + (size ?? 0), Validation = 30 + (size ?? 0), TestInstances = instances });
        }
        study.Save("name: registry\nanalyses: [capacity]\n");

        var rows = ReportData.Load(study.Dir).Rows;
        Assert.All(rows, r => Assert.Equal(name, r.Method));
        Assert.Equal(m.Capacity?.Axis, rows[0].CapacityAxis);
        Assert.Equal(sizes, rows.Select(r => r.Capacity));
        Assert.Equal(PeftRegistry.All.ToList().IndexOf(m), StudyView.MethodRank(name));

        var md = File.ReadAllText(StudyReport.Write(study.Dir).MarkdownPath);
        Assert.Contains($"| {name} | {(m.Capacity is { } k ? $"lr 1e-4, {k.Axis} 16" : "lr 1e-4")} |", md);   // the answer's best-setting row
        if (m.Capacity is { } knob)
        {
            Assert.Contains($"| {name} | 1e-4 | {knob.Axis} | 8 |", md);                                         // the capacity table's rows
            Assert.Contains($"| {name} | 1e-4 | {knob.Axis} | 16 |", md);
            Assert.Contains(knob.Label, md);
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void TheDescriptorMatchesWhatTheMethodDoesOnEveryLayout(string name)
    {
        var m = Method(name);
        using var scope = NewDisposeScope();
        IPeftHost[] hosts = [TinyModels.Create(TinyModels.Llama), T5TinyModels.Create(T5TinyModels.Gated)];
        Assert.Equal(Enum.GetValues<ModelLayout>(), hosts.Select(h => h.Layout));
        foreach (var host in hosts)
        {
            var peft = PeftModel.Apply(host, m.DefaultConfig);           // the defaults resolve on every layout
            Assert.Equal(m.IsInputSide, host.InputAdapter is not null);
            Assert.Equal(m.TrainsWholeModel, peft.TrainableParameters == peft.TotalParameters);
            Assert.True(peft.TrainableParameters > 0);
        }
        Assert.NotEmpty(m.ReferenceSweep);
        Assert.All(m.ReferenceSweep, c => Assert.Equal(m.Kind, c.Config.Kind));
    }

    // --- nothing outside Peft/ names a method -------------------------------------------------------

    /// <summary>Literals that are the same word as a method name but mean something else.</summary>
    private static readonly (string File, string Literal)[] Unrelated =
    [
        ("src/PeftLab/Synthetic/Vocabulary.cs", "full"),   // the synthetic suite's antonym pair ("full", "empty")
    ];

    /// <summary>
    /// String literals that name a method outside <c>src/PeftLab/Peft/</c>: a literal equal to a method's config name or
    /// holding <c>method.name=NAME</c>; under <c>src/PeftLab/Studies/</c> also a capacity knob's axis name or config key.
    /// </summary>
    internal static IReadOnlyList<string> Violations(IEnumerable<(string Path, string Source)> files)
    {
        var names = PeftRegistry.All.Select(m => m.Name).ToArray();
        var knobWords = PeftRegistry.CapacityKnobs.SelectMany(k => new[] { k.Knob.Axis, k.Knob.ConfigKey }).ToArray();
        var found = new List<string>();
        foreach (var (path, source) in files)
        {
            if (path.StartsWith("src/PeftLab/Peft/", StringComparison.Ordinal)) continue;
            string[] banned = path.StartsWith("src/PeftLab/Studies/", StringComparison.Ordinal) ? [.. names, .. knobWords] : names;
            foreach (var (line, text) in CSharpStrings.Literals(source))
                if ((banned.Contains(text) && !Unrelated.Contains((path, text))) || names.Any(n => text.Contains("method.name=" + n, StringComparison.Ordinal)))
                    found.Add($"{path}:{line}: \"{text}\"");
        }
        return found;
    }

    [Fact]
    public void NoSourceOutsidePeftNamesAMethodInAStringLiteral()
    {
        var src = Path.Combine(TestPaths.RepoRoot, "src");
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestPaths.RepoRoot, f).Replace('\\', '/'))
            .Where(f => !f.Split('/').Any(part => part is "bin" or "obj"))
            .Select(f => (f, File.ReadAllText(Path.Combine(TestPaths.RepoRoot, f))))
            .ToArray();
        var studyCs = Assert.Single(files, f => f.Item1 == "src/PeftLab/Studies/Study.cs").Item2;
        Assert.Contains(CSharpStrings.Literals(studyCs), l => l.Text == "base_config");   // the scan sees the literals
        Assert.Contains(files, f => f.Item1.StartsWith("src/PeftLab.Cli/", StringComparison.Ordinal));
        var violations = Violations(files);
        Assert.True(violations.Count == 0, "method names outside src/PeftLab/Peft/ (derive them from PeftRegistry):\n" + string.Join("\n", violations));
    }

    [Fact]
    public void TheGuardCatchesANameAddedToStudyCs()
    {
        var lora = PeftRegistry.NameOf(PeftMethodKind.Lora);
        var added = $"var knob = Knobs[\"{lora}\"];";
        Assert.Equal([$"src/PeftLab/Studies/Study.cs:2: \"{lora}\""], Violations([("src/PeftLab/Studies/Study.cs", "// fine\n" + added)]));
        Assert.Single(Violations([("src/PeftLab/Studies/Report/Findings.cs", $"x = $\"{{Mean(v, \"{lora}\", s)}}\";")]));   // inside an interpolation hole
        Assert.Single(Violations([("src/PeftLab.Cli/Commands/X.cs", $"Run([\"method.name={lora}\"]);")]));
        Assert.Single(Violations([("src/PeftLab/Studies/Study.cs", "[\"lora_r\"] = 1;")]));
        Assert.Empty(Violations([("src/PeftLab/Peft/Lora/LoraMethod.cs", added)]));                               // the method's own folder
        Assert.Empty(Violations([("src/PeftLab/Studies/Study.cs", $"// \"{lora}\" in a comment\n/* \"{lora}\" */ var c = '\"'; var s = @\"say \"\"hi\"\"\";")]));
    }

    [Fact]
    public void TheLiteralScannerReadsEveryKindOfCSharpString()
    {
        var source = "var a = \"x\\\"y\"; // \"no\"\nvar b = $\"t{F(\"in\")}:{c}\" + @\"v\"\"w\" + 'q' + '\\'' + \"\";\n/* \"no\" */ var r = \"\"\"raw \"q\" \"\"\";";
        var literals = CSharpStrings.Literals(source);
        Assert.Equal(["x\\\"y", "in", "t{…}:{…}", "v\"\"w", "", "raw \"q\" "], literals.Select(l => l.Text));
        Assert.Equal([1, 2, 2, 2, 2, 3], literals.Select(l => l.Line));
    }
}

/// <summary>
/// The string literals of C# source with their line: regular, verbatim, interpolated and raw, contents as written
/// (escapes not decoded, interpolation holes shown as <c>{…}</c>), literals nested in interpolation holes included;
/// comments and character literals skipped.
/// </summary>
internal static class CSharpStrings
{
    public static IReadOnlyList<(int Line, string Text)> Literals(string source)
    {
        var found = new List<(int, string)>();
        int i = 0;
        Code(source, ref i, found, inHole: false);
        return found;
    }

    private static bool At(string s, int i, char c) => i < s.Length && s[i] == c;

    private static int LineOf(string s, int pos) => 1 + s.AsSpan(0, pos).Count('\n');

    /// <summary>Code up to the end, or in an interpolation hole up to the '}' that closes it (consumed).</summary>
    private static void Code(string s, ref int i, List<(int, string)> found, bool inHole)
    {
        int depth = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '/' && At(s, i + 1, '/')) { while (i < s.Length && s[i] != '\n') i++; }
            else if (c == '/' && At(s, i + 1, '*')) { int end = s.IndexOf("*/", i + 2, StringComparison.Ordinal); i = end < 0 ? s.Length : end + 2; }
            else if (c == '\'') { i++; while (i < s.Length && s[i] != '\'') i += s[i] == '\\' ? 2 : 1; i++; }
            else if (c is '"' or '$' or '@' && StringAt(s, i) is { } start) { i += start.Prefix; Literal(s, ref i, start.Dollars, start.Verbatim, found); }
            else if (c == '{') { depth++; i++; }
            else if (c == '}') { i++; if (inHole && depth-- == 0) return; }
            else i++;
        }
    }

    /// <summary>Does a string literal start at <paramref name="i"/>: the length of its $/@ prefix, its $ count and whether it is verbatim.</summary>
    private static (int Prefix, int Dollars, bool Verbatim)? StringAt(string s, int i)
    {
        int j = i, dollars = 0;
        bool verbatim = false;
        while (j < s.Length && s[j] is '$' or '@') { if (s[j] == '$') dollars++; else verbatim = true; j++; }
        return At(s, j, '"') ? (j - i, dollars, verbatim) : null;
    }

    /// <summary>Reads the literal whose first quote is at <paramref name="i"/>.</summary>
    private static void Literal(string s, ref int i, int dollars, bool verbatim, List<(int, string)> found)
    {
        int start = i, quotes = 0;
        while (At(s, i + quotes, '"')) quotes++;
        var text = new StringBuilder();
        void Hole(ref int k)
        {
            text.Append("{…}");
            Code(s, ref k, found, inHole: true);
        }
        if (!verbatim && quotes >= 3)
        {
            // raw: ends at the same run of quotes; with $, a run of at least that many braces opens a hole
            i += quotes;
            while (i < s.Length)
            {
                int run = 0;
                while (At(s, i + run, '"')) run++;
                if (run >= quotes) { i += quotes; break; }
                int braces = 0;
                while (dollars > 0 && At(s, i + braces, '{')) braces++;
                if (dollars > 0 && braces >= dollars) { text.Append(s, i, braces - dollars); i += braces; Hole(ref i); continue; }
                text.Append(s[i]);
                i++;
            }
        }
        else
        {
            i++;
            while (i < s.Length)
            {
                char c = s[i];
                if (verbatim && c == '"' && At(s, i + 1, '"')) { text.Append("\"\""); i += 2; }
                else if (c == '"') { i++; break; }
                else if (!verbatim && c == '\\') { text.Append(s, i, Math.Min(2, s.Length - i)); i += 2; }
                else if (dollars > 0 && c == '{' && At(s, i + 1, '{')) { text.Append("{{"); i += 2; }
                else if (dollars > 0 && c == '{') { i++; Hole(ref i); }
                else { text.Append(c); i++; }
            }
        }
        found.Add((LineOf(s, start), text.ToString()));
    }
}
