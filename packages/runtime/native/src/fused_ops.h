// Custom ONNX ops of domain "latent_sft" (fused optimizer kernels), registered on every session the
// addon creates. See fused_ops.cc.
#pragma once

#include <string>
#include <vector>

#include "onnxruntime_cxx_api.h"

namespace latent_sft {

/** The custom-op domain name the graphs use. */
constexpr const char* kDomain = "latent_sft";

/** Adds the "latent_sft" domain (CPU kernels always, CUDA kernels for CUDA sessions) to `so`. */
void addFusedOps(Ort::SessionOptions& so, bool cuda);

/**
 * Whether the CUDA kernels can run here: loads libcuda and NVRTC and compiles the kernels once for
 * device `deviceId`. Returns "" when they can, else the reason (one line).
 */
std::string cudaKernelsStatus(int deviceId);

// Every kernel name the CUDA side loads (the kernels/*.cu files must define each, extern "C").
std::vector<std::string> cudaKernelNames();

// The CUDA source NVRTC compiles: the kernels/*.cu files joined at build time (native/embed-kernels.mjs).
const char* cudaKernelSource();

}  // namespace latent_sft
