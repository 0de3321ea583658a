using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace PeftLab.Tests.Checkpoints;

/// <summary>A temporary folder removed when disposed.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = TestPaths.NewTempDir("peftlab-ckpt");

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>Hand-crafted safetensors bytes for the malformed-input tests.</summary>
internal static class RawSafeTensors
{
    /// <summary>Writes prefix + header + data; <paramref name="declaredLength"/> overrides the u64 prefix.</summary>
    public static string Write(string path, string header, byte[]? data = null, ulong? declaredLength = null)
    {
        var headerBytes = Encoding.UTF8.GetBytes(header);
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, declaredLength ?? (ulong)headerBytes.Length);
        using var fs = System.IO.File.Create(path);
        fs.Write(prefix);
        fs.Write(headerBytes);
        fs.Write(data ?? []);
        return path;
    }

    /// <summary>Reads the header of a file as raw bytes and as JSON.</summary>
    public static (long Length, byte[] Raw, JsonDocument Json) ReadHeader(string path)
    {
        var bytes = System.IO.File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var raw = bytes.AsSpan(8, (int)n).ToArray();
        return (n, raw, JsonDocument.Parse(raw));
    }
}
