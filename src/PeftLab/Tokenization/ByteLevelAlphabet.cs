namespace PeftLab.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-character table used by byte-level BPE (the Hugging Face "ByteLevel" pre-tokenizer and
/// decoder): printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards, so every byte sequence
/// becomes a string of visible characters (space becomes 'Ġ', newline 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character standing for each byte value.</summary>
    public static readonly char[] ByteToChar = Build();

    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>The byte a character stands for, if it is one of the 256 table characters.</summary>
    public static bool TryGetByte(char c, out byte value) => CharToByte.TryGetValue(c, out value);

    /// <summary>Maps UTF-8 bytes to their byte-level string.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static char[] Build()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
            map[b] = Printable(b) ? (char)b : (char)(256 + next++);
        return map;
    }
}
