using System.Text.Json.Nodes;

namespace PeftLab.Tests;

/// <summary>A miniature SuperNI-format task folder (3 train tasks, 1 test task, short words) for fast training tests.</summary>
public static class MiniTasks
{
    private static readonly (string Name, string Definition, Func<string, string> Fn)[] Tasks =
    [
        ("task001_reverse", "Reverse the word.", w => new string(w.Reverse().ToArray())),
        ("task002_upper", "Uppercase the word.", w => w.ToUpperInvariant()),
        ("task003_double", "Write the word twice.", w => w + w),
        ("task004_first", "Give the first letter.", w => w[..1]),
    ];

    /// <summary>Writes the folder and returns its path.</summary>
    public static string Write(int instances = 16)
    {
        var dir = TestPaths.NewTempDir("minitasks");
        Directory.CreateDirectory(Path.Combine(dir, "tasks"));
        Directory.CreateDirectory(Path.Combine(dir, "splits"));
        var rng = new Random(0);
        foreach (var (name, definition, fn) in Tasks)
        {
            var inst = new JsonArray();
            for (int i = 0; i < instances; i++)
            {
                var w = new string(Enumerable.Range(0, rng.Next(2, 6)).Select(_ => "abcdefgh"[rng.Next(8)]).ToArray());
                inst.Add(new JsonObject { ["id"] = $"{name}-{i:x32}", ["input"] = w, ["output"] = new JsonArray(fn(w)) });
            }
            var task = new JsonObject
            {
                ["Contributors"] = new JsonArray(), ["Source"] = new JsonArray("synthetic"), ["URL"] = new JsonArray(),
                ["Categories"] = new JsonArray("String Transformation"), ["Reasoning"] = new JsonArray(), ["Definition"] = new JsonArray(definition),
                ["Input_language"] = new JsonArray("English"), ["Output_language"] = new JsonArray("English"), ["Instruction_language"] = new JsonArray("English"),
                ["Domains"] = new JsonArray("Misc."),
                ["Positive Examples"] = new JsonArray(new JsonObject { ["input"] = "abc", ["output"] = fn("abc"), ["explanation"] = "x" }, new JsonObject { ["input"] = "de", ["output"] = fn("de"), ["explanation"] = "y" }),
                ["Negative Examples"] = new JsonArray(), ["Instances"] = inst, ["Instance License"] = new JsonArray("MIT"),
            };
            File.WriteAllText(Path.Combine(dir, "tasks", name + ".json"), task.ToJsonString());
        }
        File.WriteAllText(Path.Combine(dir, "splits", "train_tasks.txt"), "task001_reverse\ntask002_upper\ntask003_double\n");
        File.WriteAllText(Path.Combine(dir, "splits", "test_tasks.txt"), "task004_first\n");
        return dir;
    }

    /// <summary>Overrides for a fast run of the nano preset on this data.</summary>
    public static string[] FastRun(string data, string output) =>
    [
        "model.preset=nano", $"data.path={data}", "data.max_source_tokens=40", "data.max_target_tokens=12", "data.max_length=64",
        "data.train_instances_per_task=8", "data.held_out_instances_per_task=4", "data.validation_tasks=1", "data.validation_instances_per_task=4",
        "train.batch_size=4", "train.threads=1", "optim.lr=3e-3", "eval.evals_per_run=2", "eval.max_new_tokens=6", "eval.final=false",
        "schedule.warmup_steps=1", $"output={output}",
    ];
}
