# The device addon: node-addon-api over the ONNX Runtime C++ API, linked against onnxruntime-node's
# libonnxruntime.so.1. Built by install.mjs, which sets the variables below (see README.md) and first
# writes gen/fused_kernels.gen.h (the CUDA kernels as a string, embed-kernels.mjs).
{
  "variables": {
    "ort_include_dir%": "",
    "ort_lib_dir%": "",
    "ort_rpath%": "",
    "napi_include_dir%": ""
  },
  "targets": [
    {
      "target_name": "latent_sft_ort",
      "sources": ["src/addon.cc", "src/fused_ops.cc", "src/fused_cuda.cc",
                  "src/ops/adamw.cc", "src/ops/sum_squares.cc", "src/ops/masked_softmax.cc", "src/ops/rmsnorm.cc",
                  "src/ops/swiglu.cc", "src/ops/rope.cc", "src/ops/vocab_topk.cc", "src/ops/cross_entropy.cc", "src/ops/after.cc", "src/ops/dropout.cc",
                  "src/ops/decode_attention.cc", "src/ops/flash_attention.cc"],
      "include_dirs": ["<(napi_include_dir)", "<(ort_include_dir)", "gen"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-ffp-contract=off"],
      "ldflags": ["-L<(ort_lib_dir)", "-Wl,-rpath,'<(ort_rpath)'", "-Wl,--enable-new-dtags"],
      "libraries": ["-l:libonnxruntime.so.1", "-ldl"]
    }
  ]
}
