#!/usr/bin/env python3
"""Summarise a compare-peer.sh results file (JSON lines tagged with cell and impl) as a Markdown table.

For every training cell it also prints each side's model GFLOP/s as a share of its own 1024^3 fp32 (or bf16) matmul
rate from the same run, and the *ceiling*: the ratio PeftLab would reach running at 100 % of that matmul rate.
A ceiling below a target proves the target cannot be met at the peer's FLOP count.
usage: bench/summarize-peer.py results.jsonl
"""
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = []
for r in rows:
    if r["cell"] not in cells:
        cells.append(r["cell"])

def values(cell, impl, key):
    return [r[key] for r in rows if r["cell"] == cell and r["impl"] == impl and key in r]

def stat(cell, impl, key):
    v = values(cell, impl, key)
    return (statistics.median(v), min(v), max(v)) if v else None

mm = {impl: {k: stat("matmul", impl, f"{k}_gflops_median") for k in ("fp32", "bf16")} for impl in ("peftlab", "peer")}
print("| cell | PeftLab tok/s median (range) | peer tok/s median (range) | ratio (median) | PeftLab GFLOP/s (% of its matmul) | peer GFLOP/s (% of its matmul) | ceiling | PeftLab peak RSS MiB | peer peak RSS MiB | PeftLab optimiser state MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in cells:
    if c == "matmul":
        for k in ("fp32", "bf16"):
            a, b = mm["peftlab"][k], mm["peer"][k]
            print(f"| matmul 1024³ {k} GFLOP/s | {a[0]:.0f} ({a[1]:.0f}–{a[2]:.0f}) | {b[0]:.0f} ({b[1]:.0f}–{b[2]:.0f}) | {a[0]/b[0]:.2f} | | | | | | |")
        continue
    a, b = stat(c, "peftlab", "tokens_per_s"), stat(c, "peer", "tokens_per_s")
    ra, rb = stat(c, "peftlab", "peak_rss_mib"), stat(c, "peer", "peak_rss_mib")
    ga, gb = stat(c, "peftlab", "gflops"), stat(c, "peer", "gflops")
    st = stat(c, "peftlab", "optimizer_state_bytes")
    pa = "bf16" if "bf16" in c and "generate" not in c else "fp32"
    pb = "bf16" if c.endswith("vs peer bf16") else "fp32"
    eff = lambda g, impl, p: f"{g[0]:.0f} ({100 * g[0] / mm[impl][p][0]:.0f} %)" if g else ""
    ceiling = f"{mm['peftlab'][pa][0] / gb[0]:.2f}" if ga and gb else ""
    print(f"| {c} | {a[0]:.1f} ({a[1]:.1f}–{a[2]:.1f}) | {b[0]:.1f} ({b[1]:.1f}–{b[2]:.1f}) | **{a[0]/b[0]:.2f}** | {eff(ga, 'peftlab', pa)} | {eff(gb, 'peer', pb)} | {ceiling} "
          f"| {ra[0]:.0f} | {rb[0]:.0f} | {st[0] / 2**20:.1f} |" if st else
          f"| {c} | {a[0]:.1f} ({a[1]:.1f}–{a[2]:.1f}) | {b[0]:.1f} ({b[1]:.1f}–{b[2]:.1f}) | **{a[0]/b[0]:.2f}** | | | | {ra[0]:.0f} | {rb[0]:.0f} | |")
blas = {r.get("blas") for r in rows if r["impl"] == "peer" and r.get("blas")}
print(f"\npeer BLAS: {', '.join(sorted(blas))}; reps per cell: {max(len(values(c, 'peftlab', 'impl')) for c in cells)}; results: {sys.argv[1]}")
