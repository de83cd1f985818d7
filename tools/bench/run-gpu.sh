#!/usr/bin/env bash
# The GPU benchmark (issue 10), run ON the GPU machine from the repo root after the runtime and the app
# bundle are unpacked (see tools/device/build-app.sh and ../shared/device/pack-gpu-runtime.sh):
#   bash tools/device/build-app.sh tools/bench/src/{train-bench,phase-bench,forward-1b,runtime-probe,fused-check,table,decode-probe,random-checkpoint,gemm-probe,kprof}.ts \
#        packages/generate/bench/generate-bench.ts apps/cache-latents/src/main.ts=cache-latents   # here
#   bash tools/bench/run-gpu.sh [anchors] [core] [train] [train-torch] [gen] [7b] [7b-torch] [7b-gen] [7b-cache] \
#        [check] [compile] [tiles] [flash] [flash-quick] [p1-quick] [kprof] [host] [ratios] [launch] [lora] [p1] [p2] [static] [7b-latent] [gemm] [profile-1b] [ckpt7] > bench.log   # there
#   node /root/app/dist/table.mjs bench.log
# (no argument: train, train-torch and gen; 7b: the DeepSeek-R1-Distill-Qwen-7B-shape phase steps and full
# fine-tuning; 7b-torch: their PyTorch/PEFT anchors; 7b-gen: generation at 7B beside HF; 7b-cache:
# cache-latents at 7B through the app; check: fused-check alone; lora, p1, p2, profile-1b: a LoRA / phase comparison
# and per-node GPU profiles (CUDA_LAUNCH_BLOCKING=1); static: the 1B steps at fixed shapes; flash: FlashAttention's GPU check and the steps with it; launch: session 12's node reductions and a host-time profile; 7b-latent: latent generation at 7B; gemm: ORT's Gemm vs torch.matmul; ckpt7: the 7B checkpoints written on the host, for a second lane).
# Ours and the PyTorch anchor (tools/reference/bench_torch.py) run on the same GPU of one lease, one after
# another, on identical configs (tools/bench/lanes-gpu.sh runs sections as lanes, one per GPU); each
# command's peak GPU memory is sampled with nvidia-smi on PEAK_GPU (default 0).
set -u
A=${APP_DIST:-/root/app/dist}
M=/tmp/mem-${PEAK_GPU:-0}.txt
peak() { rm -f $M; (while true; do env -u CUDA_VISIBLE_DEVICES nvidia-smi -i ${PEAK_GPU:-0} --query-gpu=memory.used --format=csv,noheader,nounits >> $M; sleep 0.2; done) & local mp=$!; "$@"; local rc=$?; kill $mp; echo "PEAK $(sort -n $M | tail -1) MiB rc=$rc :: $*"; }
want() { [ $# -eq 0 ] && return 0; for w in "${SECTIONS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
SECTIONS=("$@"); [ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(train train-torch gen)
# kprof (tools/bench/kprof, CUPTI): kprof_setup finds the recorder and CUPTI; kp TAG CMD runs CMD under it (its
# records in /root/kp/TAG.PID); kps TAG... summarises them with dist/kprof.mjs.
kprof_setup() {
  KP=/root/app/kprof/libkprof.so
  # The CUPTI of PyTorch's own CUDA wheels (one copy per process: torch loads that one too), else any on the machine.
  CUPTI=${KPROF_CUPTI:-$(python3 -c "import glob, os, nvidia; print((sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], '**', 'libcupti.so*'), recursive=True)) + [''])[0])" 2>/dev/null)}
  [ -n "$CUPTI" ] || CUPTI=$(find / -name 'libcupti.so*' -not -path '/proc/*' 2>/dev/null | head -1)
  echo "KPROF cupti=$CUPTI"; mkdir -p /root/kp
}
kp() { local tag=$1; shift; rm -f /root/kp/$tag.*; KPROF_OUT=/root/kp/$tag KPROF_CUPTI=$CUPTI CUDA_INJECTION64_PATH=$KP "$@" > /tmp/kp.log 2>&1; local rc=$?
  grep -E '^BENCH|kprof' /tmp/kp.log; [ $rc -eq 0 ] || { echo "KPROF $tag rc=$rc :: $*"; tail -5 /tmp/kp.log; }
  echo "PEAK  MiB rc=$rc :: traced: $*"; }   # no peak under the recorder; log-to-jsonl.py marks these records traced
kps() { local args=() f; for t in "$@"; do f=$(ls -S /root/kp/$t.* 2>/dev/null | head -1); [ -n "$f" ] && args+=("$f=$t") || echo "KPROF $t: no records file"; done
  [ ${#args[@]} -gt 0 ] && node $A/kprof.mjs "${args[@]}" ${KPROF_ARGS:-}; }
if want anchors; then
# The strongest PyTorch anchors of the issue-18/20 comparisons in one short section (a lease short of time).
for r in bf16-fused bf16-fused-compile; do peak python3 tools/reference/bench_torch.py --which train --recipes $r --steps 10; done
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
for r in peft-fused peft-fused-ckpt; do peak python3 tools/reference/bench_torch.py --which lora7b --recipes $r --steps 5; done
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
peak python3 tools/reference/bench_torch.py --which train7b --recipes bf16-fused-ckpt --steps 3
fi
if want compile; then
# The compiled PyTorch 1B full step alone (issue 18 asks its ratio stated), for a lane's first minutes while Node arrives.
peak python3 tools/reference/bench_torch.py --which train --recipes bf16-fused-compile --steps 10
fi
if want core; then
# Ours beside the anchors section: the 1B full and LoRA steps, the 7B phase steps and 7B full fine-tuning.
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16  # the base kept in bf16, as the phase apps and PEFT keep it
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu,ce  # ablation: the LoRA dropout unfused
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16
peak node $A/train-bench.mjs --device cuda --model r1-distill-qwen-7b --which train --batch 8 --seq 512 --steps 3 --params bfloat16 --recompute layers
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --params bfloat16
fi
if want train; then
node $A/fused-check.mjs | grep -E 'time|done|"ok":false'   # the fused kernels: CUDA vs CPU, then timings
# (the RMSNorm and SwiGLU ablations were measured on 2026-12-04, h200-2026-12-04.jsonl: --fused lists them)
if ! want core; then  # core already ran these two
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10
fi
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu,dropout  # ablation: the LM-head cross-entropy unfused
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu,dropout  # ablation: the same, LoRA
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused optimizer,softmax,rmsnorm,swiglu,dropout,ce,copies  # ablation: AdamW writes the 16-bit weight copies (opt-in)
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --in-place false  # ablation: double-buffered masters and moments (in place is the default)
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --in-place false
want core || peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --params bfloat16  # PyTorch's bf16 recipe (bf16 params + moments), beside bench_torch's bf16-fused
# Activation recomputation per layer (Trainer.recompute 'layers'): the same step (time, peak), then a batch
# that 'none' may not fit.
peak node $A/train-bench.mjs --device cuda --which train,lora --batch 8 --seq 512 --steps 10 --recompute layers
peak node $A/train-bench.mjs --device cuda --which train --batch 16 --seq 512 --steps 10 --recompute layers
peak node $A/phase-bench.mjs --device cuda --batch 8 --steps 5 --frozen bfloat16
fi
if want train-torch; then
# The PyTorch anchors, one recipe per command so each PEAK line is that recipe's (bench_torch.py lists them).
for r in bf16 bf16-fused bf16-fused-compile fp32master-fused fp32master-fused-compile; do
  peak python3 tools/reference/bench_torch.py --which train --recipes $r --steps 10; done
for r in peft peft-fused; do peak python3 tools/reference/bench_torch.py --which lora --recipes $r --steps 10; done
fi
if want gen; then
# Generation (issue 19): the static-cache engine with CUDA graphs (ORT's GroupQueryAttention; DECODE_ATTENTION
# adds latent_sft.DecodeAttention), explicit then latent mode (128 soft embeddings, then 128 answer tokens) on
# one loaded engine, the explicit run's greedy tokens checked against HF's teacher-forced argmax, beside HF
# generate and HF static cache + torch.compile.
peak node $A/forward-1b.mjs /root/fwd --device cuda --seq 128
G="node $A/generate-bench.mjs --model /root/fwd/model --batch 64 --prompt-len 128 --new-tokens 256 --device cuda --dtype bfloat16"
for da in ${DECODE_ATTENTION:-gqa}; do   # DECODE_ATTENTION="gqa fused": also our kernel (session 9: slower than GQA)
  peak $G --engine cuda-graph --decode-attention $da --mode explicit,latent --latent 128 --latent-answer 128 --dump /root/gen-cg-$da.json
  python3 tools/reference/gen_check.py /root/gen-cg-$da.json /root/fwd/model   # our greedy tokens vs HF's argmax, teacher-forced
done
peak $G --engine cuda-graph --mode latent --latent 128 --latent-answer 128 --feed hidden   # latent mode feeding the last hidden state
peak $G --engine cuda-graph --topk ops   # ablation: ONNX TopK + standard ops instead of latent_sft.VocabTopK
for r in hf-generate hf-static-compile; do peak python3 tools/reference/bench_torch.py --which gen --recipes $r; done
# Diagnostics: per-op and per-node GPU times of the decode step (each launch waits for its kernel), and
# attention vs matmuls of one decode step.
CUDA_LAUNCH_BLOCKING=1 $G --engine fixed --new-tokens 32 --profile /root/gen-prof | grep -E 'BENCH.*profile'
[ -n "${GEN_PROBE:-}" ] && node $A/decode-probe.mjs --device cuda --dtype bfloat16 --batch 64 --capacity 512
fi
if want 7b; then
# DeepSeek-R1-Distill-Qwen-7B shape (issue 20): our phase-2 and phase-1 encoder steps, then full fine-tuning.
# The frozen bases stored once in bf16 (phases' frozenDtype, what the phase apps use with bf16 compute).
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16
# Full fine-tuning at 7B: the bf16 recipe (bf16 parameters + moments, in place: ~61 GB of state) with
# recomputation, beside PyTorch's (7b-torch: bf16 parameters, fused AdamW, checkpointing on and off).
peak node $A/train-bench.mjs --device cuda --model r1-distill-qwen-7b --which train --batch 8 --seq 512 --steps 3 --params bfloat16 --recompute layers
# Where phase 2's step goes (session 7: 0.52x PEFT at its tokens per row while the 1B LoRA step is 1.05x): ORT's kernel time by op.
node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 --profile /root/p2prof | grep -E 'profile'
# Recomputation per layer (PEFT's peft-fused-ckpt is the gradient-checkpointing anchor): phase 1 at batch 4, then 8.
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16 --recompute layers
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 --recompute layers
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 8 --steps 6 --frozen bfloat16 --recompute layers
peak node $A/train-bench.mjs --device cuda --model r1-distill-qwen-7b --which train --batch 8 --seq 512 --steps 3 --params bfloat16
fi
if want 7b-gen; then
while [ -f /root/q7.writing ]; do sleep 5; done   # a ckpt7 lane is writing the checkpoints
# Generation at 7B (issue 20): a random bf16 checkpoint of the shape, explicit and latent decoding at batch 32
# (128-token prompts; latent: 64 soft embeddings then 64 answer tokens), beside HF generate on the same folder.
[ -f /root/q7/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7 --model r1-distill-qwen-7b --tokenizer qwen3
G7="node $A/generate-bench.mjs --model /root/q7 --batch 32 --prompt-len 128 --device cuda --dtype bfloat16 --engine cuda-graph"
peak $G7 --new-tokens 128   # (one mode per command: their cache capacities differ, 256 and 512, so one process would hold two fixed-shape sessions)
peak $G7 --mode latent --latent 64 --new-tokens 64
peak python3 tools/reference/bench_torch.py --which gen --recipes hf-generate --gen-model /root/q7 --gen-batch 32 --gen-new 128
fi
if want 7b-torch; then
# The PyTorch + PEFT anchors of the 7b section: LoRA r 64 (checkpointing off and on), the same at phase 2's
# tokens per row (96 + 3 + 48 + 3 + 16 = 166 -> 168), full fine-tuning in bf16 (checkpointing on and off).
for r in peft-fused peft-fused-ckpt; do peak python3 tools/reference/bench_torch.py --which lora7b --recipes $r --steps 5; done
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
for r in bf16-fused-ckpt bf16-fused; do peak python3 tools/reference/bench_torch.py --which train7b --recipes $r --steps 3; done
fi
if want 7b-cache; then
while [ -f /root/q7.writing ]; do sleep 5; done
# cache-latents at 7B through the app (issue 20), in bf16 (--compute: the weights read and uploaded as stored): a random step-1 encoder (vocabulary V + 1) over 256
# GSM8k-Aug training examples, teachers scored by the decoder's embedding (/root/q7 of the 7b-gen section).
[ -f /root/q7/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7 --model r1-distill-qwen-7b --tokenizer qwen3
[ -f /root/q7enc/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7enc --model r1-distill-qwen-7b --tokenizer qwen3 --encoder
rm -rf /root/cache7
peak node $A/cache-latents.mjs --encoder /root/q7enc --decoder /root/q7 --data.source gsm8k-aug --data.count 256 --data.dataDir ${DATA_DIR:-data} --batchSize 16 --chunkSize 64 --device cuda --compute bfloat16 --out /root/cache7
fi
if want train; then node $A/runtime-probe.mjs --device cuda; fi
if want check; then
node $A/fused-check.mjs ${CHECK_ONLY:+--only $CHECK_ONLY} | grep -E 'time|done|"ok":false'   # the fused kernels: CUDA vs CPU, then timings (CHECK_ONLY=a,b: some)
fi
if want flash; then
# FlashAttention (FusedParts.attention, opt-in until this section has run): its kernels' GPU check (CUDA vs CPU)
# and time, then the 1B LoRA and full steps and phase 2 at 1B and 7B without and with it, beside the PEFT and
# PyTorch anchors. The BENCH lines' losses of each pair must agree within bf16 rounding.
node $A/fused-check.mjs --only flash-attention,flash-time > /tmp/flash-check.log; FLASH_RC=$?
grep -E 'flash|done' /tmp/flash-check.log; echo "FLASH-CHECK rc=$FLASH_RC"
[ $FLASH_RC -eq 0 ] || echo "FLASH-CHECK failed: the runs with attention below are not valid"
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
for f in optimizer,softmax,rmsnorm,swiglu,dropout,ce optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention; do peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 --fused $f; done
peak python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 10
for f in optimizer,softmax,rmsnorm,swiglu,dropout,ce optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention; do peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused $f; done
for a in "" --attention; do peak node $A/phase-bench.mjs --device cuda --which phase2 --batch 8 --steps 5 --frozen bfloat16 $a; done
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
for a in "" --attention; do peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 $a; done
fi
if want flash-quick; then
# A short lease's flash: the 1B full step beside PyTorch's eager bf16 fused-AdamW recipe, default and with the
# attention and RoPE fused, in both precision recipes (issue 18's criterion; the checks ran in `check`).
peak python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 10
for f in optimizer,softmax,rmsnorm,swiglu,dropout,ce optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention,rope; do peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused $f; done
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --params bfloat16 --fused optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention,rope
fi
if want p1-quick; then
# A short lease's p1: the 7B phase-1 step beside PEFT at 512 tokens per row, default and with attention and RoPE fused.
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5
for a in "" "--attention --rope"; do peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16 $a; done
fi
if want kprof; then
# GPU kernel time per step measured by the GPU (CUPTI, tools/bench/kprof): ours beside PyTorch / PEFT on the same
# steps, by category and kernel, with the GPU's idle time per step (is the step GPU- or host-bound, and where does
# its GPU time go). One process per run; its records go to /root/kp/TAG.PID, summarised by dist/kprof.mjs.
kprof_setup
# Step windows: train-bench, phase-bench and bench_torch run 3 warm-up steps; --skip 2 leaves the timed steps (the
# first optimizer run only opens the first window). The BENCH lines carry the window counts; kprof.mjs also cuts each
# step's GPU idle time into its gaps (many short ones: launch-bound; few long ones: the host blocked).
# FlashAttention's kernels alone (one window: the whole process), beside PyTorch's SDPA at the same shapes.
if [ -z "${KPROF_NOFLASH:-}" ]; then   # KPROF_NOFLASH=1: the steps only
kp flash node $A/fused-check.mjs --only flash-time
kp attn-torch python3 tools/reference/bench_torch.py --which attn
KPROF_ARGS=--marker= kps flash attn-torch
fi
export KPROF_ARGS="--skip 2"
kp p2-ours node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16
kp p2-peft python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
kps p2-ours p2-peft
kp p1-ours node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16
kp p1-peft python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5
kps p1-ours p1-peft
kp lora-ours node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 5 --frozen bfloat16
kp lora-peft python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 5
kps lora-ours lora-peft
kp full-ours node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 5
kp full-torch python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 5
kps full-ours full-torch
fi
if want tiles; then
# Session 16: FlashAttention with the tile map (the models' causal mask loaded on the diagonal tiles only, the tiles
# above skipped) and RMSNormGrad summing its dW partials itself: the GPU checks (CUDA vs CPU, the models' 0 / MASK_MIN
# masks included; RMSNorm) and the kernels' time (FlashAttention's also beside SDPA's, kprof), then the untraced 1B full step in both precision recipes with the attention and RoPE fused, beside
# eager bf16 + fused AdamW and fp32 masters + fused AdamW (torch.compile: the `compile` section, run before this one
# in the same lane while the runtime uploads); then the 1B LoRA step beside PEFT; last,
# kprof of the bf16 full step beside PyTorch's (what stands between it and the compiled recipe).
node $A/fused-check.mjs --only flash-attention,rmsnorm,flash-time,kernel-time > /tmp/flash-check.log; FLASH_RC=$?
grep -E 'flash|rmsnorm|done' /tmp/flash-check.log; echo "FLASH-CHECK rc=$FLASH_RC"
[ $FLASH_RC -eq 0 ] || echo "FLASH-CHECK failed: the runs with attention below are not valid"
kprof_setup
kp flash node $A/fused-check.mjs --only flash-time
kp attn-torch python3 tools/reference/bench_torch.py --which attn
KPROF_ARGS=--marker= kps flash attn-torch
F=optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention,rope
for rep in 1 2; do   # the criterion's pair twice, interleaved (how much one run moves)
  peak python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 10
  peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --params bfloat16 --fused $F
done
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10 --fused $F
peak python3 tools/reference/bench_torch.py --which train --recipes fp32master-fused --steps 10
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 --fused $F
export KPROF_ARGS="--skip 2"
kp full-ours node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 5 --params bfloat16 --fused $F
kp full-torch python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 5
kps full-ours full-torch
fi
if want ratios; then
# Untraced step ratios of issues 18 and 20 (one command each, each with its own peak): 7B phase 2 and phase 1
# beside PEFT, the 1B LoRA step beside PEFT, the 1B full step beside eager bf16 + fused AdamW.
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16
peak python3 tools/reference/bench_torch.py --which train --recipes bf16-fused --steps 10
peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
fi
if want host; then
# The host's share of a step (session 14: the GPU idled 33-59 % of the LoRA and phase steps): 7B phase 2 and 1B
# phase 2 with --narrow (the same graph node for node, head dim 8: the GPU's work is small, so the step time is
# about the host's), under kprof (idle cut into gaps: launching vs blocked) and untraced (host_ms: Trainer.step's
# time outside its runs).
kprof_setup
for m in r1-distill-qwen-7b llama-3.2-1b; do
  peak node $A/phase-bench.mjs --device cuda --model $m --which phase2 --batch 8 --steps 6 --frozen bfloat16 --narrow
  rm -f /root/kp/narrow-$m.*; KPROF_OUT=/root/kp/narrow-$m KPROF_CUPTI=$CUPTI CUDA_INJECTION64_PATH=$KP node $A/phase-bench.mjs --device cuda --model $m --which phase2 --batch 8 --steps 6 --frozen bfloat16 --narrow | grep '^BENCH'
  echo "PEAK  MiB rc=0 :: traced: phase-bench $m --narrow"
  node $A/kprof.mjs "$(ls -S /root/kp/narrow-$m.* | head -1)=narrow-$m" --skip 2
done
fi
if want launch; then
# Session 12's node reductions (the step graphs with fewer nodes: dropout tables read in place, HashWords, one
# AdamWMulti and one CastMulti) and the question behind them: is a step bound by ORT launching its nodes? 7B phase 2
# and the 1B LoRA step beside PEFT: the default; --single-adamw (one AdamW and one Cast per parameter again);
# with the attention and RoPE fused and the shapes fixed (the fewest nodes); then an ORT profile WITHOUT
# CUDA_LAUNCH_BLOCKING, whose node times are host times: their sum per run against the step time says how
# much of the step the host spends launching. --nodes '' first prints each step graph's node count.
node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --frozen bfloat16 --nodes '' | grep '^NODES'
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
for a in "" --single-adamw "--attention --rope --static-shapes"; do peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 $a; done
node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 --profile /root/p2host | grep -E 'profile'
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
for f in optimizer,softmax,rmsnorm,swiglu,dropout,ce optimizer,softmax,rmsnorm,swiglu,dropout,ce,single-adamw; do peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 --fused $f; done
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 --fused optimizer,softmax,rmsnorm,swiglu,dropout,ce,attention,rope --static-shapes
node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 3 --frozen bfloat16 --profile /root/lorahost | grep -E 'profile'
fi
if want lora; then
# Issue 18's LoRA step (1.2x PEFT asked), the base in bf16 as PEFT keeps it: the fused seeded dropout (default)
# and without it, beside PEFT; then per-node GPU times of the step.
peak python3 tools/reference/bench_torch.py --which lora --recipes peft-fused --steps 10
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16
peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 --fused optimizer,softmax,rmsnorm,swiglu,ce
CUDA_LAUNCH_BLOCKING=1 node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 3 --frozen bfloat16 --profile /root/lora-prof | grep -E 'profile'
fi
if want p2; then
# Phase 2 at 7B beside PEFT at its tokens per row, then per-node GPU times of its step (is the fixed cost on the GPU?).
peak python3 tools/reference/bench_torch.py --which lora7b --recipes peft-fused --steps 5 --seq 168
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16
CUDA_LAUNCH_BLOCKING=1 node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase2 --batch 8 --steps 6 --frozen bfloat16 --profile /root/p2prof | grep -E 'profile'
fi
if want p1; then
# Phase 1 (encoder step) at 7B beside PEFT (512 tokens/row, checkpointing off and on), then per-node GPU times of its step.
for r in peft-fused peft-fused-ckpt; do peak python3 tools/reference/bench_torch.py --which lora7b --recipes $r --steps 5; done
peak node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16
CUDA_LAUNCH_BLOCKING=1 node $A/phase-bench.mjs --device cuda --model r1-distill-qwen-7b --which phase1 --batch 4 --steps 6 --frozen bfloat16 --profile /root/p1prof | grep -E 'profile'
fi
if want static; then
# Trainer.batchShapes: the 1B LoRA and phase-2 steps with the step graph at the batch's fixed shapes beside the
# dynamic-shape graph, in one lane; the BENCH lines' losses must be equal.
for st in "" --static-shapes; do peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10 --frozen bfloat16 $st; done
for st in "" --static-shapes; do peak node $A/phase-bench.mjs --device cuda --which phase2 --batch 8 --steps 5 --frozen bfloat16 $st; done
fi
if want 7b-latent; then
while [ -f /root/q7.writing ]; do sleep 5; done   # a ckpt7 lane is writing the checkpoints
# Latent generation at 7B (issue 20): batch 32, 128-token prompts, 64 soft embeddings then 64 answer tokens.
[ -f /root/q7/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7 --model r1-distill-qwen-7b --tokenizer qwen3
peak node $A/generate-bench.mjs --model /root/q7 --batch 32 --prompt-len 128 --device cuda --dtype bfloat16 --engine cuda-graph --mode latent --latent 64 --new-tokens 64
fi
if want gemm; then
# ORT's CUDA Gemm against torch.matmul on the training steps' products (gemm-probe.ts's shapes), same lane.
peak python3 tools/reference/bench_torch.py --which gemm
peak node $A/gemm-probe.mjs --device cuda --op gemm,matmul
fi
if want profile-1b; then
# Per-node GPU times of the default 1B full step (issue 18: what stands between it and the compiled recipe).
CUDA_LAUNCH_BLOCKING=1 node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 3 --profile /root/train-prof | grep -E 'profile'
fi
if want ckpt7; then
# Host only: writes the 7B checkpoints of 7b-gen and 7b-cache while another lane uses the GPU (they wait for it).
touch /root/q7.writing
[ -f /root/q7/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7 --model r1-distill-qwen-7b --tokenizer qwen3
[ -f /root/q7enc/tokenizer.json ] || peak node $A/random-checkpoint.mjs /root/q7enc --model r1-distill-qwen-7b --tokenizer qwen3 --encoder
rm -f /root/q7.writing
fi
