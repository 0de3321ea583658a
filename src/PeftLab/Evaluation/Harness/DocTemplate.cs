using System.Globalization;
using System.Text;
using PeftLab.Data;

namespace PeftLab.Evaluation.Harness;

/// <summary>A template could not be parsed or rendered against a document; the message names the template and the cause.</summary>
public sealed class TemplateException(string message) : Exception(message);

/// <summary>
/// The part of Jinja2 that lm-evaluation-harness task files use in <c>doc_to_text</c>, <c>doc_to_target</c> and
/// <c>doc_to_choice</c>: literal text with <c>{{ expression }}</c> holes. An expression is a document field, attribute
/// index and slice access (<c>choices.text</c>, <c>choices[0]</c>, <c>answer[-1]</c>, <c>words[:-1]</c>, <c>doc['q']</c>), the string methods
/// those tasks call (<c>strip lstrip rstrip lower upper split replace startswith endswith index</c>), filters
/// (<c>| trim lower upper join first last length string int</c>), string and integer literals, list literals and
/// <c>+</c>. Statements (<c>{% … %}</c>) and Python functions (<c>!function</c>) are refused by name.
/// </summary>
/// <remarks>
/// Written here because no maintained .NET package renders Jinja expressions: Fluid and Scriban implement Liquid,
/// whose <c>{{ x | strip }}</c> differs from Jinja's <c>{{ x.strip() }}</c>, which is what harness task files contain.
/// Unlike Jinja's default, an unknown field is an error naming the field and the document's keys, never an empty string.
/// </remarks>
public sealed class DocTemplate
{
    private abstract record Node;
    private sealed record Text(string Value) : Node;
    private sealed record Hole(Expr Expr) : Node;

    private abstract record Expr;
    private sealed record Literal(object? Value) : Expr;
    private sealed record Name(string Id) : Expr;
    private sealed record Attr(Expr Target, string Id) : Expr;
    private sealed record Index(Expr Target, Expr Key) : Expr;
    private sealed record Slice(Expr Target, Expr? Start, Expr? End) : Expr;
    private sealed record Call(Expr Target, string Method, IReadOnlyList<Expr> Args) : Expr;
    private sealed record Filter(Expr Target, string Id, IReadOnlyList<Expr> Args) : Expr;
    private sealed record ListOf(IReadOnlyList<Expr> Items) : Expr;
    private sealed record Concat(Expr Left, Expr Right) : Expr;

    private readonly IReadOnlyList<Node> nodes;

    /// <summary>The template's text, as written.</summary>
    public string Source { get; }

    private DocTemplate(string source, IReadOnlyList<Node> nodes) { Source = source; this.nodes = nodes; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="TemplateException">A statement, an unclosed hole or an expression outside the subset.</exception>
    public static DocTemplate Parse(string source)
    {
        var nodes = new List<Node>();
        int i = 0;
        while (i < source.Length)
        {
            int open = source.IndexOf('{', i);
            while (open >= 0 && open + 1 < source.Length && source[open + 1] is not ('{' or '%' or '#')) open = source.IndexOf('{', open + 1);
            if (open < 0 || open + 1 >= source.Length) { nodes.Add(new Text(source[i..])); break; }
            if (open > i) nodes.Add(new Text(source[i..open]));
            char kind = source[open + 1];
            if (kind != '{')
                throw new TemplateException($"template \"{source}\": Jinja {(kind == '%' ? "statements ({% … %})" : "comments ({# … #})")} are not supported; " +
                                            "PeftLab renders {{ expressions }} only");
            int close = source.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0) throw new TemplateException($"template \"{source}\": '{{{{' at position {open} is never closed by '}}}}'");
            nodes.Add(new Hole(new Parser(source, source[(open + 2)..close]).ParseAll()));
            i = close + 2;
        }
        return new DocTemplate(source, nodes);
    }

    /// <summary>Whether the template is a single <c>{{ expression }}</c> (so its value may be a list or a number, not only text).</summary>
    public bool IsSingleExpression => nodes is [Hole];

    /// <summary>Renders the template against <paramref name="doc"/>, every value as Jinja prints it (lists as Python lists).</summary>
    /// <exception cref="TemplateException">An unknown field, a wrong type, an index out of range; the message names the field and the template.</exception>
    public string Render(IReadOnlyDictionary<string, object?> doc)
    {
        var sb = new StringBuilder();
        foreach (var n in nodes)
            sb.Append(n switch { Text t => t.Value, Hole h => Str(Eval(h.Expr, doc)), _ => throw new InvalidOperationException() });
        return sb.ToString();
    }

    /// <summary>The value of a single-expression template (a list stays a list, a number a number); otherwise the rendered text.</summary>
    public object? Evaluate(IReadOnlyDictionary<string, object?> doc) =>
        nodes is [Hole h] ? Eval(h.Expr, doc) : Render(doc);

    // --- evaluation ------------------------------------------------------------------------------------------------

    private object? Eval(Expr e, IReadOnlyDictionary<string, object?> doc)
    {
        switch (e)
        {
            case Literal l: return l.Value;
            case Name n:
                return doc.TryGetValue(n.Id, out var v) ? v
                    : throw Fail($"the document has no field '{n.Id}' (its fields: {string.Join(", ", doc.Keys)})");
            case Attr a:
                {
                    var target = Eval(a.Target, doc);
                    return target is IReadOnlyDictionary<string, object?> d
                        ? d.TryGetValue(a.Id, out var x) ? x : throw Fail($"'{Describe(a.Target)}' has no field '{a.Id}' (its fields: {string.Join(", ", d.Keys)})")
                        : throw Fail($"'{Describe(a.Target)}' is {TypeName(target)}, which has no field '{a.Id}'");
                }
            case Index ix:
                {
                    var target = Eval(ix.Target, doc);
                    var key = Eval(ix.Key, doc);
                    return (target, key) switch
                    {
                        (IReadOnlyList<object?> list, long k) => list[Position(k, list.Count, ix)],
                        (string s, long k) => s[Position(k, s.Length, ix)].ToString(),
                        (IReadOnlyDictionary<string, object?> d, string k) => d.TryGetValue(k, out var x) ? x
                            : throw Fail($"'{Describe(ix.Target)}' has no field '{k}' (its fields: {string.Join(", ", d.Keys)})"),
                        _ => throw Fail($"cannot index {TypeName(target)} '{Describe(ix.Target)}' with {TypeName(key)}"),
                    };
                }
            case Slice sl:
                {
                    var target = Eval(sl.Target, doc);
                    int count = target switch { IReadOnlyList<object?> l => l.Count, string str => str.Length, _ => throw Fail($"cannot slice {TypeName(target)} '{Describe(sl.Target)}'") };
                    int Bound(Expr? b, int dflt) => b is null ? dflt : Eval(b, doc) is long k
                        ? (int)Math.Clamp(k < 0 ? count + k : k, 0, count) : throw Fail("slice bounds must be integers");
                    int from = Bound(sl.Start, 0), to = Math.Max(from, Bound(sl.End, count));                   // Python: out-of-range bounds clamp
                    return target is string text ? text[from..to] : ((IReadOnlyList<object?>)target!).Skip(from).Take(to - from).ToList();
                }
            case ListOf l: return l.Items.Select(x => Eval(x, doc)).ToList();
            case Concat c:
                {
                    var (left, right) = (Eval(c.Left, doc), Eval(c.Right, doc));
                    return (left, right) switch
                    {
                        (string a, string b) => a + b,
                        (long a, long b) => a + b,
                        (IReadOnlyList<object?> a, IReadOnlyList<object?> b) => a.Concat(b).ToList(),
                        _ => throw Fail($"cannot add {TypeName(left)} and {TypeName(right)} (Jinja's '~' joins any values as text; write '~' or convert with '| string')"),
                    };
                }
            case Call call: return Method(call, Eval(call.Target, doc), call.Args.Select(a => Eval(a, doc)).ToArray());
            case Filter f: return ApplyFilter(f, Eval(f.Target, doc), f.Args.Select(a => Eval(a, doc)).ToArray());
            default: throw new InvalidOperationException(e.GetType().Name);
        }
    }

    private int Position(long k, int count, Index ix)
    {
        long p = k < 0 ? count + k : k;
        return p >= 0 && p < count ? (int)p : throw Fail($"index {k} is out of range for '{Describe(ix.Target)}' (length {count})");
    }

    private object? Method(Call c, object? target, object?[] args)
    {
        string Arg(int i) => args.Length > i && args[i] is string s ? s : throw Fail($"{c.Method}() expects a string argument {i + 1}");
        char[]? Chars() => args.Length == 0 || args[0] is null ? null : Arg(0).ToCharArray();
        switch (target, c.Method)
        {
            case (string s, "strip"): return Chars() is { } c1 ? s.Trim(c1) : PyText.Strip(s);
            case (string s, "lstrip"): return Chars() is { } c2 ? s.TrimStart(c2) : PyText.LStrip(s);
            case (string s, "rstrip"): return Chars() is { } c3 ? s.TrimEnd(c3) : PyText.RStrip(s);
            case (string s, "lower"): return s.ToLowerInvariant();
            case (string s, "upper"): return s.ToUpperInvariant();
            case (string s, "startswith"): return s.StartsWith(Arg(0), StringComparison.Ordinal);
            case (string s, "endswith"): return s.EndsWith(Arg(0), StringComparison.Ordinal);
            case (string s, "replace"): return s.Replace(Arg(0), Arg(1), StringComparison.Ordinal);
            case (string s, "split"):
                return (args.Length == 0 || args[0] is null
                    ? s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)                      // Python: runs of whitespace
                    : s.Split(Arg(0))).Cast<object?>().ToList();
            case (IReadOnlyList<object?> list, "index"):
                {
                    var want = args.Length == 1 ? args[0] : throw Fail("index() expects one argument");
                    for (int i = 0; i < list.Count; i++) if (Equals(list[i], want)) return (long)i;
                    throw Fail($"{Str(want)} is not in '{Describe(c.Target)}' ({Str(list)})");
                }
            case (string s, "index"):
                {
                    int at = s.IndexOf(Arg(0), StringComparison.Ordinal);
                    return at >= 0 ? (long)at : throw Fail($"'{Arg(0)}' is not in '{Describe(c.Target)}'");
                }
            default: throw Fail($"{TypeName(target)} '{Describe(c.Target)}' has no method '{c.Method}' here (supported: strip, lstrip, rstrip, lower, upper, split, replace, startswith, endswith, index)");
        }
    }

    private object? ApplyFilter(Filter f, object? value, object?[] args) => (f.Id, value) switch
    {
        ("trim", string s) => PyText.Strip(s),
        ("lower", string s) => s.ToLowerInvariant(),
        ("upper", string s) => s.ToUpperInvariant(),
        ("string", _) => Str(value),
        ("int", string s) => long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 0L,   // Jinja: 0 when not a number
        ("int", long n) => n,
        ("int", double d) => (long)Math.Truncate(d),
        ("join", IReadOnlyList<object?> list) => string.Join(args.Length > 0 ? Str(args[0]) : "", list.Select(Str)),
        ("first", IReadOnlyList<object?> list) => list.Count > 0 ? list[0] : throw Fail("first of an empty list"),
        ("last", IReadOnlyList<object?> list) => list.Count > 0 ? list[^1] : throw Fail("last of an empty list"),
        ("length", IReadOnlyList<object?> list) => (long)list.Count,
        ("length", string s) => (long)s.Length,
        _ => throw Fail($"filter '{f.Id}' does not apply to {TypeName(value)} here (supported: trim, lower, upper, join, first, last, length, string, int)"),
    };

    private TemplateException Fail(string what) => new($"template \"{Source}\": {what}");

    /// <summary>A value as Jinja prints it: text as is, numbers invariantly, lists and mappings as Python writes them.</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        string s => s,
        bool b => b ? "True" : "False",
        long n => n.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IReadOnlyList<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        IReadOnlyDictionary<string, object?> d => "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        _ => v.ToString() ?? "",
    };

    /// <summary>Python's repr: strings quoted as Python quotes them, everything else as <see cref="Str"/>.</summary>
    public static string Repr(object? v)
    {
        if (v is not string s) return Str(v);
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        foreach (char ch in s)
            sb.Append(ch switch
            {
                '\\' => "\\\\", '\n' => "\\n", '\r' => "\\r", '\t' => "\\t",
                _ when ch == q => "\\" + ch,
                _ => ch.ToString(),
            });
        return sb.Append(q).ToString();
    }

    private static string TypeName(object? v) => v switch
    {
        null => "None", string => "a string", long => "an integer", double => "a number", bool => "a boolean",
        IReadOnlyList<object?> => "a list", IReadOnlyDictionary<string, object?> => "a mapping", _ => v.GetType().Name,
    };

    private static string Describe(Expr e) => e switch
    {
        Name n => n.Id,
        Attr a => $"{Describe(a.Target)}.{a.Id}",
        Index i => $"{Describe(i.Target)}[{(i.Key is Literal { Value: var k } ? Repr(k) : "…")}]",
        Slice sl => $"{Describe(sl.Target)}[…:…]",
        Call c => $"{Describe(c.Target)}.{c.Method}(…)",
        Filter f => $"{Describe(f.Target)} | {f.Id}",
        Literal l => Repr(l.Value),
        _ => "expression",
    };

    // --- parsing ---------------------------------------------------------------------------------------------------

    private sealed class Parser(string template, string text)
    {
        private int pos;

        public Expr ParseAll()
        {
            var e = ParseFiltered();
            Skip();
            if (pos < text.Length) throw Error($"unexpected '{text[pos..]}'");
            return e;
        }

        private TemplateException Error(string what) => new($"template \"{template}\": in {{{{{text}}}}}: {what}");

        private void Skip() { while (pos < text.Length && char.IsWhiteSpace(text[pos])) pos++; }

        private bool Eat(char c)
        {
            Skip();
            if (pos < text.Length && text[pos] == c) { pos++; return true; }
            return false;
        }

        private Expr ParseFiltered()
        {
            var e = ParseConcat();
            while (Eat('|'))
            {
                string id = Ident() ?? throw Error("a filter name must follow '|'");
                e = new Filter(e, id, Eat('(') ? Args(')') : []);
            }
            return e;
        }

        private Expr ParseConcat()
        {
            var e = ParsePostfix();
            while (true)
            {
                if (Eat('+')) e = new Concat(e, ParsePostfix());
                else if (Eat('~')) e = new Concat(new Filter(e, "string", []), new Filter(ParsePostfix(), "string", []));
                else return e;
            }
        }

        private Expr ParsePostfix()
        {
            var e = ParsePrimary();
            while (true)
            {
                if (Eat('.'))
                {
                    string id = Ident() ?? throw Error("a name must follow '.'");
                    e = Eat('(') ? new Call(e, id, Args(')')) : new Attr(e, id);
                }
                else if (Eat('['))
                {
                    Expr? key = Peek(':') ? null : ParseFiltered();
                    if (Eat(':'))
                    {
                        Expr? end = Peek(']') ? null : ParseFiltered();
                        if (Peek(':')) throw Error("slices with a step ([a:b:c]) are not supported");
                        if (!Eat(']')) throw Error("expected ']'");
                        e = new Slice(e, key, end);
                        continue;
                    }
                    if (!Eat(']')) throw Error("expected ']'");
                    e = new Index(e, key!);
                }
                else return e;
            }
        }

        private Expr ParsePrimary()
        {
            Skip();
            if (pos >= text.Length) throw Error("an expression is missing");
            char c = text[pos];
            if (c == '(') { pos++; var e = ParseFiltered(); return Eat(')') ? e : throw Error("expected ')'"); }
            if (c == '[') { pos++; return new ListOf(Args(']')); }
            if (c is '\'' or '"') return new Literal(StringLiteral(c));
            if (char.IsDigit(c) || c == '-' && pos + 1 < text.Length && char.IsDigit(text[pos + 1]))
            {
                int start = pos++;
                while (pos < text.Length && char.IsDigit(text[pos])) pos++;
                return new Literal(long.Parse(text[start..pos], CultureInfo.InvariantCulture));
            }
            string id = Ident() ?? throw Error($"unexpected '{c}'");
            return id switch
            {
                "true" or "True" => new Literal(true),
                "false" or "False" => new Literal(false),
                "none" or "None" => new Literal(null),
                _ when Peek('(') => throw Error($"function calls ({id}(…)) are not supported; only methods of values and filters"),
                _ => new Name(id),
            };
        }

        private bool Peek(char c) { Skip(); return pos < text.Length && text[pos] == c; }

        private List<Expr> Args(char close)
        {
            var args = new List<Expr>();
            if (Eat(close)) return args;
            do args.Add(ParseFiltered()); while (Eat(','));
            return Eat(close) ? args : throw Error($"expected '{close}'");
        }

        private string? Ident()
        {
            Skip();
            int start = pos;
            while (pos < text.Length && (char.IsLetterOrDigit(text[pos]) || text[pos] == '_') && (pos > start || !char.IsDigit(text[pos]))) pos++;
            return pos > start ? text[start..pos] : null;
        }

        private string StringLiteral(char quote)
        {
            var sb = new StringBuilder();
            pos++;
            while (pos < text.Length && text[pos] != quote)
            {
                if (text[pos] == '\\' && pos + 1 < text.Length)
                {
                    pos++;
                    sb.Append(text[pos] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', var other => other });
                }
                else sb.Append(text[pos]);
                pos++;
            }
            if (pos >= text.Length) throw Error("a string literal is not closed");
            pos++;
            return sb.ToString();
        }
    }
}
