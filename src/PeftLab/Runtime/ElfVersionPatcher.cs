using System.Buffers.Binary;
using System.Text;

namespace PeftLab.Runtime;

/// <summary>
/// Marks selected symbol-version requirements of an ELF64 little-endian shared library as weak
/// (VER_FLG_WEAK on the matching <c>Vernaux</c> entry of <c>.gnu.version_r</c>). The dynamic
/// loader then accepts a libstdc++ that lacks that version, as long as no symbol bound to it is
/// called. Used for TorchSharp's <c>libLibTorchSharp.so</c>, whose only GLIBCXX_3.4.32 symbol
/// (<c>std::ios_base_library_init</c>) is never called.
/// </summary>
public static class ElfVersionPatcher
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>Returns the version names required by the library (all Vernaux entries), with their flags.</summary>
    public static IReadOnlyList<(string File, string Version, ushort Flags)> ReadVersionNeeds(byte[] elf)
    {
        var result = new List<(string, string, ushort)>();
        Walk(elf, (file, version, flagsOffset) =>
            result.Add((file, version, BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(flagsOffset)))));
        return result;
    }

    /// <summary>Sets VER_FLG_WEAK on every Vernaux entry whose name is in <paramref name="versions"/>; returns how many were changed.</summary>
    public static int MarkWeak(byte[] elf, IReadOnlySet<string> versions)
    {
        int changed = 0;
        Walk(elf, (_, version, flagsOffset) =>
        {
            if (!versions.Contains(version)) return;
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(flagsOffset));
            if ((flags & VerFlgWeak) != 0) return;
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(flagsOffset), (ushort)(flags | VerFlgWeak));
            changed++;
        });
        return changed;
    }

    private static void Walk(byte[] elf, Action<string, string, int> visit)
    {
        var span = elf.AsSpan();
        if (span.Length < 64 || span[0] != 0x7f || span[1] != (byte)'E' || span[2] != (byte)'L' || span[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (span[4] != 2 || span[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF files are supported");

        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        ushort shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        if (shoff == 0 || shentsize < 64 || shoff + (ulong)shentsize * shnum > (ulong)span.Length)
            throw new InvalidDataException("ELF section header table out of bounds");

        ReadOnlySpan<byte> Section(int index) => elf.AsSpan(checked((int)shoff + index * shentsize), 64);

        for (int i = 0; i < shnum; i++)
        {
            var sh = Section(i);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            int offset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]));
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[40..]);
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[44..]);
            var strtab = Section(link);
            int strOffset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(strtab[24..]));

            string Str(uint at)
            {
                int start = strOffset + (int)at, end = start;
                while (end < elf.Length && elf[end] != 0) end++;
                return Encoding.ASCII.GetString(elf, start, end - start);
            }

            int vn = offset;
            for (int n = 0; n < count; n++)
            {
                ushort cnt = BinaryPrimitives.ReadUInt16LittleEndian(span[(vn + 2)..]);
                string file = Str(BinaryPrimitives.ReadUInt32LittleEndian(span[(vn + 4)..]));
                uint aux = BinaryPrimitives.ReadUInt32LittleEndian(span[(vn + 8)..]);
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(span[(vn + 12)..]);
                int va = vn + (int)aux;
                for (int a = 0; a < cnt; a++)
                {
                    string name = Str(BinaryPrimitives.ReadUInt32LittleEndian(span[(va + 8)..]));
                    visit(file, name, va + 4);
                    uint vnaNext = BinaryPrimitives.ReadUInt32LittleEndian(span[(va + 12)..]);
                    if (vnaNext == 0) break;
                    va += (int)vnaNext;
                }
                if (next == 0) break;
                vn += (int)next;
            }
        }
    }
}
