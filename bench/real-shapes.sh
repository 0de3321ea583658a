#!/usr/bin/env bash
# Real-size models on one machine (issue #15): LoRA r16 on every linear layer, bf16 frozen weights, B = 1, at the
# qwen2.5-0.5b / llama-3.2-1b / qwen2.5-1.5b presets, with and without activation checkpointing and the chunked
# LM head + loss, each training cell paired with the PyTorch peer (../shared/peer/peer_bench.py, fp32 with OpenBLAS
# and bf16 autocast) run right after it; greedy generation (prompt 256, 128 new tokens) against the peer's
# --bf16-cast, with the memory-read bandwidth the decode limit is computed from. One JSON line per run, tagged
# with its cell; bench/summarize-real-shapes.py turns the file into the tables and the plot of docs/performance.md.
#
# usage: bench/real-shapes.sh [--out FILE.jsonl] [--append] [--only REGEX] [--seq-lens "256 1024 2048"]
#                             [--gen-presets "small medium qwen2.5-0.5b ..."] [--no-full] [--peer-fp32 "PRESETS"]
# --append keeps FILE and runs only what it does not hold yet (a resumed or extended run).
# needs: Debian's python3-torch and the peer's OpenBLAS (sh ../shared/peer/setup_openblas.sh). ~35 min on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${PEER_DIR:-$root/../shared/peer}"
out="$root/bench/results-$(date +%Y-%m-%d)-real-shapes.jsonl"; only=""; seqlens="1024 2048"; append=0
genpresets="qwen2.5-0.5b llama-3.2-1b qwen2.5-1.5b"; full=1; peerfp32="qwen2.5-0.5b"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2;; --only) only="$2"; shift 2;; --seq-lens) seqlens="$2"; shift 2;; --append) append=1; shift;;
    --gen-presets) genpresets="$2"; shift 2;; --no-full) full=0; shift;; --peer-fp32) peerfp32="$2"; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
. "$root/bench/peer-env.sh"
(( append )) || : > "$out"

# tag NAME IMPL VARIANT: adds the cell's labels to the JSON line on stdin (a failed run is recorded, not fatal)
tag() { /usr/bin/python3 -c '
import json, sys
text = sys.stdin.read().strip().splitlines()
try: r = json.loads(text[-1])
except Exception: r = {"error": (text[-1] if text else "no output")[:500]}
r["cell"], r["impl"], r["variant"] = sys.argv[1], sys.argv[2], sys.argv[3]
print(json.dumps(r))' "$@"; }
# a run is skipped when its cell is not wanted, or when --append finds it already recorded without an error
want() { [ -z "$only" ] || grep -Eq "$only" <<< "$1" || return 1
  (( append )) && /usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if (r["cell"], r["impl"], r["variant"]) == tuple(sys.argv[2:]) and "error" not in r: sys.exit(0)
sys.exit(1)' "$out" "$@" && return 1
  return 0; }
peftlab() { local name="$1" variant="$2"; shift 2; want "$name" peftlab "$variant" || return 0
  { dotnet "$dll" bench --threads 2 "$@" 2>&1 || true; } | tag "$name" peftlab "$variant" >> "$out"; echo "  $name · peftlab $variant" >&2; }
peer_run() { local name="$1" variant="$2"; shift 2; want "$name" peer "$variant" || return 0
  { LD_LIBRARY_PATH=$OB /usr/bin/python3 "$peer/peer_bench.py" --threads 2 "$@" 2>&1 || true; } | tag "$name" peer "$variant" >> "$out"; echo "  $name · peer $variant" >&2; }

# preset -> the peer's flags for its shape (the peer has no grouped-query attention and no q/k/v bias)
declare -A peershape=(
  [qwen2.5-0.5b]="--vocab 151936 --d-model 896 --n-layers 24 --n-heads 14 --d-ff 4864 --tie-embeddings"
  [llama-3.2-1b]="--vocab 128256 --d-model 2048 --n-layers 16 --n-heads 32 --d-ff 8192 --tie-embeddings"
  [qwen2.5-1.5b]="--vocab 151936 --d-model 1536 --n-layers 28 --n-heads 12 --d-ff 8960 --tie-embeddings"
)
declare -A heads=([qwen2.5-0.5b]=14 [llama-3.2-1b]=32 [qwen2.5-1.5b]=12)
lora="--method lora --lora-r 16 --lora-alpha 32 --lora-targets all"

if ! (( append )); then
  peftlab "bandwidth" "2 threads" --mode bandwidth
  peftlab "matmul" "n=1024" --mode matmul
  peer_run "matmul" "n=1024" --mode matmul
fi

for t in $seqlens; do
  steps="--warmup 1 --steps 2"
  for p in qwen2.5-0.5b llama-3.2-1b qwen2.5-1.5b; do
    name="$p lora-r16-all T=$t"
    shape="--preset $p --seq-len $t --batch 1"
    # T = 2048 only for the smallest and the largest preset in the recommended setting (does it fit, how fast)
    if (( t >= 2048 )) && [ "$p" = llama-3.2-1b ]; then continue; fi
    peftlab "$name" "ckpt+chunked" $shape $lora --bf16 --activation-checkpointing 1 --chunked-loss auto $steps
    (( t >= 2048 )) && continue
    peftlab "$name" "chunked" $shape $lora --bf16 --activation-checkpointing 0 --chunked-loss auto $steps
    # whole logits and no checkpointing (PeftLab before this work) and checkpointing alone: the smallest preset
    if [ "$p" = qwen2.5-0.5b ]; then
      peftlab "$name" "plain" $shape $lora --bf16 --activation-checkpointing 0 --chunked-loss never $steps
      peftlab "$name" "ckpt" $shape $lora --bf16 --activation-checkpointing 1 --chunked-loss never $steps
    fi
    # like for like with the peer (which neither checkpoints nor has grouped-query attention): kv heads = query heads
    peftlab "$name" "chunked no-gqa" $shape $lora --bf16 --kv-heads "${heads[$p]}" --activation-checkpointing 0 $steps
    # the peer in fp32 needs 45 s per step and 17 GiB for qwen2.5-0.5b at T = 1024 (T x T float32 scores, float32
    # weights): run for the presets in $peerfp32 only (default: the smallest)
    grep -qw -- "$p" <<< "$peerfp32" && peer_run "$name" "fp32" ${peershape[$p]} --seq-len "$t" --batch 1 $lora $steps
    peer_run "$name" "bf16 autocast" ${peershape[$p]} --seq-len "$t" --batch 1 $lora --bf16 $steps
  done
done

# full finetuning where it fits: 16 bytes per parameter (bf16 weights + float32 master + two AdamW moments)
(( full )) && peftlab "qwen2.5-0.5b full T=256" "ckpt+chunked" --preset qwen2.5-0.5b --seq-len 256 --batch 1 --method full --bf16 --activation-checkpointing 1 --warmup 1 --steps 2
(( full )) && peer_run "qwen2.5-0.5b full T=256" "bf16 autocast" ${peershape[qwen2.5-0.5b]} --seq-len 256 --batch 1 --method full --bf16 --warmup 1 --steps 2
(( full )) && peftlab "qwen2.5-0.5b full T=256" "fp32 ckpt+chunked" --preset qwen2.5-0.5b --seq-len 256 --batch 1 --method full --activation-checkpointing 1 --warmup 1 --steps 2
(( full )) && peer_run "qwen2.5-0.5b full T=256" "fp32" ${peershape[qwen2.5-0.5b]} --seq-len 256 --batch 1 --method full --warmup 1 --steps 2
(( full )) && peftlab "qwen2.5-0.5b full T=1024" "ckpt+chunked" --preset qwen2.5-0.5b --seq-len 1024 --batch 1 --method full --bf16 --activation-checkpointing 1 --warmup 1 --steps 2
# llama-3.2-1b: 1.24B x 16 B = 19.8 GB before activations, at the edge of 24 GiB (an out-of-memory kill is recorded as an error)
(( full )) && peftlab "llama-3.2-1b full T=256" "ckpt+chunked" --preset llama-3.2-1b --seq-len 256 --batch 1 --method full --bf16 --activation-checkpointing 1 --warmup 1 --steps 2

for p in $genpresets; do
  case "$p" in small|medium) pflags="--preset $p";; *) pflags="${peershape[$p]}";; esac
  peftlab "$p generate bf16" "bf16" --mode generate --preset "$p" --bf16 --prompt-len 256 --gen-tokens 128
  peer_run "$p generate bf16" "bf16-cast" --mode generate $pflags --bf16-cast --prompt-len 256 --gen-tokens 128
  if [ "$p" = small ] || [ "$p" = medium ]; then
    peftlab "$p generate fp32" "fp32" --mode generate --preset "$p" --prompt-len 256 --gen-tokens 128
    peer_run "$p generate fp32" "fp32" --mode generate $pflags --prompt-len 256 --gen-tokens 128
  fi
done

echo "wrote $out" >&2
/usr/bin/python3 "$root/bench/summarize-real-shapes.py" "$out" "${out%.jsonl}.png" || true
