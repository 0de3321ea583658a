using System.Diagnostics;
using System.Text;
using PeftLab.Checkpoints;
using PeftLab.Configuration;
using PeftLab.Models;
using PeftLab.Training;

namespace PeftLab.Tests.Runtime;

/// <summary>
/// Seeded, time-bounded fuzzing of the three inputs a user hands PeftLab most: safetensors files, config.json and YAML
/// configs. Every mutant must be accepted or refused with PeftLab's own error types (which the CLI prints as one
/// <c>error:</c> line); any other exception is a crash. At least 1,000 mutants each; the time bound keeps CI short.
/// </summary>
public sealed class FuzzTests
{
    private const int MinCases = 1000;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(10);

    private static void Fuzz(string what, int seed, Func<Random, int, string?> oneCase)
    {
        var rng = new Random(seed);
        var watch = Stopwatch.StartNew();
        var crashes = new List<string>();
        int n = 0;
        for (; n < MinCases || (watch.Elapsed < Budget && n < 20 * MinCases); n++)
            if (oneCase(rng, n) is { } crash && crashes.Count < 10) crashes.Add($"case {n}: {crash}");
        Assert.True(crashes.Count == 0, $"{what}: {crashes.Count}+ crashes in {n} cases:\n" + string.Join("\n", crashes));
        Assert.True(n >= MinCases);
    }

    private static string Describe(Exception e) => $"{e.GetType().Name}: {e.Message}\n{e.StackTrace?.Split('\n').FirstOrDefault()}";

    // ---- safetensors -------------------------------------------------------------------------------

    private static readonly byte[] Safetensors = File.ReadAllBytes(Path.Combine(Fixtures.Dir("llama-gqa"), "model.safetensors"));

    private static byte[] MutateSafetensors(Random rng)
    {
        var bytes = (byte[])Safetensors.Clone();
        long headerLength = BitConverter.ToInt64(bytes, 0);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        switch (rng.Next(6))
        {
            case 0:   // flip bytes inside the header
                for (int i = 0, k = rng.Next(1, 4); i < k; i++) bytes[8 + rng.Next((int)headerLength)] ^= (byte)(1 << rng.Next(8));
                return bytes;
            case 1:   // a different length prefix
                long[] lengths = [0, 1, 7, headerLength - 1, headerLength + 1, long.MaxValue, -1, bytes.Length, 1L << 40];
                BitConverter.GetBytes(lengths[rng.Next(lengths.Length)]).CopyTo(bytes, 0);
                return bytes;
            case 2:   // truncated anywhere
                return bytes[..rng.Next(bytes.Length)];
            default:  // a token of the header JSON replaced
            {
                string[] replacements = ["-1", "0", "18446744073709551616", "1e400", "null", "\"F32\"", "\"I64\"", "\"BOOL\"", "\"F8\"", "[]", "{}", "[1,2]", "[0, 99999999999]", "\"\\ud800\"", "[-5, 3]", "9223372036854775807", "true"];
                var numbers = System.Text.RegularExpressions.Regex.Matches(header, "\\d+|\"[A-Z0-9]+\"|\\[[^\\]]*\\]");
                var m = numbers[rng.Next(numbers.Count)];
                var mutated = header[..m.Index] + replacements[rng.Next(replacements.Length)] + header[(m.Index + m.Length)..];
                var h = Encoding.UTF8.GetBytes(mutated);
                var result = new byte[8 + h.Length + (bytes.Length - 8 - (int)headerLength)];
                BitConverter.GetBytes((long)h.Length).CopyTo(result, 0);
                h.CopyTo(result, 8);
                bytes.AsSpan(8 + (int)headerLength).CopyTo(result.AsSpan(8 + h.Length));
                return result;
            }
        }
    }

    [Fact]
    public void MutatedSafetensorsAreReadOrRefusedNeverCrash()
    {
        var dir = TestPaths.NewTempDir("fuzz-st");
        Fuzz("safetensors", 1234, (rng, n) =>
        {
            var path = Path.Combine(dir, $"m{n % 8}.safetensors");
            File.WriteAllBytes(path, MutateSafetensors(rng));
            try
            {
                using var file = SafeTensorsFile.Open(path);
                foreach (var name in file.Names)
                {
                    using var t = TensorConversions.ToTensor(file, name, TorchSharp.torch.ScalarType.Float32);
                }
                return null;
            }
            catch (CheckpointFormatException) { return null; }
            catch (Exception e) { return Describe(e); }
        });
    }

    // ---- config.json -------------------------------------------------------------------------------

    private static readonly string ConfigJson = File.ReadAllText(Path.Combine(Fixtures.Dir("llama-gqa"), "config.json"));

    [Fact]
    public void MutatedConfigJsonIsParsedOrRefusedNeverCrash()
    {
        var keys = System.Text.Json.Nodes.JsonNode.Parse(ConfigJson)!.AsObject().Select(kv => kv.Key).ToArray();
        string[] values = ["-1", "0", "1", "2147483648", "1e308", "-1e308", "1.5", "null", "\"\"", "\"x\"", "[]", "{}", "[1, -2]", "true", "{\"type\": \"llama3\", \"factor\": -1}", "{\"rope_type\": \"yarn\"}", "9999999999999999999999"];
        Fuzz("config.json", 99, (rng, n) =>
        {
            var o = System.Text.Json.Nodes.JsonNode.Parse(ConfigJson)!.AsObject();
            for (int i = 0, k = rng.Next(1, 4); i < k; i++)
            {
                var key = rng.Next(8) == 0 ? "rope_scaling" : keys[rng.Next(keys.Length)];
                o[key] = System.Text.Json.Nodes.JsonNode.Parse(values[rng.Next(values.Length)]);
            }
            var text = o.ToJsonString();
            if (rng.Next(10) == 0) text = text[..rng.Next(text.Length)];   // torn
            try { DecoderConfig.Parse(text, "config.json"); return null; }
            catch (ModelConfigException) { return null; }
            catch (Exception e) { return Describe(e); }
        });
    }

    // ---- YAML configs ------------------------------------------------------------------------------

    private const string Yaml = """
        model: {preset: nano}
        method:
          name: lora
          r: 8
          alpha: 16
          target_modules: [q_proj, v_proj]
        data: {path: data/tasks, max_length: 128, train_instances_per_task: 8}
        optim: {lr: 3.0e-4, weight_decay: 0.01}
        schedule: {kind: cosine, warmup_ratio: 0.03}
        train: {max_steps: 10, batch_size: 4, seed: 42}
        eval: {evals_per_run: 2, max_new_tokens: 8}
        output: runs/x
        """;

    private static string MutateYaml(Random rng)
    {
        var lines = Yaml.Split('\n').ToList();
        string[] fragments = ["&a", "*a", "*b", "!!binary", "!custom", "[", "]", "{", "}", ":", "- ", "? ", "|", ">", "\"", "'", "\t", "%YAML 1.1", "---", "...", "~", "-.inf", ".nan", "0x1F", "1_000", "<<: *a", "\\u0000", "#", "@", "`"];
        for (int i = 0, k = rng.Next(1, 5); i < k; i++)
        {
            int line = rng.Next(lines.Count);
            var s = lines[line];
            switch (rng.Next(5))
            {
                case 0: lines[line] = s.Insert(rng.Next(s.Length + 1), fragments[rng.Next(fragments.Length)]); break;
                case 1: if (s.Length > 0) lines[line] = s.Remove(rng.Next(s.Length), 1); break;
                case 2: lines.Insert(rng.Next(lines.Count + 1), s); break;
                case 3: lines[line] = new string(' ', rng.Next(6)) + s.TrimStart(); break;
                default: lines.RemoveAt(line); if (lines.Count == 0) lines.Add(""); break;
            }
        }
        return string.Join('\n', lines);
    }

    [Fact]
    public void MutatedYamlConfigsBindOrAreRefusedNeverCrash()
    {
        TrainConfigLoader.Register();
        Fuzz("yaml", 7, (rng, n) =>
        {
            var yaml = MutateYaml(rng);
            try { TrainConfigLoader.Bind(ConfigNode.Parse(yaml, "fuzz.yaml")); return null; }
            catch (ConfigException) { return null; }
            catch (Exception e) { return Describe(e) + "\n--- yaml:\n" + yaml; }
        });
    }
}

/// <summary>Malformed safetensors headers found by the fuzz test.</summary>
public sealed class SafetensorsHeaderTextTests
{
    private static string Write(byte[] header)
    {
        var path = Path.Combine(TestPaths.NewTempDir("st-text"), "m.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((long)header.Length), .. header]);
        return path;
    }

    [Theory]
    [InlineData(new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}' }, "not valid UTF-8 (first bad byte at header offset 2)")]
    [InlineData(new byte[] { (byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'{', (byte)'}', (byte)'}' }, "not valid UTF-8")]
    public void InvalidUtf8InTheHeaderIsAFormatError(byte[] header, string expected)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(Write(header)));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("{\"\\ud800\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}")]
    [InlineData("{\"__metadata__\": {\"format\": \"\\udc00x\"}}")]
    public void ALoneSurrogateEscapeIsAFormatError(string header)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(Write(Encoding.UTF8.GetBytes(header))));
        Assert.Contains("not valid Unicode text", e.Message);
    }
}
