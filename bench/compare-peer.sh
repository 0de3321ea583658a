#!/usr/bin/env bash
# Side-by-side throughput: PeftLab (`peftlab bench`) vs the PyTorch peer (../shared/peer/peer_bench.py),
# run alternately (A B B A ...) on the same shapes and thread count, printing the ratio per cell.
#
# usage: bench/compare-peer.sh [--reps N] [--quick] [--shapes "small medium"] [--out results.jsonl]
#   --quick   only the small shape and fewer steps (a few minutes instead of ~40)
#   --shapes  which training shapes to run (the bf16 and generation cells use the last one)
# needs: Debian's python3-torch (apt-get install -y python3-torch python3-numpy) and the peer's OpenBLAS
#        (sh ../shared/peer/setup_openblas.sh) — the fair fp32 peer; the JSON field "blas" says which was used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${PEER_DIR:-$root/../shared/peer}"
reps=2; quick=0; shapes=""; out="$root/bench/results-$(date +%Y%m%d-%H%M%S).jsonl"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2;; --quick) quick=1; shift;; --shapes) shapes="$2"; shift 2;; --out) out="$2"; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
OB=/tmp/peer-openblas/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$OB" ] || sh "$peer/setup_openblas.sh" >&2
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch missing: apt-get install -y python3-torch python3-numpy" >&2; exit 1; }
"$root/peftlab" doctor >/dev/null   # build once
dll="$root/src/PeftLab.Cli/bin/Release/net10.0/PeftLab.Cli.dll"
: > "$out"

run_peer()    { LD_LIBRARY_PATH=$OB /usr/bin/python3 "$peer/peer_bench.py" --threads 2 "$@" | tail -1; }
run_peftlab() { dotnet "$dll" bench --threads 2 "$@" | tail -1; }
tag() { /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["cell"]=sys.argv[1]; r["impl"]=sys.argv[2]; print(json.dumps(r))' "$1" "$2"; }

cell() {  # cell NAME "peer args" "peftlab args"
  local name="$1" pargs="$2" largs="$3"
  for ((i = 0; i < reps; i++)); do
    if (( i % 2 == 0 )); then
      run_peer $pargs | tag "$name" peer >> "$out"; run_peftlab $largs | tag "$name" peftlab >> "$out"
    else
      run_peftlab $largs | tag "$name" peftlab >> "$out"; run_peer $pargs | tag "$name" peer >> "$out"
    fi
    echo "  $name rep $((i + 1))/$reps done" >&2
  done
}

if (( quick )); then shapes="${shapes:-small}"; steps="--warmup 1 --steps 4"; else shapes="${shapes:-small medium}"; steps="${BENCH_STEPS:---warmup 2 --steps 8}"; fi
cell "matmul" "--mode matmul" "--mode matmul"
for s in $shapes; do
  cell "$s full fp32"          "--preset $s --method full $steps"                              "--preset $s --method full $steps"
  cell "$s lora-r8-qv fp32"    "--preset $s --method lora --lora-r 8 --lora-targets q,v $steps" "--preset $s --method lora --lora-r 8 --lora-targets q,v $steps"
  cell "$s lora-r64-all fp32"  "--preset $s --method lora --lora-r 64 --lora-targets all $steps" "--preset $s --method lora --lora-r 64 --lora-targets all $steps"
  cell "$s adapter64 fp32"     "--preset $s --method adapter --adapter-size 64 $steps"          "--preset $s --method adapter --adapter-size 64 $steps"
done
big="${shapes##* }"
# bf16 frozen weights (PeftLab) against the peer's fp32, the target's baseline
cell "$big lora-r8-qv bf16 vs peer fp32"   "--preset $big --method lora --lora-r 8 --lora-targets q,v $steps"  "--preset $big --method lora --lora-r 8 --lora-targets q,v --bf16 $steps"
cell "$big lora-r64-all bf16 vs peer fp32" "--preset $big --method lora --lora-r 64 --lora-targets all $steps" "--preset $big --method lora --lora-r 64 --lora-targets all --bf16 $steps"
cell "$big adapter64 bf16 vs peer fp32"    "--preset $big --method adapter --adapter-size 64 $steps"           "--preset $big --method adapter --adapter-size 64 --bf16 $steps"
cell "$big full bf16 vs peer bf16"         "--preset $big --method full --bf16 $steps"                         "--preset $big --method full --bf16 $steps"
cell "$big generate fp32"                  "--mode generate --preset $big"                                     "--mode generate --preset $big"
cell "$big generate bf16"                  "--mode generate --preset $big --bf16-cast"                         "--mode generate --preset $big --bf16"

/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = []
for r in rows:
    if r["cell"] not in cells: cells.append(r["cell"])
print("| cell | PeftLab tok/s (median, range) | peer tok/s (median, range) | ratio (median) | PeftLab peak RSS MiB | peer peak RSS MiB |")
print("|---|---|---|---|---|---|")
for c in cells:
    def stat(impl, key):
        v = [r[key] for r in rows if r["cell"] == c and r["impl"] == impl and key in r]
        return (statistics.median(v), min(v), max(v)) if v else None
    if c == "matmul":
        for k in ("fp32_gflops_median", "bf16_gflops_median"):
            a, b = stat("peftlab", k), stat("peer", k)
            print(f"| matmul 1024³ {k[:4]} GFLOP/s | {a[0]:.0f} ({a[1]:.0f}–{a[2]:.0f}) | {b[0]:.0f} ({b[1]:.0f}–{b[2]:.0f}) | {a[0]/b[0]:.2f} | | |")
        continue
    a, b = stat("peftlab", "tokens_per_s"), stat("peer", "tokens_per_s")
    ra, rb = stat("peftlab", "peak_rss_mib"), stat("peer", "peak_rss_mib")
    print(f"| {c} | {a[0]:.0f} ({a[1]:.0f}–{a[2]:.0f}) | {b[0]:.0f} ({b[1]:.0f}–{b[2]:.0f}) | **{a[0]/b[0]:.2f}** | {ra[0]:.0f} | {rb[0]:.0f} |")
blas = {r.get("blas") for r in rows if r["impl"] == "peer" and r.get("blas")}
print(f"\npeer BLAS: {', '.join(sorted(blas))}; results: {sys.argv[1]}")
PY
