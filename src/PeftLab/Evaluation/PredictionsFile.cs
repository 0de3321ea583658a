using System.Collections.ObjectModel;
using System.Text.Json;
using PeftLab.Data;

namespace PeftLab.Evaluation;

/// <summary>
/// Reads the official predictions format: JSON Lines, one object per line with a string <c>id</c> and a string
/// <c>prediction</c> (other keys are ignored). Blank lines are skipped.
/// </summary>
public static class PredictionsFile
{
    /// <summary>Reads <paramref name="path"/> into an id → prediction map.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// A line is not a JSON object, lacks a string <c>id</c> or <c>prediction</c>, or repeats an id; the message names the
    /// file and the (1-based) line. Also when the file holds no predictions at all.
    /// </exception>
    public static IReadOnlyDictionary<string, string> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"predictions file not found: {path}", path);

        var predictions = new Dictionary<string, string>(StringComparer.Ordinal);
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var line in Utf8Text.ReadAllLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"predictions file {path}, line {lineNumber}";

            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{where}: invalid JSON ({e.Message})", e);
            }

            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{where}: expected a JSON object with \"id\" and \"prediction\", got {JsonRecords.Describe(root.ValueKind)}");
                if (!root.TryGetProperty("id", out var idElement))
                    throw new InvalidDataException($"{where}: missing \"id\"");
                if (idElement.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{where}: \"id\" must be a string, got {JsonRecords.Describe(idElement.ValueKind)}");
                string id = idElement.GetString()!;
                if (id.Length == 0) throw new InvalidDataException($"{where}: \"id\" is empty");
                if (!root.TryGetProperty("prediction", out var predictionElement))
                    throw new InvalidDataException($"{where}: missing \"prediction\" for id '{id}'");
                if (predictionElement.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException(
                        $"{where}: \"prediction\" for id '{id}' must be a string, got {JsonRecords.Describe(predictionElement.ValueKind)}");
                if (firstLine.TryGetValue(id, out int first))
                    throw new InvalidDataException($"{where}: duplicate id '{id}' (first seen on line {first})");
                firstLine[id] = lineNumber;
                predictions[id] = predictionElement.GetString()!;
            }
        }
        if (predictions.Count == 0)
            throw new InvalidDataException($"predictions file {path} holds no predictions ({(lineNumber == 0 ? "it is empty" : "only blank lines")}); scoring it would report 0 for every instance");
        return new ReadOnlyDictionary<string, string>(predictions);
    }
}
