using System.Text.Json;

namespace PeftLab.Data.SuperNi;

/// <summary>
/// Reads Super-NaturalInstructions task files and split lists. Every problem either fails with a
/// <see cref="DataFormatException"/> naming the file (and instance) or, when the data can still be used, is recorded
/// as a warning in <see cref="LoadReport"/>.
/// </summary>
public static class TaskLoader
{
    private static readonly JsonDocumentOptions Strict = new() { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow };

    private static readonly Dictionary<string, string> ListKeys = new(StringComparer.Ordinal)
    {
        ["Contributors"] = nameof(TaskFile.Contributors),
        ["Source"] = nameof(TaskFile.Source),
        ["URL"] = nameof(TaskFile.Url),
        ["Categories"] = nameof(TaskFile.Categories),
        ["Reasoning"] = nameof(TaskFile.Reasoning),
        ["Input_language"] = nameof(TaskFile.InputLanguage),
        ["Output_language"] = nameof(TaskFile.OutputLanguage),
        ["Instruction_language"] = nameof(TaskFile.InstructionLanguage),
        ["Domains"] = nameof(TaskFile.Domains),
        ["Instance License"] = nameof(TaskFile.InstanceLicense),
    };

    // "Primitives" is written by PeftLab's synthetic suite (the skills a task composes); it is known, not an error.
    private static readonly HashSet<string> OtherKeys = ["Definition", "Positive Examples", "Negative Examples", "Instances", "Primitives"];

    /// <summary>
    /// Loads <c>dir/tasks/*.json</c> (or <c>dir/*.json</c> when there is no tasks folder) and the split lists
    /// <c>dir/splits/{train,validation,test}_tasks.txt</c> that exist.
    /// </summary>
    public static TaskCollection LoadDirectory(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"SuperNI data folder not found: {dir}");
        var tasksDir = Path.Combine(dir, "tasks");
        if (!System.IO.Directory.Exists(tasksDir)) tasksDir = dir;
        var files = System.IO.Directory.GetFiles(tasksDir, "*.json").OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new DataFormatException(tasksDir, "no task files (*.json) found");

        var warnings = new List<string>();
        int skipped = 0;
        var tasks = new List<TaskFile>(files.Count);
        foreach (var f in files)
        {
            tasks.Add(LoadTaskFile(f, warnings, out int s));
            skipped += s;
        }

        var byName = tasks.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var splits = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var splitsDir = Path.Combine(dir, "splits");
        if (System.IO.Directory.Exists(splitsDir))
        {
            var owner = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var split in TaskCollection.KnownSplits)
            {
                var path = Path.Combine(splitsDir, split + "_tasks.txt");
                if (!File.Exists(path)) continue;
                var names = ReadSplitFile(path, byName, owner, split);
                splits[split] = names;
            }
            foreach (var other in System.IO.Directory.GetFiles(splitsDir).OrderBy(f => f, StringComparer.Ordinal))
            {
                var n = Path.GetFileName(other);
                if (!TaskCollection.KnownSplits.Any(s => n == s + "_tasks.txt"))
                    warnings.Add($"{other}: ignored (PeftLab reads only {string.Join(", ", TaskCollection.KnownSplits.Select(s => s + "_tasks.txt"))})");
            }
            var unassigned = tasks.Where(t => !owner.ContainsKey(t.Name)).Select(t => t.Name).ToList();
            if (splits.Count > 0 && unassigned.Count > 0)
                warnings.Add($"{tasksDir}: {unassigned.Count} task file(s) are in no split and will not be used by split-based runs: {string.Join(", ", unassigned)}");
        }
        else
        {
            warnings.Add($"{dir}: no splits folder; only explicitly named tasks can be used");
        }

        var report = new LoadReport(tasks.Count, tasks.Sum(t => t.Instances.Count), skipped, warnings);
        return new TaskCollection(tasks, splits, report, dir);
    }

    private static List<string> ReadSplitFile(string path, Dictionary<string, TaskFile> tasks, Dictionary<string, string> owner, string split)
    {
        var names = new List<string>();
        var lines = Utf8Text.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            var name = lines[i].Trim();
            if (name.Length == 0) continue;
            if (!tasks.ContainsKey(name))
                throw new DataFormatException(path, $"task '{name}' is listed in the {split} split but there is no task file {name}.json", i + 1);
            if (owner.TryGetValue(name, out var other))
                throw new DataFormatException(path,
                    other == split ? $"task '{name}' is listed twice" : $"task '{name}' is also in the {other} split; splits must be disjoint", i + 1);
            owner[name] = split;
            names.Add(name);
        }
        if (names.Count == 0) throw new DataFormatException(path, "split file lists no tasks");
        return names;
    }

    /// <summary>Loads one task file; the task name is the file name without ".json".</summary>
    /// <param name="path">The task file.</param>
    /// <param name="warnings">Receives non-fatal problems (skipped instances, unknown keys).</param>
    /// <param name="skippedInstances">Instances dropped because they have no reference output.</param>
    public static TaskFile LoadTaskFile(string path, List<string> warnings, out int skippedInstances)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(warnings);
        if (!File.Exists(path)) throw new FileNotFoundException($"task file not found: {path}", path);
        return Parse(Utf8Text.ReadAllText(path), Path.GetFileNameWithoutExtension(path), path, warnings, out skippedInstances);
    }

    /// <summary>Parses task JSON; <paramref name="path"/> is only used in messages and <see cref="TaskFile.SourcePath"/>.</summary>
    public static TaskFile Parse(string json, string name, string path, List<string> warnings, out int skippedInstances)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(warnings);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, Strict); }
        catch (JsonException e)
        {
            throw new DataFormatException(path, $"invalid JSON ({e.Message})", (e.LineNumber ?? 0) + 1, e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"a task file must be a JSON object, found {JsonRecords.Describe(root.ValueKind)}");

            foreach (var p in root.EnumerateObject())
                if (!ListKeys.ContainsKey(p.Name) && !OtherKeys.Contains(p.Name))
                    warnings.Add($"{path}: unknown key \"{p.Name}\" ignored");

            var definition = ReadDefinition(root, path);
            var lists = new Dictionary<string, IReadOnlyList<string>>();
            foreach (var (key, prop) in ListKeys)
                lists[prop] = root.TryGetProperty(key, out var v) ? ReadStringList(v, key, path) : [];
            if (lists[nameof(TaskFile.Categories)].Count == 0)
                warnings.Add($"{path}: no \"Categories\"; per-category scores will group this task under an empty category");

            var pos = ReadExamples(root, "Positive Examples", path);
            var neg = ReadExamples(root, "Negative Examples", path);
            var instances = ReadInstances(root, path, warnings, out skippedInstances);

            return new TaskFile
            {
                Name = name,
                SourcePath = path,
                Definition = definition,
                PositiveExamples = pos,
                NegativeExamples = neg,
                Instances = instances,
                Categories = lists[nameof(TaskFile.Categories)],
                Contributors = lists[nameof(TaskFile.Contributors)],
                Source = lists[nameof(TaskFile.Source)],
                Url = lists[nameof(TaskFile.Url)],
                Reasoning = lists[nameof(TaskFile.Reasoning)],
                InputLanguage = lists[nameof(TaskFile.InputLanguage)],
                OutputLanguage = lists[nameof(TaskFile.OutputLanguage)],
                InstructionLanguage = lists[nameof(TaskFile.InstructionLanguage)],
                Domains = lists[nameof(TaskFile.Domains)],
                InstanceLicense = lists[nameof(TaskFile.InstanceLicense)],
            };
        }
    }

    private static IReadOnlyList<string> ReadDefinition(JsonElement root, string path)
    {
        if (!root.TryGetProperty("Definition", out var d))
            throw new DataFormatException(path, "missing required key \"Definition\"");
        // Older upstream files store the definition as a plain string; current ones as a list.
        IReadOnlyList<string> defs = d.ValueKind == JsonValueKind.String ? [d.GetString()!] : ReadStringList(d, "Definition", path);
        if (defs.Count == 0 || PyText.Strip(defs[0]).Length == 0)
            throw new DataFormatException(path, "\"Definition\" is empty; every task needs an instruction");
        return defs;
    }

    private static IReadOnlyList<string> ReadStringList(JsonElement v, string key, string path)
    {
        if (v.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, $"\"{key}\" must be a list of strings, found {JsonRecords.Describe(v.ValueKind)}");
        var list = new List<string>();
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw new DataFormatException(path, $"\"{key}\"[{i}] must be a string, found {JsonRecords.Describe(e.ValueKind)}");
            list.Add(e.GetString()!);
            i++;
        }
        return list;
    }

    private static IReadOnlyList<TaskExample> ReadExamples(JsonElement root, string key, string path)
    {
        if (!root.TryGetProperty(key, out var v)) return [];
        if (v.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, $"\"{key}\" must be a list, found {JsonRecords.Describe(v.ValueKind)}");
        var list = new List<TaskExample>();
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            var where = $"\"{key}\"[{i}]";
            if (e.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"{where} must be an object, found {JsonRecords.Describe(e.ValueKind)}");
            var input = RequiredString(e, "input", where, path);
            var output = RequiredString(e, "output", where, path);
            var explanation = e.TryGetProperty("explanation", out var x)
                ? x.ValueKind == JsonValueKind.String ? x.GetString()!
                    : throw new DataFormatException(path, $"{where}.explanation must be a string, found {JsonRecords.Describe(x.ValueKind)}")
                : null;
            list.Add(new TaskExample(input, output, explanation));
            i++;
        }
        return list;
    }

    private static string RequiredString(JsonElement obj, string key, string where, string path)
    {
        if (!obj.TryGetProperty(key, out var v))
            throw new DataFormatException(path, $"{where} is missing \"{key}\"");
        if (v.ValueKind != JsonValueKind.String)
            throw new DataFormatException(path, $"{where}.{key} must be a string, found {JsonRecords.Describe(v.ValueKind)}");
        return v.GetString()!;
    }

    private static IReadOnlyList<Instance> ReadInstances(JsonElement root, string path, List<string> warnings, out int skipped)
    {
        skipped = 0;
        if (!root.TryGetProperty("Instances", out var v))
            throw new DataFormatException(path, "missing required key \"Instances\"");
        if (v.ValueKind != JsonValueKind.Array)
            throw new DataFormatException(path, $"\"Instances\" must be a list, found {JsonRecords.Describe(v.ValueKind)}");
        if (v.GetArrayLength() == 0)
            throw new DataFormatException(path, "\"Instances\" is empty; a task needs at least one instance");

        var list = new List<Instance>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            var where = $"Instances[{i}]";
            if (e.ValueKind != JsonValueKind.Object)
                throw new DataFormatException(path, $"{where} must be an object, found {JsonRecords.Describe(e.ValueKind)}");
            var id = RequiredString(e, "id", where, path);
            if (id.Length == 0) throw new DataFormatException(path, $"{where} has an empty \"id\"");
            where = $"Instances[{i}] (id {id})";
            if (!ids.Add(id)) throw new DataFormatException(path, $"{where}: duplicate instance id");
            var input = RequiredString(e, "input", where, path);
            if (!e.TryGetProperty("output", out var o))
                throw new DataFormatException(path, $"{where} is missing \"output\"");
            if (o.ValueKind != JsonValueKind.Array)
                throw new DataFormatException(path, $"{where}.output must be a list of strings, found {JsonRecords.Describe(o.ValueKind)}");
            var outputs = new List<string>();
            int k = 0;
            foreach (var r in o.EnumerateArray())
            {
                if (r.ValueKind != JsonValueKind.String)
                    throw new DataFormatException(path, $"{where}.output[{k}] must be a string, found {JsonRecords.Describe(r.ValueKind)}");
                outputs.Add(r.GetString()!);
                k++;
            }
            if (outputs.Count == 0)
            {
                skipped++;
                warnings.Add($"{path}: {where} skipped: empty output list (no reference to train on or score against)");
            }
            else
            {
                list.Add(new Instance(id, input, outputs));
            }
            i++;
        }
        if (list.Count == 0)
            throw new DataFormatException(path, $"none of the {i} instances has a reference output");
        return list;
    }
}
