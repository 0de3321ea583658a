using System.Collections;
using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Reflection;
using static PeftLab.Configuration.ConfigSchema;

namespace PeftLab.Configuration;

/// <summary>
/// Binds a <see cref="ConfigNode"/> tree onto immutable config records (public <c>{ get; init; }</c> properties,
/// parameterless constructor). Keys are the snake_case property names (or <see cref="ConfigKeyAttribute"/>);
/// keys not given keep the record's initialiser defaults. Every problem (unknown key, wrong type, bad enum,
/// <see cref="ConfigRangeAttribute"/>, <see cref="IValidatable"/>) is collected and thrown together as one
/// <see cref="ConfigException"/> naming each key path and where it was written.
/// </summary>
/// <remarks>
/// Supported property types: string, bool, int, long, double, float, enums (written snake_case or kebab-case,
/// any case), their nullable forms, arrays / <c>IReadOnlyList&lt;T&gt;</c> / <c>IReadOnlyCollection&lt;T&gt;</c> /
/// <c>IEnumerable&lt;T&gt;</c> / <c>IList&lt;T&gt;</c> / <c>List&lt;T&gt;</c>, string-keyed <c>IReadOnlyDictionary</c> /
/// <c>IDictionary</c> / <c>Dictionary</c>, nested records, types registered with <see cref="RegisterConverter{T}"/>,
/// and abstract bases registered with <see cref="RegisterPolymorphic{TBase}"/>. A null value is accepted only
/// where the property is nullable. Registrations are process-wide; register at start-up.
/// </remarks>
public static class ConfigBinder
{
    /// <summary>A discriminated family of records: the key naming the variant and the variant types by name.</summary>
    internal sealed record Union(string Key, IReadOnlyDictionary<string, Type> Types)
    {
        public Type? Find(string name) => Types.FirstOrDefault(kv => Norm(kv.Key) == Norm(name)).Value;
        public string NameOf(Type t) => Types.First(kv => kv.Value == t).Key;
        private static string Norm(string s) => s.Replace('-', '_').ToLowerInvariant();
    }

    internal static readonly ConcurrentDictionary<Type, Union> Unions = new();
    internal static readonly ConcurrentDictionary<Type, Func<object, ConfigNode>> Writers = new();
    private static readonly ConcurrentDictionary<Type, Func<ConfigNode, (object? Value, string? Error)>> Readers = new();
    private static readonly object Failed = new();

    /// <summary>
    /// Registers a custom reader (and optionally writer) for <typeparamref name="T"/>, e.g. a target selector given
    /// as either a string or a list. The reader sees non-null nodes only; it returns (value, null) on success,
    /// (null, message) on error, or (null, null) to decline, in which case the node is bound by the default rules
    /// (a mapping onto the record's properties). Without a writer, <see cref="ConfigWriter"/> writes the record form.
    /// </summary>
    public static void RegisterConverter<T>(Func<ConfigNode, (T? value, string? error)> read, Func<T, ConfigNode>? write = null) where T : class
    {
        Readers[typeof(T)] = n => read(n);
        if (write is null) Writers.TryRemove(typeof(T), out _);
        else Writers[typeof(T)] = o => write((T)o);
    }

    /// <summary>
    /// Lets properties typed <see cref="ConfigNode"/> (or a mapping, list or scalar node) take the YAML as written, with
    /// its positions, for sections whose shape their owner interprets (study axes, harness task fields).
    /// </summary>
    public static void RegisterRawNodes()
    {
        RegisterConverter<ConfigNode>(n => (n, null), n => n);
        RegisterConverter<ConfigMapping>(n => n is ConfigMapping m ? (m, null) : (null, $"expected a mapping, got {n.Describe()}"), n => n);
        RegisterConverter<ConfigSequence>(n => n is ConfigSequence s ? (s, null) : (null, $"expected a list, got {n.Describe()}"), n => n);
        RegisterConverter<ConfigScalar>(n => n is ConfigScalar s ? (s, null) : (null, $"expected a scalar, got {n.Describe()}"), n => n);
    }

    /// <summary>
    /// Registers the variants of <typeparamref name="TBase"/> so that properties declared as TBase bind from a mapping
    /// whose <paramref name="discriminatorKey"/> names the variant (<c>method: {name: lora, r: 8}</c>), and the writer
    /// emits that key. Names match case-insensitively with '-' and '_' alike. When the key is absent the variant
    /// of the property's current (default) value is kept.
    /// </summary>
    public static void RegisterPolymorphic<TBase>(string discriminatorKey, IReadOnlyDictionary<string, Type> types) where TBase : class
        => Unions[typeof(TBase)] = MakeUnion(typeof(TBase), discriminatorKey, types);

    /// <summary>Binds <paramref name="node"/> onto a new <typeparamref name="T"/> (its defaults for keys not given).</summary>
    /// <exception cref="ConfigException">Every problem found, with key paths and positions.</exception>
    public static T Bind<T>(ConfigNode node) where T : class => (T)Bind(typeof(T), node);

    /// <summary>Non-generic <see cref="Bind{T}"/>.</summary>
    public static object Bind(Type type, ConfigNode node) => Run(c => BindValue(c, type, null, node, "", null, false));

    /// <summary>Binds a section whose record type is chosen by <paramref name="discriminatorKey"/> among <paramref name="types"/>.</summary>
    /// <exception cref="ConfigException">Unknown or missing discriminator (the error lists the known names) and every other problem.</exception>
    public static TBase BindPolymorphic<TBase>(ConfigNode node, string discriminatorKey, IReadOnlyDictionary<string, Type> types) where TBase : class
    {
        var union = MakeUnion(typeof(TBase), discriminatorKey, types);
        return (TBase)Run(c => BindUnion(c, union, node, "", null));
    }

    /// <summary>
    /// The problems of a record built in code or read from another format (e.g. a method config from adapter_config.json):
    /// the same <see cref="ConfigRangeAttribute"/> and <see cref="IValidatable"/> checks as binding, by key path under
    /// <paramref name="path"/>. Empty when the record is valid.
    /// </summary>
    public static IReadOnlyList<ConfigError> Problems(object record, string path = "")
    {
        var c = new Ctx();
        CheckTree(c, record, path);
        return c.Errors;
    }

    /// <summary>Defaults, then the YAML file (if any), then <c>key=value</c> overrides, bound onto <typeparamref name="T"/>.</summary>
    public static T Load<T>(string? yamlPath, IEnumerable<string>? overrides = null) where T : class
    {
        var root = yamlPath is null ? ConfigNode.Parse("", "defaults") : ConfigNode.Load(yamlPath);
        return Bind<T>(ConfigOverrides.Apply(root, overrides ?? []));
    }

    private static Union MakeUnion(Type baseType, string key, IReadOnlyDictionary<string, Type> types)
    {
        foreach (var (name, t) in types)
            if (!baseType.IsAssignableFrom(t) || t.IsAbstract || t.GetConstructor(Type.EmptyTypes) is null)
                throw new ArgumentException($"variant '{name}' ({t.Name}) must be a concrete {baseType.Name} with a parameterless constructor", nameof(types));
        return new Union(key, types);
    }

    /// <summary>Per-bind state: every error so far and the paths whose value could not be bound.</summary>
    private sealed class Ctx
    {
        public readonly List<ConfigError> Errors = [];
        private readonly List<string> failedPaths = [];

        public object Error(string path, string message, SourcePosition? at, bool bindFailure = true)
        {
            Errors.Add(new ConfigError(path, message, at));
            if (bindFailure) failedPaths.Add(path);
            return Failed;
        }

        /// <summary>Did binding fail at or under <paramref name="path"/> (so its value is a default the user did not write)?</summary>
        public bool FailedAt(string path) => failedPaths.Any(f => path.Length == 0 || f == path || f.StartsWith(path + ".", StringComparison.Ordinal));
    }

    private static object Run(Func<Ctx, object?> bind)
    {
        var c = new Ctx();
        var v = bind(c);
        // In file order (line, column), then what came from the command line or from no file at all.
        if (c.Errors.Count > 0)
            throw new ConfigException(c.Errors.OrderBy(e => e.Position is { Line: > 0 } ? 0 : e.Position is null ? 2 : 1)
                .ThenBy(e => e.Position?.Line).ThenBy(e => e.Position?.Column).ToArray());
        return v ?? throw new ConfigException([new ConfigError("", "the configuration is null", null)]);
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static object? BindValue(Ctx c, Type t, NullabilityInfo? n, ConfigNode node, string path, object? current, bool allowSingle)
    {
        var u = Nullable.GetUnderlyingType(t) ?? t;
        if (node is ConfigScalar { IsNull: true })
        {
            bool nullable = u != t || (!t.IsValueType && (n?.WriteState == NullabilityState.Nullable || n?.ReadState == NullabilityState.Nullable));
            return nullable ? null : c.Error(path, $"expected {Expected(u)}, got null" + (u == typeof(string) ? " (write \"\" for an empty string)" : ""), node.Position);
        }
        if (Readers.TryGetValue(u, out var read))
        {
            var (value, error) = read(node);
            if (error is not null) return c.Error(path, error, node.Position);
            if (value is not null)
            {
                CheckTree(c, value, path);
                return value;
            }
        }
        if (u == typeof(string) || u == typeof(bool) || u == typeof(int) || u == typeof(long) || u == typeof(double) || u == typeof(float) || u.IsEnum)
            return node is ConfigScalar s ? ParseScalar(c, u, s.Value!, path, node) : c.Error(path, $"expected {Expected(u)}, got {node.Describe()}", node.Position);
        if (ElementType(u) is Type elem)
            return BindList(c, u, elem, u.IsArray ? n?.ElementType : n?.GenericTypeArguments.FirstOrDefault(), node, path, allowSingle);
        if (DictValueType(u) is Type val)
            return BindDict(c, u, val, n?.GenericTypeArguments.ElementAtOrDefault(1), node, path);
        if (Unions.TryGetValue(u, out var union))
            return BindUnion(c, union, node, path, current);
        if (u.IsClass && !u.IsAbstract && u != typeof(object) && u.GetConstructor(Type.EmptyTypes) is not null)
            return BindRecord(c, u, node, path, current, null);
        throw new InvalidOperationException($"config type {u.Name} (at '{path}') is not supported: register a converter or a polymorphic family for it");
    }

    private static string Expected(Type u) =>
        u == typeof(string) ? "a string"
        : u == typeof(bool) ? "true or false"
        : u == typeof(int) || u == typeof(long) ? "an integer"
        : u == typeof(double) || u == typeof(float) ? "a number"
        : u.IsEnum ? "one of: " + string.Join(", ", EnumNames(u))
        : ElementType(u) is not null ? "a list"
        : "a mapping";

    private static IEnumerable<string> EnumNames(Type e) => ConfigEnums.Names(e);

    private static object ParseScalar(Ctx c, Type u, string v, string path, ConfigNode node)
    {
        var inv = CultureInfo.InvariantCulture;
        object? result = null;
        if (u == typeof(string)) result = v;
        else if (u == typeof(bool)) result = v.Equals("true", StringComparison.OrdinalIgnoreCase) ? true : v.Equals("false", StringComparison.OrdinalIgnoreCase) ? false : null;
        else if (u == typeof(int)) result = int.TryParse(v, NumberStyles.AllowLeadingSign, inv, out var i) ? i : null;
        else if (u == typeof(long)) result = long.TryParse(v, NumberStyles.AllowLeadingSign, inv, out var l) ? l : null;
        else if (u == typeof(double) || u == typeof(float))
        {
            double? d = v.ToLowerInvariant() switch
            {
                ".inf" or "+.inf" => double.PositiveInfinity,
                "-.inf" => double.NegativeInfinity,
                ".nan" => double.NaN,
                _ => double.TryParse(v, NumberStyles.Float, inv, out var x) ? x : null,
            };
            result = d is null ? null : u == typeof(float) ? (object)(float)d.Value : d.Value;
        }
        else
        {
            result = ConfigEnums.Find(u, v);
            if (result is null)
                return c.Error(path, ConfigEnums.Unknown(u, v), node.Position);
        }
        if (result is not null) return result;
        bool integral = v.Length > 0 && v.TrimStart('-', '+').All(char.IsAsciiDigit);
        return c.Error(path, integral && (u == typeof(int) || u == typeof(long)) ? $"integer out of range, got '{v}'" : $"expected {Expected(u)}, got '{v}'", node.Position);
    }

    private static Type? ElementType(Type u)
    {
        if (u.IsArray) return u.GetElementType();
        if (!u.IsGenericType) return null;
        var d = u.GetGenericTypeDefinition();
        return d == typeof(IReadOnlyList<>) || d == typeof(IReadOnlyCollection<>) || d == typeof(IEnumerable<>) || d == typeof(IList<>)
            || d == typeof(ICollection<>) || d == typeof(List<>) ? u.GenericTypeArguments[0] : null;
    }

    private static Type? DictValueType(Type u)
    {
        if (!u.IsGenericType || u.GenericTypeArguments[0] != typeof(string)) return null;
        var d = u.GetGenericTypeDefinition();
        return d == typeof(IReadOnlyDictionary<,>) || d == typeof(IDictionary<,>) || d == typeof(Dictionary<,>) ? u.GenericTypeArguments[1] : null;
    }

    private static object BindList(Ctx c, Type u, Type elem, NullabilityInfo? en, ConfigNode node, string path, bool allowSingle)
    {
        IReadOnlyList<ConfigNode> items = node switch
        {
            ConfigSequence s => s.Items,
            _ when allowSingle => [node],
            _ => [],
        };
        if (node is not ConfigSequence && !allowSingle)
            return c.Error(path, $"expected a list, got {node.Describe()}", node.Position);
        var arr = Array.CreateInstance(elem, items.Count);
        bool ok = true;
        for (int i = 0; i < items.Count; i++)
        {
            var v = BindValue(c, elem, en, items[i], node is ConfigSequence ? $"{path}.{i}" : path, null, false);
            if (v == Failed) ok = false;
            else arr.SetValue(v, i);
        }
        if (!ok) return Failed;
        if (u.IsArray) return arr;
        var wrapper = u.GetGenericTypeDefinition() == typeof(List<>) ? u : typeof(ReadOnlyCollection<>).MakeGenericType(elem);
        return Activator.CreateInstance(wrapper, arr)!;
    }

    private static object BindDict(Ctx c, Type u, Type val, NullabilityInfo? vn, ConfigNode node, string path)
    {
        if (node is not ConfigMapping m) return c.Error(path, $"expected a mapping, got {node.Describe()}", node.Position);
        var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), val))!;
        bool ok = true;
        foreach (var e in m.Entries)
        {
            var v = BindValue(c, val, vn, e.Value, Join(path, e.Key), null, false);
            if (v == Failed) ok = false;
            else dict[e.Key] = v;
        }
        if (!ok) return Failed;
        return u.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? dict
            : Activator.CreateInstance(typeof(ReadOnlyDictionary<,>).MakeGenericType(typeof(string), val), dict)!;
    }

    private static object BindUnion(Ctx c, Union union, ConfigNode node, string path, object? current)
    {
        var names = string.Join(", ", union.Types.Keys);
        if (node is not ConfigMapping m)
            return c.Error(path, $"expected a mapping with '{union.Key}' (one of: {names}), got {node.Describe()}", node.Position);
        Type type;
        if (m.Find(union.Key) is { } d)
        {
            var given = (d.Value as ConfigScalar)?.Value;
            if (given is null || union.Find(given) is not Type found)
                return c.Error(Join(path, union.Key), $"unknown {union.Key} {d.Value.Describe()}; known: {names}{(given is null ? "" : DidYouMean(given, union.Types.Keys))}", d.Value.Position);
            type = found;
        }
        else if (current is not null && union.Types.Values.Contains(current.GetType()))
            type = current.GetType();
        else
            return c.Error(path, $"missing '{union.Key}' (one of: {names})", node.Position);
        return BindRecord(c, type, m, path, current, union.Key);
    }

    private static object BindRecord(Ctx c, Type t, ConfigNode node, string path, object? current, string? discriminatorKey)
    {
        if (node is not ConfigMapping m) return c.Error(path, $"expected a mapping, got {node.Describe()}", node.Position);
        var inst = current is not null && current.GetType() == t ? Clone(current) : Activator.CreateInstance(t)!;
        var props = PropsOf(t);
        var given = new HashSet<string>();
        foreach (var e in m.Entries)
        {
            var p = props.FirstOrDefault(p => p.Inline is null && p.Key == e.Key) ?? props.FirstOrDefault(p => p.Inline?.Keys.Contains(e.Key) == true);
            if (p is null)
            {
                if (e.Key == discriminatorKey) continue;
                var known = (discriminatorKey is null ? [] : new[] { discriminatorKey }).Concat(KeysOf(t)).Distinct().ToArray();
                c.Error(Join(path, e.Key), $"unknown key{DidYouMean(e.Key, known)}; known keys: {string.Join(", ", known)}", e.KeyPosition);
                continue;
            }
            given.Add(p.Key);
            if (p.Inline is not null)
            {
                BindInlineEntry(c, p, inst, e, path);
                continue;
            }
            var v = BindValue(c, p.Info.PropertyType, p.Nullability, e.Value, Join(path, e.Key), p.Info.GetValue(inst), p.AllowSingle);
            if (v != Failed) p.Info.SetValue(inst, v);
        }
        Check(c, inst, path, m, given);
        return inst;
    }

    /// <summary>Binds one entry of an inline dictionary (<see cref="ConfigInlineAttribute"/>) and adds it to the property's dictionary.</summary>
    private static void BindInlineEntry(Ctx c, Prop p, object inst, ConfigEntry e, string path)
    {
        var u = p.Info.PropertyType;
        var val = DictValueType(u) ?? throw new InvalidOperationException($"[ConfigInline] {p.Info.DeclaringType?.Name}.{p.Info.Name} must be a string-keyed dictionary");
        var v = BindValue(c, val, p.Nullability.GenericTypeArguments.ElementAtOrDefault(1), e.Value, Join(path, e.Key), null, p.AllowSingle);
        if (v == Failed) return;
        var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), val))!;
        if (p.Info.GetValue(inst) is IDictionary current)
            foreach (DictionaryEntry entry in current) dict[entry.Key] = entry.Value;
        dict[e.Key] = v;
        p.Info.SetValue(inst, u.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? dict
            : Activator.CreateInstance(typeof(ReadOnlyDictionary<,>).MakeGenericType(typeof(string), val), dict)!);
    }

    private static object Clone(object o)
    {
        if (o.GetType().GetMethod("<Clone>$", Type.EmptyTypes)?.Invoke(o, null) is { } copy) return copy;
        var fresh = Activator.CreateInstance(o.GetType())!;
        foreach (var p in PropsOf(o.GetType())) p.Info.SetValue(fresh, p.Info.GetValue(o));
        return fresh;
    }

    /// <summary>Range attributes and <see cref="IValidatable"/> for a bound record; descends into values not given (defaults).</summary>
    private static void Check(Ctx c, object inst, string path, ConfigMapping? m, IReadOnlySet<string> given)
    {
        SourcePosition? At(string key) => m?.Find(key.Split('.')[0])?.Value.Position;
        foreach (var p in PropsOf(inst.GetType()))
        {
            var sub = Join(path, p.Key);
            if (c.FailedAt(sub)) continue;
            var v = p.Info.GetValue(inst);
            if (p.Range is not null && v is int or long or double or float && p.Range.Check(Convert.ToDouble(v, CultureInfo.InvariantCulture)) is string msg)
                c.Error(sub, msg, At(p.Key), bindFailure: false);
            if (!given.Contains(p.Key)) CheckTree(c, v, p.Inline is null ? sub : path);   // an inline dictionary's entries sit at path.key
        }
        if (inst is IValidatable validatable)
            foreach (var (key, message) in validatable.Validate())
                if (!c.FailedAt(Join(path, key)))
                    c.Error(Join(path, key), message, key.Length == 0 ? m?.Position : At(key), bindFailure: false);
    }

    private static void CheckTree(Ctx c, object? v, string path)
    {
        switch (v)
        {
            case null or string or ValueType:
                return;
            case IDictionary d:
                foreach (DictionaryEntry e in d) CheckTree(c, e.Value, Join(path, e.Key.ToString()!));
                return;
            case IEnumerable list:
                int i = 0;
                foreach (var item in list) CheckTree(c, item, Join(path, (i++).ToString(CultureInfo.InvariantCulture)));
                return;
            default:
                Check(c, v, path, null, new HashSet<string>());
                return;
        }
    }
}
