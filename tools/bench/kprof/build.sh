#!/usr/bin/env bash
# Builds kprof.c (the CUPTI kernel recorder, see its header) into ${1:-.device/kprof}/libkprof.so with gcc against
# the CUDA toolkit's CUPTI headers (CUDA_HOME, else the newest /usr/local/cuda*). CUPTI itself is opened at run time.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
OUT=${1:-$ROOT/.device/kprof}
INC=""
for d in ${CUDA_HOME:+$CUDA_HOME/include $CUDA_HOME/extras/CUPTI/include} $(ls -d /usr/local/cuda*/include /usr/local/cuda*/extras/CUPTI/include 2>/dev/null | sort -rV); do
  [ -f "$d/cupti.h" ] && { INC=$d; break; }
done
[ -n "$INC" ] || { echo "kprof build: no cupti.h found (set CUDA_HOME to a CUDA 13 toolkit)" >&2; exit 1; }
# cuda.h: beside cupti.h in a toolkit's include/, else three levels up from extras/CUPTI/include.
CUDA_INC=$INC; [ -f "$CUDA_INC/cuda.h" ] || CUDA_INC=$(cd "$INC/../../../include" 2>/dev/null && pwd)
[ -f "$CUDA_INC/cuda.h" ] || { echo "kprof build: no cuda.h beside $INC" >&2; exit 1; }
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I"$INC" -I"$CUDA_INC" "$ROOT/tools/bench/kprof/kprof.c" -o "$OUT/libkprof.so.tmp" -ldl -lpthread
mv "$OUT/libkprof.so.tmp" "$OUT/libkprof.so"
echo "kprof build: $OUT/libkprof.so (CUPTI headers: $INC)"
