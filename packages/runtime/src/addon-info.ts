// What the addon reports about itself: host<->device transfer counters, live native tensors (a leak
// probe), the ORT build it runs on, and whether the fused CUDA kernels load on a device.
import { loadNative, type OrtInfo, type TransferStats } from './native.js';
import type { Device } from './session.js';

/** Host<->device bytes and copies moved by upload/download/copyFrom since the last reset. */
export function transferStats(): TransferStats {
  return loadNative().transferStats();
}

/** Zeroes the transfer counters. */
export function resetTransferStats(): void {
  loadNative().resetTransferStats();
}

/** The ORT build the device addon runs on (version, .so path, available providers). */
export function ortInfo(): OrtInfo {
  return loadNative().ortInfo();
}

/**
 * Whether the addon's fused kernels (custom ops of domain latent_sft: AdamW, SumSquares) run on
 * `device`: "" when they do, else the reason in one line. CPU kernels are always there; CUDA ones are
 * compiled with NVRTC on first use (libnvrtc.so.13 must be loadable), once per process.
 */
export function fusedKernelsStatus(device: Device): string {
  if (device.kind === 'cpu') return '';
  return loadNative().cudaKernelsStatus(device.deviceId ?? 0);
}

/** Native tensor handles alive now (not yet released or collected): a leak probe for training loops. */
export function liveTensorCount(): number {
  return loadNative().liveTensors();
}
