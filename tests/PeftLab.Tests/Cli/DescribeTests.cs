namespace PeftLab.Tests.Cli;

/// <summary><c>peftlab describe</c> parameter counts on the small preset against hand calculations.</summary>
public sealed class DescribeTests
{
    // small preset: V=8192, d=384, L=6, ff=1024, heads 6 (hd 64), untied head
    private const long V = 8192, D = 384, L = 6, FF = 1024;
    private const long Base = 2 * V * D + L * (4 * D * D + 3 * D * FF + 2 * D) + D;   // 16,913,280

    private static Dictionary<(string, string), (long Trainable, long Total)> Sweep()
    {
        var stdout = CliRunner.Ok("describe", "--preset", "small", "--sweep", "--json");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .ToDictionary(o => (o["method"]!.GetValue<string>(), o["knobs"]!.GetValue<string>()), o => (o["trainable"]!.GetValue<long>(), o["total"]!.GetValue<long>()));
    }

    [Fact]
    public void CountsMatchHandCalculation()
    {
        var rows = Sweep();
        void Check(string method, string knobs, long trainable, long total)
        {
            Assert.True(rows.TryGetValue((method, knobs), out var got), $"no row {method} {knobs}; rows: {string.Join("; ", rows.Keys)}");
            Assert.Equal((trainable, total), got);
        }
        Check("full", "", Base, Base);
        long loraQv = L * 2 * 8 * (D + D);                                          // r(in+out) for q and v
        Check("lora", "r=8 q,v", loraQv, Base + loraQv);
        long loraAll = L * 64 * (4 * (D + D) + 2 * (D + FF) + (FF + D));             // q,k,v,o + gate,up + down
        Check("lora", "r=64 all-linear", loraAll, Base + loraAll);
        long adapter = L * 2 * (2 * D * 64 + 64 + D);                                // two bottlenecks per block
        Check("adapter", "size=64", adapter, Base + adapter);
        Check("prefix_tuning", "num_virtual_tokens=20", 20 * L * 2 * D, Base + 20 * L * 2 * D);
        Check("prompt_tuning", "num_virtual_tokens=20", 20 * D, Base + 20 * D);
        long ia3 = L * (D + D + FF);                                                   // k, v outputs; down input
        Check("ia3", "k,v,down", ia3, Base + ia3);
        long bias = L * (4 * D + 2 * FF + D);                                          // zero biases added to all projections
        Check("bitfit", "all projections", bias, Base + bias);
        long norms = (2 * L + 1) * D;
        Check("bitfit", "all projections + norms", bias + norms, Base + bias);
        long vera = L * 2 * (256 + D);                                                 // λ_d [r] and λ_b [out] for q and v; the shared A, B are frozen buffers
        Check("vera", "r=256 q,v", vera, Base + vera);
        long oft = L * 2 * (D / 32) * (32 * 31 / 2);                                   // in/b blocks of b(b−1)/2 skew entries for q and v
        Check("oft", "oft_block_size=32 q,v", oft, Base + oft);
    }
}
