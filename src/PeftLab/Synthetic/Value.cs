using System.Globalization;

namespace PeftLab.Synthetic;

/// <summary>The shape of a value flowing through a primitive pipeline.</summary>
internal enum Kind
{
    /// <summary>One lowercase (or capitalised) word without spaces.</summary>
    Word,
    /// <summary>Free text produced by a formatting step; not split further.</summary>
    Text,
    /// <summary>One integer.</summary>
    Number,
    /// <summary>Integers separated by single spaces.</summary>
    Numbers,
    /// <summary>Words separated by single spaces.</summary>
    Words,
    /// <summary>Words, capitalised names and numbers mixed, separated by spaces.</summary>
    Mixed,
    /// <summary>"key: value" fields separated by "; ".</summary>
    Record,
    /// <summary>A class label from a fixed set stated in the definition.</summary>
    Label,
}

/// <summary>An immutable value of one <see cref="Kind"/>; rendering is the only way values become text.</summary>
internal sealed class Val
{
    private Val(Kind kind, string? str, long num, IReadOnlyList<long>? nums, IReadOnlyList<string>? items)
    {
        Kind = kind;
        Str = str;
        Num = num;
        Nums = nums;
        Items = items;
    }

    public Kind Kind { get; }
    private string? Str { get; }
    private long Num { get; }
    private IReadOnlyList<long>? Nums { get; }
    private IReadOnlyList<string>? Items { get; }

    public static Val Word(string s) => new(Kind.Word, s, 0, null, null);
    public static Val Text(string s) => new(Kind.Text, s, 0, null, null);
    public static Val Label(string s) => new(Kind.Label, s, 0, null, null);
    public static Val Number(long n) => new(Kind.Number, null, n, null, null);
    public static Val Numbers(IEnumerable<long> ns) => new(Kind.Numbers, null, 0, ns.ToArray(), null);
    public static Val Words(IEnumerable<string> ws) => new(Kind.Words, null, 0, null, ws.ToArray());
    public static Val Mixed(IEnumerable<string> tokens) => new(Kind.Mixed, null, 0, null, tokens.ToArray());

    /// <summary>A record; <paramref name="fields"/> alternates key, value, key, value...</summary>
    public static Val Record(params string[] fields)
    {
        if (fields.Length % 2 != 0) throw new ArgumentException("record fields must come in key/value pairs", nameof(fields));
        return new(Kind.Record, null, 0, null, fields);
    }

    public string S => Str ?? throw Wrong("a string");
    public long N => Kind == Kind.Number ? Num : throw Wrong("a number");
    public IReadOnlyList<long> Ns => Nums ?? throw Wrong("a number list");
    public IReadOnlyList<string> Ws => Items ?? throw Wrong("a word list");

    /// <summary>True for lists (numbers or words) whose items are ordered.</summary>
    public bool IsList => Kind is Kind.Numbers or Kind.Words;

    /// <summary>Items of a list as strings, whatever the item type.</summary>
    public IReadOnlyList<string> ItemStrings => Kind switch
    {
        Kind.Numbers => Ns.Select(Fmt).ToArray(),
        Kind.Words or Kind.Mixed => Ws,
        _ => throw Wrong("a list"),
    };

    public int Count => Kind switch
    {
        Kind.Numbers => Ns.Count,
        Kind.Words or Kind.Mixed => Ws.Count,
        _ => throw Wrong("a list"),
    };

    /// <summary>The value of a record field, or null when absent.</summary>
    public string? Field(string key)
    {
        if (Kind != Kind.Record) throw Wrong("a record");
        for (var i = 0; i < Ws.Count; i += 2)
            if (Ws[i] == key) return Ws[i + 1];
        return null;
    }

    /// <summary>True when rendering would give an empty string or an empty list.</summary>
    public bool IsEmpty => Kind switch
    {
        Kind.Number => false,
        Kind.Numbers => Ns.Count == 0,
        Kind.Words or Kind.Mixed or Kind.Record => Ws.Count == 0,
        _ => string.IsNullOrEmpty(Str),
    };

    public string Render() => Kind switch
    {
        Kind.Number => Fmt(Num),
        Kind.Numbers => string.Join(' ', Ns.Select(Fmt)),
        Kind.Words or Kind.Mixed => string.Join(' ', Ws),
        Kind.Record => string.Join("; ", Enumerable.Range(0, Ws.Count / 2).Select(i => Ws[2 * i] + ": " + Ws[2 * i + 1])),
        _ => S,
    };

    public override string ToString() => Render();

    public static string Fmt(long n) => n.ToString(CultureInfo.InvariantCulture);

    private InvalidOperationException Wrong(string wanted) =>
        new($"internal error: expected {wanted} but the value is of kind {Kind}");
}
