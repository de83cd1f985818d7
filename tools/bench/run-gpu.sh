#!/usr/bin/env bash
# The GPU benchmark (issue 10), run ON the GPU machine from the repo root after the runtime and the app
# bundle are unpacked (see tools/device/build-app.sh and ../shared/device/pack-gpu-runtime.sh):
#   bash tools/device/build-app.sh tools/bench/src/{train-bench,phase-bench,forward-1b,runtime-probe,fused-check,table,decode-probe,random-checkpoint}.ts \
#        packages/generate/bench/generate-bench.ts        # here
#   bash tools/bench/run-gpu.sh [train] [gen] [7b] > bench.log; node /root/app/dist/table.mjs bench.log   # there
# (no argument: train and gen; 7b: the DeepSeek-R1-Distill-Qwen-7B-shape LoRA steps, ours and PEFT's).
# Ours and the PyTorch anchor (tools/reference/bench_torch.py) run in the same call, one after another,
# on identical configs; each command's peak GPU memory is sampled with nvidia-smi.
set -u
A=${APP_DIST:-/root/app/dist}
peak() { rm -f /tmp/mem.txt; (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> /tmp/mem.txt; sleep 0.2; done) & local mp=$!; "$@"; local rc=$?; kill $mp; echo "PEAK $(sort -n /tmp/mem.txt | tail -1) MiB rc=$rc :: $*"; }
want() { [ $# -eq 0 ] && return 0; for w in "${SECTIONS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
SECTIONS=("$@"); [ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(train gen)
if want train; then
node $A/fused-check.mjs | grep -E 'time|done|"ok":false'   # the fused kernels: CUDA vs CPU, then timings
# (the RMSNorm and SwiGLU ablations were measured on 2026-12-04, h200-2026-12-04.jsonl: --fused lists them)
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu  # ablation: the LM-head cross-entropy unfused
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu  # ablation: the same, LoRA
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu,ce,copies  # ablation: AdamW writes the 16-bit weight copies (opt-in)
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --in-place false  # ablation: double-buffered masters and moments (in place is the default)
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --in-place false
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --params bfloat16  # PyTorch's bf16 recipe (bf16 params + moments), beside bench_torch's bf16-fused
# Activation recomputation per layer (Trainer.recompute 'layers'): the same step (time, peak), then a batch
# that 'none' may not fit.
peak node $A/train-bench.mjs --device cuda --which train,lora --batch 8 --seq 512 --steps 10 --recompute layers
peak node $A/train-bench.mjs --device cuda --which train --batch 16 --seq 512 --steps 10 --recompute layers
peak node $A/phase-bench.mjs --device cuda --batch 8 --steps 5
# The PyTorch anchors, one recipe per command so each PEAK line is that recipe's (bench_torch.py lists them).
for r in bf16 bf16-fused bf16-fused-compile fp32master-fused fp32master-fused-compile; do
  peak python3 tools/reference/bench_torch.py --which train --recipes $r --steps 10; done
for r in peft peft-fused; do peak python3 tools/reference/bench_torch.py --which lora --recipes $r --steps 10; done
fi
if want gen; then
# Generation (issue 19): the static-cache engine with CUDA graphs, without them (fixed shapes), and latent
# mode (128 soft embeddings, then the answer), beside HF generate and HF static cache + torch.compile.
peak node $A/forward-1b.mjs /root/fwd --device cuda --seq 128
G="node $A/generate-bench.mjs --model /root/fwd/model --batch 64 --prompt-len 128 --new-tokens 256 --device cuda --dtype bfloat16"
peak $G --engine cuda-graph --dump /root/gen-cg.json
peak $G --engine fixed --dump /root/gen-fixed.json
python3 tools/reference/gen_check.py /root/gen-cg.json /root/fwd/model   # our greedy tokens vs HF's argmax, teacher-forced
python3 tools/reference/gen_check.py /root/gen-fixed.json /root/fwd/model
peak $G --engine cuda-graph --mode latent --latent 128 --new-tokens 128
peak $G --engine cuda-graph --candidates 10   # diagnostic: TopK over the vocabulary with K = 10 instead of 64
$G --engine fixed --new-tokens 32 --profile /root/gen-prof | grep -E 'BENCH.*profile'   # diagnostic: ORT's per-op times
for r in hf-generate hf-static-compile; do peak python3 tools/reference/bench_torch.py --which gen --recipes $r; done
node $A/decode-probe.mjs --device cuda --dtype bfloat16 --batch 64 --capacity 512   # diagnostic: attention vs matmuls of one decode step
fi
if want 7b; then
# DeepSeek-R1-Distill-Qwen-7B shape (issue 20): our phase-2 and phase-1 encoder steps, PEFT's LoRA step.
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 3
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 3
# The frozen bases stored once in bf16 (phases' frozenDtype): half the frozen memory, no per-step Cast.
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 3 --frozen bfloat16
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 3 --frozen bfloat16
# Recomputation per layer (PEFT's peft-fused-ckpt is the gradient-checkpointing anchor): phase 1 at batch 4, then 8.
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 3 --frozen bfloat16 --recompute layers
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 3 --frozen bfloat16 --recompute layers
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 8 --steps 3 --frozen bfloat16 --recompute layers
for r in peft-fused peft-fused-ckpt; do peak python3 tools/reference/bench_torch.py --which lora7b --recipes $r --steps 5; done
# PEFT at phase 2's tokens per row (96 + 3 + 48 + 3 + 16 = 166 → 168), batch 8: the like-for-like anchor.
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
# Full fine-tuning at 7B (issue 20): the bf16 recipe (bf16 parameters + moments, in place: ~61 GB of state) beside
# PyTorch's (bf16 parameters, fused AdamW), both with and without activation checkpointing.
peak node $A/train-bench.mjs --device cuda --model r1-distill-qwen-7b --which train --batch 8 --seq 512 --steps 3 --params bfloat16
peak node $A/train-bench.mjs --device cuda --model r1-distill-qwen-7b --which train --batch 8 --seq 512 --steps 3 --params bfloat16 --recompute layers
for r in bf16-fused bf16-fused-ckpt; do peak python3 tools/reference/bench_torch.py --which train7b --recipes $r --steps 3; done
# Generation at 7B (issue 20): a random bf16 checkpoint of the shape, explicit and latent decoding at batch 32
# (128-token prompts; latent: 64 soft embeddings then 64 answer tokens), beside HF generate on the same folder.
peak node $A/random-checkpoint.mjs /root/q7 --model r1-distill-qwen-7b
G7="node $A/generate-bench.mjs --model /root/q7 --batch 32 --prompt-len 128 --device cuda --dtype bfloat16 --engine cuda-graph"
peak $G7 --new-tokens 128
peak $G7 --mode latent --latent 64 --new-tokens 64
peak python3 tools/reference/bench_torch.py --which gen --recipes hf-generate --gen-model /root/q7 --gen-batch 32 --gen-new 128
fi
if want train; then node $A/runtime-probe.mjs --device cuda; fi
