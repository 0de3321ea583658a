#!/usr/bin/env python3
"""Tables (Markdown) and the scaling plot of a bench/real-shapes.sh results file.

Per training cell: tokens/s, median step, peak RSS of the training steps, the memory the steps added (peak RSS minus
RSS before the first step: optimiser state, gradients, activations, allocator slack), the activation part (that minus
the optimiser state), and the ratio against each peer run of the same cell. Generation: tokens/s and its share of the
memory-bandwidth limit (measured read bandwidth / weight bytes read per token).
usage: bench/summarize-real-shapes.py results.jsonl [plot.png]
"""
import json, sys
from collections import OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
plot = sys.argv[2] if len(sys.argv) > 2 else None


def first(cell, impl, variant=None):
    for r in rows:
        if r["cell"] == cell and r["impl"] == impl and (variant is None or r["variant"] == variant):
            return r
    return None


def mib(x):
    return f"{x:,.0f}"


bw = first("bandwidth", "peftlab")
bandwidth = bw["read_gb_s_median"] * 1e9 if bw else None
mm = {impl: first("matmul", impl) for impl in ("peftlab", "peer")}
cpu = next((r.get("cpu") for r in rows if r.get("cpu")), "unknown")
print(f"CPU: {cpu}; memory read bandwidth {bw['read_gb_s_median'] if bw else '?'} GB/s (2 threads); "
      + "; ".join(f"{k} matmul 1024³ fp32 {v['fp32_gflops_median']} / bf16 {v['bf16_gflops_median']} GFLOP/s" for k, v in mm.items() if v))
print()

train = [r for r in rows if r.get("mode") == "train" or (r["cell"] not in ("bandwidth", "matmul") and "generate" not in r["cell"])]
cells = list(OrderedDict.fromkeys(r["cell"] for r in train))
print("| cell | run | tok/s | ms/step (median) | peak RSS MiB | RSS before steps MiB | added by the steps MiB | of which optimiser state MiB | activations etc. MiB | × peer fp32 | × peer bf16 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in cells:
    p32, p16 = first(c, "peer", "fp32"), first(c, "peer", "bf16 autocast")
    for r in [r for r in train if r["cell"] == c]:
        if "error" in r:
            print(f"| {c} | {r['impl']} {r['variant']} | failed: {r['error'][:80]} | | | | | | | | |")
            continue
        tps, ms, peak = r["tokens_per_s_at_median_step"], r["ms_per_step_median"], r["peak_rss_mib"]
        opt = r.get("optimizer_state_bytes", 0) / 2**20
        before = r.get("rss_before_steps_mib")
        added = peak - before if before is not None and r.get("peak_rss_is_steps_only") else None
        ratio = lambda peer: f"{tps / peer['tokens_per_s_at_median_step']:.2f}" if peer and "error" not in peer and r["impl"] == "peftlab" else ""
        print(f"| {c} | {r['impl']} {r['variant']} | {tps:.1f} | {ms:,.0f} | {mib(peak)} | {mib(before) if before else ''} | "
              f"{mib(added) if added is not None else ''} | {opt:.0f} | {mib(added - opt) if added is not None else ''} | {ratio(p32)} | {ratio(p16)} |")
print()

# activation checkpointing: activation memory and step time, with vs without, same loss path
print("| cell | loss path | activations etc. without → with checkpointing MiB | cut | step time with / without |")
print("|---|---|---:|---:|---:|")
for c in cells:
    for loss, off, on in (("chunked", "chunked", "ckpt+chunked"), ("whole logits", "plain", "ckpt")):
        a, b = first(c, "peftlab", off), first(c, "peftlab", on)
        if not a or not b or "error" in a or "error" in b:
            continue
        act = lambda r: r["peak_rss_mib"] - r["rss_before_steps_mib"] - r.get("optimizer_state_bytes", 0) / 2**20
        print(f"| {c} | {loss} | {mib(act(a))} → {mib(act(b))} | {act(a) / act(b):.1f}× | {b['ms_per_step_median'] / a['ms_per_step_median']:.2f} |")
print()

gen = [r for r in rows if "generate" in r["cell"]]
print("| cell | run | tok/s | decode tok/s | weight bytes / token | bandwidth limit tok/s | share of limit | × peer |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for c in OrderedDict.fromkeys(r["cell"] for r in gen):
    peer = next((r for r in gen if r["cell"] == c and r["impl"] == "peer"), None)
    ours = next((r for r in gen if r["cell"] == c and r["impl"] == "peftlab"), None)
    for r in (ours, peer):
        if r is None:
            continue
        if "error" in r:
            print(f"| {c} | {r['impl']} {r['variant']} | failed: {r['error'][:80]} | | | | | |")
            continue
        wb = r.get("weight_bytes_per_token")
        if wb is None:  # the peer: its own shape (no GQA), every Linear + the head, in its dtype
            cfg = r["config"]
            d, ff, L, V = cfg["d_model"], cfg["d_ff"], cfg["n_layers"], cfg["vocab"]
            wb = (L * (4 * d * d + 3 * d * ff) + V * d) * (2 if "bf16" in r["variant"] else 4)
        limit = bandwidth / wb if bandwidth else None
        x = f"{r['tokens_per_s'] / peer['tokens_per_s']:.2f}" if r is ours and peer and "error" not in peer else ""
        print(f"| {c} | {r['impl']} {r['variant']} | {r['tokens_per_s']:.1f} | {r['decode_tokens_per_s']:.1f} | {wb / 1e6:,.0f} MB | "
              f"{limit:.1f} | {100 * r['decode_tokens_per_s'] / limit:.0f} % | {x} |")

if plot:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for variant, style in (("ckpt+chunked", "o-"), ("chunked", "s--"), ("plain", "x:")):
        for preset in ("qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-1.5b"):
            pts = sorted((int(r["cell"].split("T=")[1]), r) for r in train if r["impl"] == "peftlab" and r["variant"] == variant
                         and r["cell"].startswith(preset + " ") and "error" not in r)
            if not pts:
                continue
            ts = [t for t, _ in pts]
            ax1.plot(ts, [r["tokens_per_s_at_median_step"] for _, r in pts], style, label=f"{preset} {variant}")
            ax2.plot(ts, [r["peak_rss_mib"] / 1024 for _, r in pts], style, label=f"{preset} {variant}")
    ax1.set(xscale="log", xlabel="sequence length T (B = 1)", ylabel="tokens/s", title="LoRA r16 all-linear, bf16 frozen")
    ax2.set(xscale="log", xlabel="sequence length T (B = 1)", ylabel="peak RSS of the training steps (GiB)", title="memory")
    ax2.axhline(24, color="gray", lw=0.8)
    for ax in (ax1, ax2):
        ax.set_xticks([256, 1024, 2048], ["256", "1024", "2048"])
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=6, ncol=1, loc="upper left")
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    print(f"\nwrote {plot}", file=sys.stderr)
