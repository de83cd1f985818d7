#!/usr/bin/env bash
# The script that ran the Table-1 experiments (docs/results.md) on the GPU machine, which has Python and
# CUDA but no Node: run from the repo root there, after sending the runtime parts of
# ../shared/device/pack-gpu-runtime.sh and the bundle of
#   bash tools/device/build-app.sh tools/pipeline/src/experiment.ts tools/bench/src/{train-bench,table}.ts
# (.device/app.tgz). Modes:
#   TASKS="multiplication gsm8k" bash tools/device/table1-gpu.sh start     unpack, start CUDA MPS if it
#       works, start one detached experiment driver per task (a failed run is retried once at concurrency 3;
#       the driver skips finished stages). A task is a plan name of tools/pipeline/configs/table1/, with
#       an optional `:STAGE[,STAGE]` suffix run as `--only` (those stages and their dependencies), e.g.
#       TASKS="multiplication-official multiplication-4x4:seed-1/eval/cot" (issue 21: the 3x2 plan in the
#       official schedule shape, and the 4x4 plan's CoT-SFT gate; estimates in docs/pipeline.md)
#   bash tools/device/table1-gpu.sh poll SECONDS    wait up to SECONDS for the drivers, print progress
#   bash tools/device/table1-gpu.sh collect         summaries, metrics, configs and table.md into $OUT
#   bash tools/device/table1-gpu.sh bench           the issue-10 benchmark (MPS off first)
TASKS=${TASKS:-multiplication gsm8k}
set -u
name() { echo "${1%%:*}"; }
only() { case $1 in *:*) echo "--only ${1#*:}" ;; esac; }
MODE=$1
setup_env() { source /root/rt/env.sh; if [ -f /root/mps.env ]; then source /root/mps.env; fi; }
if [ "$MODE" = start ]; then
  bash .device/unpack.sh >/dev/null && source /root/rt/env.sh
  rm -rf /root/app && mkdir -p /root/app && tar xzf .device/app.tgz -C /root/app && cp $ORT_CUDA_PROVIDER_DIR/*.so /root/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
  mkdir -p /root/mps /root/mps-log
  export CUDA_MPS_PIPE_DIRECTORY=/root/mps CUDA_MPS_LOG_DIRECTORY=/root/mps-log
  if nvidia-cuda-mps-control -d && python3 -c "import torch; print('mps check', torch.ones(4, device='cuda').sum().item())"; then
    echo "export CUDA_MPS_PIPE_DIRECTORY=/root/mps CUDA_MPS_LOG_DIRECTORY=/root/mps-log" > /root/mps.env; echo MPS on
  else
    echo quit | nvidia-cuda-mps-control 2>/dev/null; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY; rm -f /root/mps.env; echo MPS off
  fi
  setup_env
  cp -r "$PWD/data" /root/data
  cp tools/pipeline/configs/table1/*.json /root/
  (while true; do echo "$(date +%s) $(nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits)" >> /root/gpu.txt; sleep 2; done) > /dev/null 2>&1 &
  for spec in $TASKS; do
    t=$(name "$spec"); o=$(only "$spec")
    setsid nohup bash -c "source /root/rt/env.sh; [ -f /root/mps.env ] && source /root/mps.env; cd /root; node /root/app/dist/experiment.mjs run --plan /root/$t.json --out /root/exp-$t --data-dir /root/data $o > /root/driver-$t.out 2>&1 || node /root/app/dist/experiment.mjs run --plan /root/$t.json --out /root/exp-$t --data-dir /root/data $o --concurrency 3 >> /root/driver-$t.out 2>&1; echo EXIT \$? >> /root/driver-$t.out" > /dev/null 2>&1 < /dev/null &
  done
  sleep 20; ps aux | grep -c "[e]xperiment.mjs"; tail -2 /root/driver-*.out
fi
if [ "$MODE" = poll ]; then
  END=$(( $(date +%s) + $2 ))
  while [ $(date +%s) -lt $END ]; do
    all=1; for spec in $TASKS; do grep -q EXIT /root/driver-$(name "$spec").out || all=0; done; [ $all = 1 ] && break
    sleep 10
  done
  for spec in $TASKS; do t=$(name "$spec"); echo "== $t: $(grep -c '"stage done"' /root/driver-$t.out) done, $(grep -c '"stage failed"' /root/driver-$t.out) failed"; grep '"stage failed"' /root/driver-$t.out | cut -c1-400 | tail -3; grep EXIT /root/driver-$t.out; grep '"stage done"' /root/driver-$t.out | tail -4 | cut -c90-200; done
  tail -1 /root/gpu.txt; nvidia-smi --query-gpu=memory.used --format=csv
fi
if [ "$MODE" = collect ]; then
  for spec in $TASKS; do
    t=$(name "$spec"); D=/root/exp-$t
    (cd $D && find . \( -name summary.json -o -name summary.md -o -name metrics.jsonl -o -name selection.jsonl -o -name config.json -o -name latent.json -o -name manifest.json -o -name table.md -o -name stages.json -o -name training-seeds.json -o -name plan.json -o -name '*.log' \) -not -path '*/checkpoints/*' | tar czf $OUT/exp-$t.tgz -T - configs)
    cp /root/driver-$t.out $OUT/
    cp $D/table.md $OUT/table-$t.md 2>/dev/null
  done
  cp /root/gpu.txt $OUT/
  ls -la $OUT
fi
if [ "$MODE" = bench ]; then
  setup_env
  if [ -f /root/mps.env ]; then echo quit | nvidia-cuda-mps-control; rm -f /root/mps.env; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY; fi
  A=/root/app/dist
  peak() { rm -f /tmp/mem.txt; (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> /tmp/mem.txt; sleep 0.2; done) & local mp=$!; "$@"; local rc=$?; kill $mp; echo "PEAK $(sort -n /tmp/mem.txt | tail -1) MiB rc=$rc :: $*"; }
  { peak node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 10
    peak node $A/train-bench.mjs --device cuda --which lora --batch 8 --seq 512 --steps 10
    peak node $A/phase-bench.mjs --device cuda --batch 8 --steps 5
    peak python3 tools/reference/bench_torch.py --which train --steps 10
    peak python3 tools/reference/bench_torch.py --which lora --steps 10
    node $A/train-bench.mjs --device cuda --which train --batch 8 --seq 512 --steps 4 --profile /root/prof
  } > $OUT/bench.log 2>&1
  ls /root/prof* 2>/dev/null | head
  node /root/app/dist/table.mjs $OUT/bench.log | tee $OUT/bench-table.txt
fi
