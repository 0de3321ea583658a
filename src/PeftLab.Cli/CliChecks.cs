using System.Reflection;
using System.Text.RegularExpressions;
using PeftLab.Configuration;
using Spectre.Console.Cli;

namespace PeftLab.Cli;

/// <summary>The values an enum-like string option accepts: an enum's config spellings, or a fixed list.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ChoicesAttribute : Attribute
{
    /// <summary>The spellings of <paramref name="enumType"/>'s members, as configs write them (<see cref="ConfigEnums"/>).</summary>
    public ChoicesAttribute(Type enumType) => EnumType = enumType;

    /// <summary>A fixed list of values (matched exactly).</summary>
    public ChoicesAttribute(params string[] values) => Values = values;

    /// <summary>The enum whose spellings are accepted, or null.</summary>
    public Type? EnumType { get; }

    /// <summary>The fixed values, or null.</summary>
    public IReadOnlyList<string>? Values { get; }

    /// <summary>The accepted spellings.</summary>
    public IReadOnlyList<string> Known => EnumType is not null ? ConfigEnums.Names(EnumType) : Values!;

    /// <summary>Whether <paramref name="value"/> is accepted.</summary>
    public bool Accepts(string value) => EnumType is not null ? ConfigEnums.Find(EnumType, value) is not null : Values!.Contains(value);
}

/// <summary>A command line that cannot run as given (exit code 2, like Spectre's own parse errors).</summary>
public sealed class CliUsageException(string message) : Exception(message);

/// <summary>
/// Checks every option of every command before it runs: numeric options against their declared
/// <see cref="ConfigRangeAttribute"/> (finite, bounds), enum-like options against their <see cref="ChoicesAttribute"/>.
/// Errors name the option and the value.
/// </summary>
public sealed class OptionChecks : ICommandInterceptor
{
    private static readonly Type[] Numeric = [typeof(int), typeof(long), typeof(ulong), typeof(double), typeof(float)];

    /// <inheritdoc/>
    public void Intercept(CommandContext context, CommandSettings settings)
    {
        var problems = Problems(settings).ToArray();
        if (problems.Length > 0) throw new CliUsageException(string.Join("\n  ", problems));
    }

    /// <summary>Whether a property type is a numeric option type (nullable included).</summary>
    public static bool IsNumeric(Type t) => Numeric.Contains(Nullable.GetUnderlyingType(t) ?? t);

    /// <summary>"--name" of an option property.</summary>
    public static string OptionName(PropertyInfo p) =>
        p.GetCustomAttribute<CommandOptionAttribute>() is { } o ? "--" + (o.LongNames.FirstOrDefault() ?? o.ShortNames.First()) : p.Name;

    private static IEnumerable<string> Problems(CommandSettings settings)
    {
        foreach (var p in settings.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetCustomAttribute<CommandOptionAttribute>() is null) continue;
            var v = p.GetValue(settings);
            if (v is null) continue;
            if (p.GetCustomAttribute<ConfigRangeAttribute>() is { } range && IsNumeric(p.PropertyType)
                && range.Check(Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture)) is string message)
                yield return $"{OptionName(p)}: {message}";
            if (p.GetCustomAttribute<ChoicesAttribute>() is { } choices && v is string s && !choices.Accepts(s))
                yield return $"{OptionName(p)}: unknown {OptionName(p)[2..]} '{s}'; known: {string.Join(", ", choices.Known)}";
        }
    }
}

/// <summary>The one place the CLI turns an exception into its report and exit code.</summary>
public static partial class CliErrors
{
    /// <summary>Exit code of a command line that cannot run as given.</summary>
    public const int Usage = 2;
    /// <summary>Exit code of an expected failure (bad input file, missing folder, invalid model, ...).</summary>
    public const int Failure = 1;
    /// <summary>Exit code of an unexpected failure (a bug, or a native error PeftLab did not anticipate).</summary>
    public const int Internal = 70;

    /// <summary>
    /// Writes one <c>error: ...</c> line (continuation lines of a multi-problem message are indented) and returns the
    /// exit code. The stack trace is written only with <paramref name="verbose"/>; unexpected errors say so.
    /// </summary>
    public static int Report(Exception e, IReadOnlyList<string> args, bool verbose, TextWriter err)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        int code;
        string message;
        switch (e)
        {
            case CommandParseException or CommandRuntimeException or ConfigException or CliUsageException:
                code = Usage;
                message = ConversionFailure(e.Message, args) ?? e.Message;
                break;
            case var _ when IsUserError(e):
                code = Failure;
                message = e.Message;
                break;
            default:
                code = Internal;
                var first = e.Message.Split('\n')[0].Trim();
                message = $"internal error ({e.GetType().Name}): {first}" + (verbose ? "" : " (run with --verbose for the stack trace)");
                break;
        }
        err.WriteLine($"error: {message.TrimEnd()}");
        if (verbose) err.WriteLine(e.ToString());
        return code;
    }

    /// <summary>Failures that a user causes and can fix; everything else is reported as an internal error.</summary>
    private static bool IsUserError(Exception e) => e is ArgumentException or InvalidDataException or IOException
        or UnauthorizedAccessException or FormatException or NotSupportedException or InvalidOperationException or KeyNotFoundException
        || e.GetType().Namespace?.StartsWith("PeftLab", StringComparison.Ordinal) == true;

    [GeneratedRegex(@"^Failed to convert '(?<value>.*)' to (?<type>\S+?)\.?$")]
    private static partial Regex ConversionMessage();

    /// <summary>Spectre's "Failed to convert 'x' to Int32." rephrased to name the option (found on the command line).</summary>
    private static string? ConversionFailure(string message, IReadOnlyList<string> args)
    {
        var m = ConversionMessage().Match(message);
        if (!m.Success) return null;
        var value = m.Groups["value"].Value;
        for (int i = 1; i < args.Count; i++)
            if (args[i] == value && args[i - 1].StartsWith('-'))
                return $"{args[i - 1]}: '{value}' is not a valid value (expected a number)";
            else if (args[i].StartsWith('-') && args[i].EndsWith("=" + value, StringComparison.Ordinal))
                return $"{args[i][..args[i].IndexOf('=')]}: '{value}' is not a valid value (expected a number)";
        return null;
    }
}
