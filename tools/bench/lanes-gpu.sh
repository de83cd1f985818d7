#!/usr/bin/env bash
# Runs sections of run-gpu.sh as lanes, one detached lane per GPU, so that a lease's device time goes to
# runs and not to waiting: the PyTorch-only sections start with the first device call, while the Node
# runtime parts are still being sent, and the sections that need Node wait for it. Ours and the PyTorch
# anchor of one comparison always run in the same lane, on the same GPU, one after the other.
# On the GPU machine, from the repo root:
#   bash tools/bench/lanes-gpu.sh start "train-torch train gen" "7b-torch 7b 7b-gen 7b-cache"
#       copies tools/ and data/ to /root/work (later calls may change the tree) and starts lane i on GPU i
#       (ONE_GPU=1: all lanes on GPU 0, e.g. "check gen" "ckpt7" where ckpt7 only writes files on the host)
#   bash tools/bench/lanes-gpu.sh app        joins the runtime parts, unpacks .device/app.tgz, marks READY
#   bash tools/bench/lanes-gpu.sh poll SECONDS   waits up to SECONDS for the lanes, prints where they are
#   bash tools/bench/lanes-gpu.sh collect    the lane logs (and kprof's records, kp.tgz) into $OUT (then: node dist/table.mjs lane-0.log)
# Two rules learnt the hard way (session 13): keep a `poll` call running at all times (the machine is released
# after ~30 s without a call, and /root with it), and never change /root/work/tools/bench/run-gpu.sh while a lane
# runs: bash reads a script as it goes, so the running section continues at its old offset in the new text.
set -u
MODE=${1:-}
W=/root/work
if [ "$MODE" = start ]; then
  shift
  rm -rf $W && mkdir -p $W/tools && cp -r tools/bench tools/reference $W/tools/ && cp -r data $W/data
  i=0
  for lane in "$@"; do
    g=$i; [ -n "${ONE_GPU:-}" ] && g=0   # ONE_GPU=1: every lane on GPU 0 (a host-only lane beside a GPU one)
    setsid nohup bash -c "
      cd $W; export CUDA_VISIBLE_DEVICES=$g PEAK_GPU=$g DATA_DIR=$W/data PYTHONUNBUFFERED=1
      echo \"LANE $i: $lane (\$(date -u +%T))\"
      for s in $lane; do
        case \$s in train-torch|7b-torch|anchors|compile) ;; *) while [ ! -f /root/app/READY ]; do sleep 5; done; source /root/rt/env.sh ;; esac
        echo \"SECTION \$s start \$(date -u +%T)\"; bash tools/bench/run-gpu.sh \$s; echo \"SECTION \$s end \$(date -u +%T)\"
      done; echo LANE-EXIT" > /root/lane-$i.log 2>&1 < /dev/null &
    i=$((i + 1))
  done
  echo "$i lanes started"; nvidia-smi --query-gpu=index,name,memory.used --format=csv,noheader
fi
if [ "$MODE" = app ]; then
  bash .device/unpack.sh && source /root/rt/env.sh
  rm -rf /root/app && mkdir -p /root/app && tar xzf .device/app.tgz -C /root/app
  cp $ORT_CUDA_PROVIDER_DIR/*.so /root/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
  touch /root/app/READY && echo "app ready: $(ls /root/app/dist | tr '\n' ' ')"
fi
if [ "$MODE" = poll ]; then
  END=$(($(date +%s) + ${2:-0}))
  while [ "$(date +%s)" -lt $END ]; do
    all=1; for f in /root/lane-*.log; do grep -q LANE-EXIT "$f" || all=0; done; [ $all = 1 ] && break
    sleep 10
  done
  for f in /root/lane-*.log; do
    echo "== $f: $(grep -c '^BENCH' "$f") BENCH lines, $(grep -c '^PEAK' "$f") commands, $(grep -c 'rc=[1-9]' "$f") failed"
    grep -E '^(SECTION|LANE-EXIT)' "$f" | tail -2; grep '^PEAK' "$f" | tail -3 | cut -c1-220
  done
  nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader
  [ -n "${OUT:-}" ] && cp /root/lane-*.log "$OUT"/   # what ran so far comes back with every poll
fi
if [ "$MODE" = collect ]; then
  cp /root/lane-*.log "$OUT"/; [ -d /root/kp ] && tar czf "$OUT"/kp.tgz -C /root kp   # kprof's records files too
  ls -la "$OUT"
fi
