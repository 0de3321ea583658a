using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace PeftLab.Configuration;

/// <summary>Overrides the snake_case key of a config property, or the spelling of an enum member.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ConfigKeyAttribute(string name) : Attribute
{
    /// <summary>The key as written in YAML.</summary>
    public string Name { get; } = name;
}

/// <summary>Excludes a settable property from binding and writing.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigIgnoreAttribute : Attribute;

/// <summary>Lets a list-typed property accept a single item (scalar or mapping) as a one-item list.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigAllowSingleAttribute : Attribute;

/// <summary>
/// Puts a string-keyed dictionary property's entries in the record's own mapping, beside its other keys, instead of
/// under a key of its own: with <c>[ConfigInline(typeof(K), nameof(K.Names))] Knobs</c>, the mapping
/// <c>{lr: [1e-4], lora_r: [8, 16]}</c> binds <c>lora_r</c> into <c>Knobs</c>. Only the keys listed by the public static
/// <c>IReadOnlyList&lt;string&gt;</c> property <paramref name="member"/> of <paramref name="keySource"/> bind into it (any
/// other key stays an unknown key); they count among the record's keys in the property's place, and are written back
/// inline. With <see cref="ConfigAllowSingleAttribute"/> each list-typed value may be written as a single item.
/// </summary>
/// <param name="keySource">The type declaring the key list.</param>
/// <param name="member">The name of its static property listing the keys.</param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigInlineAttribute(Type keySource, string member) : Attribute
{
    private IReadOnlyList<string>? keys;

    /// <summary>The keys that bind into the dictionary, in the order they are listed and written (read once: the binder asks per mapping entry).</summary>
    public IReadOnlyList<string> Keys => keys ??=
        keySource.GetProperty(member, BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as IReadOnlyList<string>
        ?? throw new InvalidOperationException($"[ConfigInline]: {keySource.Name}.{member} must be a public static IReadOnlyList<string> property");
}

/// <summary>
/// Bounds a numeric property; checked on the resolved value (defaults included). Null values are not checked. A declared
/// range also requires the value to be finite (NaN and ±infinity are out of every range). The one range mechanism for
/// every numeric knob: config records and command-line options (PeftLab.Cli checks options with <see cref="Check"/>).
/// </summary>
/// <param name="min">Lower bound (<see cref="double.MinValue"/> for none).</param>
/// <param name="max">Upper bound (<see cref="double.MaxValue"/> for none).</param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigRangeAttribute(double min, double max) : Attribute
{
    /// <summary>Lower bound.</summary>
    public double Min { get; } = min;
    /// <summary>Upper bound.</summary>
    public double Max { get; } = max;
    /// <summary>The value must be strictly greater than <see cref="Min"/>.</summary>
    public bool MinExclusive { get; init; }
    /// <summary>The value must be strictly less than <see cref="Max"/>.</summary>
    public bool MaxExclusive { get; init; }

    // The largest (smallest) value of a numeric type means "no bound": [ConfigRange(1, int.MaxValue)] reads "must be >= 1".
    private bool NoMax => Max is double.MaxValue or int.MaxValue or long.MaxValue;
    private bool NoMin => Min is double.MinValue or int.MinValue or long.MinValue;

    /// <summary>Null when <paramref name="v"/> is in range, else a message like "must be &gt; 0 (got 0)".</summary>
    public string? Check(double v)
    {
        bool lowOk = NoMin || (MinExclusive ? v > Min : v >= Min);
        bool highOk = NoMax || (MaxExclusive ? v < Max : v <= Max);
        bool finite = double.IsFinite(v);
        if (lowOk && highOk && finite) return null;
        string F(double d) => d.ToString("R", CultureInfo.InvariantCulture);
        string rule = NoMax && NoMin ? ""
            : NoMax ? $"{(MinExclusive ? ">" : ">=")} {F(Min)}"
            : NoMin ? $"{(MaxExclusive ? "<" : "<=")} {F(Max)}"
            : $"in {(MinExclusive ? "(" : "[")}{F(Min)}, {F(Max)}{(MaxExclusive ? ")" : "]")}";
        string must = finite ? $"must be {rule}" : rule.Length == 0 ? "must be a finite number" : $"must be a finite number {rule}";
        return $"{must} (got {F(v)})";
    }
}

/// <summary>A config record that checks itself after binding (cross-field rules, required values).</summary>
public interface IValidatable
{
    /// <summary>Problems found, each with the key (relative to this record; "" for the record itself) and a message.</summary>
    IEnumerable<(string Key, string Message)> Validate();
}

/// <summary>One config problem: the dotted key path, what is wrong, and where it was written (null when not written anywhere).</summary>
public sealed record ConfigError(string Path, string Message, SourcePosition? Position)
{
    /// <summary>"key.path: message (file:line)".</summary>
    public override string ToString()
    {
        var where = Position is null ? "" : $" ({Position.Brief})";
        return Path.Length == 0 ? $"{Message}{where}" : $"{Path}: {Message}{where}";
    }
}

/// <summary>An invalid configuration; <see cref="Errors"/> holds every problem found, the message lists them one per line.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(errors.Count == 1 ? "invalid configuration: " + errors[0]
        : $"invalid configuration ({errors.Count} errors):" + string.Concat(errors.Select(e => "\n  " + e)))
{
    /// <summary>Every problem found.</summary>
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

/// <summary>Naming and reflection helpers shared by the binder and the writer.</summary>
internal static class ConfigSchema
{
    /// <summary>A bindable property: public, settable (init included), not an indexer, not ignored.</summary>
    /// <remarks><see cref="Inline"/> is set for a dictionary whose entries sit in the record's own mapping (<see cref="ConfigInlineAttribute"/>).</remarks>
    internal sealed record Prop(PropertyInfo Info, string Key, NullabilityInfo Nullability, ConfigRangeAttribute? Range, bool AllowSingle, ConfigInlineAttribute? Inline);

    private static readonly ConcurrentDictionary<Type, IReadOnlyList<Prop>> Props = new();
    private static readonly NullabilityInfoContext Nullability = new();

    internal static IReadOnlyList<Prop> PropsOf(Type t) => Props.GetOrAdd(t, static t =>
    {
        NullabilityInfo N(PropertyInfo p) { lock (Nullability) return Nullability.Create(p); }
        var props = t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true } && p.GetIndexParameters().Length == 0 && p.GetCustomAttribute<ConfigIgnoreAttribute>() is null)
            .Select(p => new Prop(p, p.GetCustomAttribute<ConfigKeyAttribute>()?.Name ?? SnakeCase(p.Name), N(p),
                p.GetCustomAttribute<ConfigRangeAttribute>(), p.GetCustomAttribute<ConfigAllowSingleAttribute>() is not null, p.GetCustomAttribute<ConfigInlineAttribute>()))
            .ToArray();
        var dup = props.GroupBy(p => p.Key).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new InvalidOperationException($"{t.Name}: properties {string.Join(", ", dup.Select(p => p.Info.Name))} share the config key '{dup.Key}'");
        return props;
    });

    /// <summary>
    /// The keys a record's mapping may hold, in declaration order: each property's key, and in place of an inline
    /// dictionary (<see cref="ConfigInlineAttribute"/>) the keys it accepts.
    /// </summary>
    internal static IReadOnlyList<string> KeysOf(Type t)
    {
        var keys = PropsOf(t).SelectMany(p => p.Inline is { } inline ? inline.Keys : [p.Key]).ToArray();
        var dup = keys.GroupBy(k => k).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOperationException($"{t.Name}: the config key '{dup.Key}' is both a property's and an inline dictionary's, or listed twice");
        return keys;
    }

    /// <summary>PascalCase to snake_case: NumVirtualTokens → num_virtual_tokens, IA3 → ia3, MaxLR → max_lr, Top5Acc → top5_acc.</summary>
    internal static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c) && i > 0)
            {
                char prev = name[i - 1];
                bool nextLower = i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (char.IsLower(prev) || char.IsDigit(prev) || (char.IsUpper(prev) && nextLower)) sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>The YAML spelling of an enum member (snake_case, or its [ConfigKey]).</summary>
    internal static string EnumName(Type enumType, object value)
    {
        var name = Enum.GetName(enumType, value) ?? throw new InvalidOperationException($"{value} is not a named {enumType.Name} value");
        return enumType.GetField(name)!.GetCustomAttribute<ConfigKeyAttribute>()?.Name ?? SnakeCase(name);
    }

    /// <summary>Levenshtein distance (small strings only).</summary>
    internal static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    /// <summary>" (did you mean 'x'?)" for the closest candidate within edit distance 2, else "".</summary>
    internal static string DidYouMean(string given, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (c, d: EditDistance(given.ToLowerInvariant(), c.ToLowerInvariant())))
            .Where(x => x.d <= 2).OrderBy(x => x.d).FirstOrDefault();
        return best.c is null ? "" : $" (did you mean '{best.c}'?)";
    }
}

/// <summary>
/// Enum values as configs and command-line options spell them: snake_case (or the member's <see cref="ConfigKeyAttribute"/>),
/// matched ignoring case, '_' and '-'. The one place that parses and lists enum spellings.
/// </summary>
public static class ConfigEnums
{
    /// <summary>The spellings of every member of <paramref name="enumType"/>, in declaration order.</summary>
    public static IReadOnlyList<string> Names(Type enumType) =>
        Enum.GetValues(enumType).Cast<object>().Select(v => ConfigSchema.EnumName(enumType, v)).ToArray();

    /// <summary>The spelling of one member (snake_case, or its [ConfigKey]), e.g. <c>vera_only</c> for VeraOnly.</summary>
    public static string Name<T>(T value) where T : struct, Enum => ConfigSchema.EnumName(typeof(T), value);

    /// <summary>The member spelled <paramref name="text"/>, or null.</summary>
    public static object? Find(Type enumType, string text)
    {
        static string Norm(string s) => s.Replace("_", "").Replace("-", "").ToLowerInvariant();
        return Enum.GetValues(enumType).Cast<object>()
            .FirstOrDefault(e => Norm(ConfigSchema.EnumName(enumType, e)) == Norm(text) || Norm(e.ToString()!) == Norm(text));
    }

    /// <summary>"expected one of: a, b, got 'x'" (with a did-you-mean when one is close).</summary>
    public static string Unknown(Type enumType, string text) =>
        $"expected one of: {string.Join(", ", Names(enumType))}, got '{text}'{ConfigSchema.DidYouMean(text, Names(enumType))}";

    /// <summary>Parses <paramref name="text"/> as a <typeparamref name="T"/>; the error names <paramref name="what"/> and lists the known spellings.</summary>
    /// <exception cref="ArgumentException">Unknown spelling.</exception>
    public static T Parse<T>(string text, string what) where T : struct, Enum =>
        Find(typeof(T), text) is T v ? v : throw new ArgumentException($"{what}: {Unknown(typeof(T), text)}");
}
