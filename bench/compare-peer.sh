#!/usr/bin/env bash
# Side-by-side throughput: PeftLab (`peftlab bench`) vs the PyTorch peer (../shared/peer/peer_bench.py),
# run alternately (A B B A ...) on the same shapes and thread count, printing the ratio per cell.
#
# usage: bench/compare-peer.sh [--reps N] [--quick] [--shapes "small medium"] [--only REGEX] [--out results.jsonl]
#   --quick   only the small shape and fewer steps (a few minutes instead of ~40)
#   --shapes  which shapes to run (the bf16 training cells use the last one)
#   --only    run only the cells whose name matches this (grep -E) pattern, e.g. "generate"
# The table (bench/summarize-peer.py) adds model GFLOP/s as a share of each side's matmul rate and the ceiling ratio.
# needs: Debian's python3-torch (apt-get install -y python3-torch python3-numpy) and the peer's OpenBLAS
#        (sh ../shared/peer/setup_openblas.sh) — the fair fp32 peer; the JSON field "blas" says which was used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${PEER_DIR:-$root/../shared/peer}"
reps=2; quick=0; shapes=""; only=""; out="$root/bench/results-$(date +%Y%m%d-%H%M%S).jsonl"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2;; --quick) quick=1; shift;; --shapes) shapes="$2"; shift 2;; --only) only="$2"; shift 2;; --out) out="$2"; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
. "$root/bench/peer-env.sh"
: > "$out"

run_peer()    { LD_LIBRARY_PATH=$OB /usr/bin/python3 "$peer/peer_bench.py" --threads 2 "$@" | tail -1; }
run_peftlab() { dotnet "$dll" bench --threads 2 "$@" | tail -1; }
tag() { /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["cell"]=sys.argv[1]; r["impl"]=sys.argv[2]; print(json.dumps(r))' "$1" "$2"; }

cell() {  # cell NAME "peer args" "peftlab args"
  local name="$1" pargs="$2" largs="$3"
  if [ -n "$only" ] && ! grep -Eq "$only" <<< "$name"; then return; fi
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
for s in $shapes; do
  cell "$s generate fp32"                  "--mode generate --preset $s"                                       "--mode generate --preset $s"
  cell "$s generate bf16"                  "--mode generate --preset $s --bf16-cast"                           "--mode generate --preset $s --bf16"
done

/usr/bin/python3 "$root/bench/summarize-peer.py" "$out"
