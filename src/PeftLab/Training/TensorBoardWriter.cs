using System.Numerics;
using System.Text;

namespace PeftLab.Training;

/// <summary>
/// Writes TensorBoard scalar event files (TFRecord framing of Event protobufs). No .NET TensorBoard package
/// is available in our package sources, and scalars need only a few protobuf fields, so it is written here.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    private readonly FileStream stream;

    /// <summary>Opens a new event file in <paramref name="dir"/>.</summary>
    public TensorBoardWriter(string dir)
    {
        Directory.CreateDirectory(dir);
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var path = Path.Combine(dir, $"events.out.tfevents.{(long)now}.{Environment.MachineName}.{Environment.ProcessId}");
        stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        var ev = new MemoryStream();
        WriteDouble(ev, 1, now);
        WriteBytes(ev, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        WriteRecord(ev.ToArray());
    }

    /// <summary>Appends one scalar.</summary>
    public void Scalar(string tag, double value, long step)
    {
        var val = new MemoryStream();
        WriteBytes(val, 1, Encoding.UTF8.GetBytes(tag));
        WriteFloat(val, 2, (float)value);
        var summary = new MemoryStream();
        WriteBytes(summary, 1, val.ToArray());
        var ev = new MemoryStream();
        WriteDouble(ev, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
        WriteVarintField(ev, 2, (ulong)step);
        WriteBytes(ev, 5, summary.ToArray());
        WriteRecord(ev.ToArray());
    }

    /// <summary>Pushes written events to disk.</summary>
    public void Flush() => stream.Flush();

    /// <inheritdoc/>
    public void Dispose() => stream.Dispose();

    private void WriteRecord(byte[] data)
    {
        var len = BitConverter.GetBytes((ulong)data.Length);
        stream.Write(len);
        stream.Write(BitConverter.GetBytes(MaskedCrc(len)));
        stream.Write(data);
        stream.Write(BitConverter.GetBytes(MaskedCrc(data)));
    }

    /// <summary>CRC32-C masked as TFRecord requires.</summary>
    internal static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        crc ^= 0xFFFFFFFF;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8;
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static void WriteVarintField(Stream s, int field, ulong v) { WriteVarint(s, (ulong)(field << 3)); WriteVarint(s, v); }
    private static void WriteDouble(Stream s, int field, double v) { WriteVarint(s, (ulong)(field << 3 | 1)); s.Write(BitConverter.GetBytes(v)); }
    private static void WriteFloat(Stream s, int field, float v) { WriteVarint(s, (ulong)(field << 3 | 5)); s.Write(BitConverter.GetBytes(v)); }
    private static void WriteBytes(Stream s, int field, byte[] v) { WriteVarint(s, (ulong)(field << 3 | 2)); WriteVarint(s, (ulong)v.Length); s.Write(v); }
}
