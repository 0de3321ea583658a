using System.Text.Json.Nodes;

namespace PeftLab.Tests.Real;

/// <summary>
/// A SuperNI-format instruction set in the domain of the real stories260K model (TinyStories): each instance is a
/// two-sentence story; the train tasks ask for its main character's name and for the thing they found, the test task
/// for the name under another wording. Names and objects are TinyStories' own, so the base already knows them.
/// </summary>
internal static class StoryTasks
{
    public static string Model => Path.Combine(TestPaths.Shared, "fixtures", "real", "stories260K");

    private static readonly string[] Girls = ["Lily", "Sue", "Mia", "Anna", "Lucy", "Amy", "Kate", "Sara", "Jane", "Emma"];
    private static readonly string[] Boys = ["Tom", "Ben", "Max", "Tim", "Sam", "Jack", "Bob", "Joe", "Leo", "Dan"];
    private static readonly string[] Things = ["ball", "kite", "box", "toy", "cat", "dog", "tree", "cake", "hat", "car"];
    private static readonly string[] Likes = ["play outside", "run in the park", "read books", "sing songs", "draw pictures"];

    private static (string Story, string Name, string Thing) Story(Random rng)
    {
        bool girl = rng.Next(2) == 0;
        var name = (girl ? Girls : Boys)[rng.Next(10)];
        var thing = Things[rng.Next(Things.Length)];
        var story = $"Once upon a time, there was a little {(girl ? "girl" : "boy")} named {name}. {(girl ? "She" : "He")} loved to {Likes[rng.Next(Likes.Length)]}. One day, {(girl ? "she" : "he")} found a big {thing}.";
        return (story, name, thing);
    }

    /// <summary>Writes the folder (tasks/, splits/) and returns it.</summary>
    public static string Write(int instances = 48)
    {
        var dir = TestPaths.NewTempDir("story-tasks");
        Directory.CreateDirectory(Path.Combine(dir, "tasks"));
        Directory.CreateDirectory(Path.Combine(dir, "splits"));
        var tasks = new (string Name, string Definition, Func<(string Story, string Name, string Thing), string> Answer)[]
        {
            ("task001_story_name", "Read the story and write the name of the main character.", s => s.Name),
            ("task002_story_thing", "Read the story and write what the child found.", s => s.Thing),
            ("task003_story_who", "Who is this story about? Answer with the name only.", s => s.Name),
        };
        var rng = new Random(260);
        foreach (var (name, definition, answer) in tasks)
        {
            var inst = new JsonArray();
            for (int i = 0; i < instances; i++)
            {
                var s = Story(rng);
                inst.Add(new JsonObject { ["id"] = $"{name}-{i:x32}", ["input"] = s.Story, ["output"] = new JsonArray(answer(s)) });
            }
            var ex = Story(rng);
            File.WriteAllText(Path.Combine(dir, "tasks", name + ".json"), new JsonObject
            {
                ["Contributors"] = new JsonArray(), ["Source"] = new JsonArray("stories"), ["URL"] = new JsonArray(),
                ["Categories"] = new JsonArray("Information Extraction"), ["Reasoning"] = new JsonArray(), ["Definition"] = new JsonArray(definition),
                ["Input_language"] = new JsonArray("English"), ["Output_language"] = new JsonArray("English"), ["Instruction_language"] = new JsonArray("English"),
                ["Domains"] = new JsonArray("Story"),
                ["Positive Examples"] = new JsonArray(new JsonObject { ["input"] = ex.Story, ["output"] = answer(ex), ["explanation"] = "from the story" }),
                ["Negative Examples"] = new JsonArray(), ["Instances"] = inst, ["Instance License"] = new JsonArray("MIT"),
            }.ToJsonString());
        }
        File.WriteAllText(Path.Combine(dir, "splits", "train_tasks.txt"), "task001_story_name\ntask002_story_thing\n");
        File.WriteAllText(Path.Combine(dir, "splits", "test_tasks.txt"), "task003_story_who\n");
        return dir;
    }

    /// <summary>Training overrides for a short run of stories260K on this folder.</summary>
    public static string[] Run(string data, string output, string method, int steps) =>
    [
        $"model.path={Model}", $"data.path={data}", "data.max_source_tokens=200", "data.max_target_tokens=8", "data.max_length=216",
        "data.train_instances_per_task=32", "data.held_out_instances_per_task=16", "data.validation_tasks=0",
        "data.test_instances_per_task=16", "data.num_positive_examples=0",
        "train.batch_size=8", "train.threads=1", $"train.max_steps={steps}", $"method.name={method}",
        "eval.evals_per_run=1", "eval.max_new_tokens=6", "eval.final=true", "eval.generate=false", "eval.batch_size=16",
        "schedule.warmup_steps=2", $"output={output}",
    ];
}
