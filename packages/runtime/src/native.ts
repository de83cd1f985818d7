// Loads the device addon (native/build/Release/latent_sft_ort.node, built at install by
// native/install.mjs) and types its surface. device.ts is the API over it; nothing else touches it.
// The addon links the libonnxruntime.so.1 of onnxruntime-node, so both share one ORT in the process.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where a tensor lives, as the addon reports it. */
export interface NativeLocation {
  kind: 'cpu' | 'cuda';
  deviceId?: number;
}

/** dtype, dims and size of an allocated tensor. */
export interface NativeTensorInfo {
  dtype: string;
  dims: number[];
  byteSize: number;
  location: NativeLocation;
}

/** A tensor (OrtValue) in CPU or CUDA memory. Byte lengths are checked natively. */
export interface NativeTensor {
  info(): NativeTensorInfo;
  upload(data: ArrayBufferView): void;
  download(into: ArrayBufferView): void;
  copyFrom(src: NativeTensor): void;
  release(): void;
  readonly released: boolean;
}

/** An OrtIoBinding of one session. */
export interface NativeBinding {
  bindInput(name: string, t: NativeTensor): void;
  bindOutput(name: string, t: NativeTensor): void;
  bindOutputToDevice(name: string, kind: 'cpu' | 'cuda', deviceId: number): void;
  clearInputs(): void;
  clearOutputs(): void;
  synchronizeInputs(): void;
  synchronizeOutputs(): void;
  outputs(): Array<{ name: string; tensor: NativeTensor | null }>;
  release(): void;
}

/** An input or output of a model; -1 marks a dynamic dim, whose name (if any) is in `symbols`. */
export interface NativeValueInfo {
  name: string;
  dtype: string;
  dims: number[];
  symbols: string[];
}

/** Options the addon's session constructor reads (every field optional). */
export interface NativeSessionOptions {
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  deterministic?: boolean;
  intraOpThreads?: number;
  memoryArena?: boolean;
  enableMemPattern?: boolean;
  logSeverity?: number;
  cudaOptions?: Record<string, string>;
  /** Enables ORT's profiler; the JSON trace path starts with this prefix. */
  profilePrefix?: string;
}

export interface NativeSession {
  inputs(): NativeValueInfo[];
  outputs(): NativeValueInfo[];
  allocate(dtype: string, dims: readonly number[]): NativeTensor;
  createBinding(): NativeBinding;
  run(binding: NativeBinding): void;
  runAsync(binding: NativeBinding): Promise<void>;
  release(): void;
  endProfiling(): string;
}

/** Bytes and copies moved by upload/download/copyFrom since the last reset (process-wide). */
export interface TransferStats {
  hostToDeviceBytes: number;
  deviceToHostBytes: number;
  deviceToDeviceBytes: number;
  hostToDeviceCopies: number;
  deviceToHostCopies: number;
  deviceToDeviceCopies: number;
}

/** The ORT the addon runs on: version, API version it was compiled for, the .so file, providers. */
export interface OrtInfo {
  version: string;
  apiVersion: number;
  library?: string;
  providers: string[];
}

export interface NativeAddon {
  NativeSession: new (model: Uint8Array | string, options: NativeSessionOptions) => NativeSession;
  allocateCpu(dtype: string, dims: readonly number[]): NativeTensor;
  transferStats(): TransferStats;
  resetTransferStats(): void;
  ortInfo(): OrtInfo;
  liveTensors(): number;
  /** "" when the fused CUDA kernels (latent_sft domain) compile and load for this device, else why not. */
  cudaKernelsStatus(deviceId: number): string;
  /** The fused kernels' CUDA source as embedded at build time, and the kernel names loaded from it. */
  cudaKernels(): { source: string; names: string[] };
}

/** Absolute path of the compiled addon (the same relative place from src/ and dist/). */
export function nativeAddonPath(): string {
  return fileURLToPath(new URL('../native/build/Release/latent_sft_ort.node', import.meta.url));
}

let addon: NativeAddon | undefined;

/** Loads the addon once; throws a one-line error naming the missing file or the load failure. */
export function loadNative(): NativeAddon {
  if (addon !== undefined) return addon;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    throw new Error(`device addon not built: missing ${path}; run \`pnpm --filter @latent-sft/runtime run build:native\``);
  }
  const require = createRequire(import.meta.url);
  try {
    addon = require(path) as NativeAddon;
  } catch (e) {
    const detail = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
    throw new Error(`cannot load the device addon ${path}: ${detail}`, { cause: e });
  }
  return addon;
}
