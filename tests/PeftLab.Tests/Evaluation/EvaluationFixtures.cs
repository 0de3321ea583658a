using System.Text.Json;
using PeftLab.Evaluation;

namespace PeftLab.Tests.Evaluation;

/// <summary>Test-side readers for the shared SuperNI subset and its metric test vectors (independent of src/PeftLab/Data).</summary>
internal static class EvaluationFixtures
{
    public static string RougeTsv => Path.Combine(TestPaths.SuperNi, "rouge_reference.tsv");
    public static string PorterTsv => Path.Combine(TestPaths.SuperNi, "porter_reference.tsv");
    public static string UnicodeCaseTsv =>
        Path.Combine(TestPaths.RepoRoot, "tests", "PeftLab.Tests", "Evaluation", "Data", "python_unicode_case.tsv");

    /// <summary>Rows of a header-led TSV as column-name → value maps.</summary>
    public static List<Dictionary<string, string>> ReadTsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        var header = lines[0].Split('\t');
        var rows = new List<Dictionary<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            var cells = line.Split('\t');
            Assert.True(cells.Length == header.Length, $"{path}: row has {cells.Length} cells, header {header.Length}: {line}");
            rows.Add(header.Zip(cells).ToDictionary(p => p.First, p => p.Second));
        }
        return rows;
    }

    /// <summary>The official test set: Instances[:100] of every task in splits/test_tasks.txt.</summary>
    public static List<EvalItem> TestSetItems()
    {
        var items = new List<EvalItem>();
        foreach (var task in File.ReadAllLines(Path.Combine(TestPaths.SuperNi, "splits", "test_tasks.txt")))
        {
            if (string.IsNullOrWhiteSpace(task)) continue;
            string name = task.Trim();
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.SuperNi, "tasks", name + ".json")));
            string category = doc.RootElement.GetProperty("Categories")[0].GetString()!;
            foreach (var inst in doc.RootElement.GetProperty("Instances").EnumerateArray().Take(100))
            {
                var refs = inst.GetProperty("output").EnumerateArray().Select(e => e.GetString()!).ToArray();
                items.Add(new EvalItem(inst.GetProperty("id").GetString()!, name, category, refs));
            }
        }
        return items;
    }
}
