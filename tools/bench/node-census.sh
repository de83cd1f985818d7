#!/usr/bin/env bash
# The node count of the training steps' graphs (no device, no run): each bench's `--nodes ''`, the step graph
# the Trainer would build for that device (Trainer.stepGraphs, as if the device's fused kernels loaded), as
# JSON lines: {"bench": "node-census", commit, step, device, cmd, graph, total, ops}. The launch-bound
# question of issues 18 and 20 (docs/performance.md, session 12): how many nodes ORT dispatches per step.
# Usage (repo root): bash tools/bench/node-census.sh [cpu|cuda] > census.jsonl
set -euo pipefail
DEVICE=${1:-cpu}
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- packages tools || echo +changes)
run() {
  local step=$1; shift
  local cmd="node --conditions=@latent-sft/source --import tsx $* --device $DEVICE --nodes ''"
  node --conditions=@latent-sft/source --import tsx "$@" --device "$DEVICE" --nodes '' | grep '^NODES ' | sed 's/^NODES //' |
    python3 -c "import json,sys
for line in sys.stdin:
    d = json.loads(line)
    print(json.dumps({'bench': 'node-census', 'commit': '$COMMIT', 'step': '$step', 'device': '$DEVICE', 'cmd': '''$cmd''', **d}))"
}
run 1b-full tools/bench/src/train-bench.ts --which train --batch 8 --seq 512
run 1b-lora tools/bench/src/train-bench.ts --which lora --batch 8 --seq 512 --frozen bfloat16
run 1b-phase1 tools/bench/src/phase-bench.ts --which phase1 --batch 8 --frozen bfloat16
run 1b-phase2 tools/bench/src/phase-bench.ts --which phase2 --batch 8 --frozen bfloat16
run 7b-phase1 tools/bench/src/phase-bench.ts --model r1-distill-qwen-7b --which phase1 --batch 4 --frozen bfloat16
run 7b-phase2 tools/bench/src/phase-bench.ts --model r1-distill-qwen-7b --which phase2 --batch 8 --frozen bfloat16
# The same with the opt-in parts (FlashAttention, Rope) and the batch's shapes fixed: the fewest nodes today.
run 1b-lora+optin tools/bench/src/train-bench.ts --which lora --batch 8 --seq 512 --frozen bfloat16 --fused optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention,rope --static-shapes
run 7b-phase2+optin tools/bench/src/phase-bench.ts --model r1-distill-qwen-7b --which phase2 --batch 8 --frozen bfloat16 --attention --rope --static-shapes
