// Device sessions: ONNX Runtime sessions of the addon (native/) whose inputs and outputs are device
// tensors bound through an IO binding (device-binding.ts), with the fused custom ops registered; ORT's
// per-node profiler on request (profilePrefix, endProfiling).
import { inputError } from '@latent-sft/core';
import { DeviceBinding } from './device-binding.js';
import { DeviceTensor, allocAndUpload, checkAlloc } from './device-tensor.js';
import { loadNative, type NativeSession, type NativeValueInfo } from './native.js';
import type { Device, DType, HostTensor, SessionOptions } from './session.js';

/** An input or output of a model: dtype (or 'non-tensor'/'onnx-type-N'), dims with -1 for dynamic. */
export interface ValueInfo {
  name: string;
  dtype: DType | string;
  dims: readonly number[];
  /** Names of the dynamic dims ('' when unnamed), parallel to dims. */
  symbols: readonly string[];
}

/** Options of `DeviceSession.create`: those of `Session.create` plus arena and CUDA provider options. */
export interface DeviceSessionOptions extends SessionOptions {
  /** ORT's CPU memory arena (default true). */
  memoryArena?: boolean;
  /** Extra CUDA execution provider options, e.g. `{ gpu_mem_limit: '8589934592' }` (device_id is set from `device`). */
  cudaOptions?: Record<string, string>;
  /** Turns on ORT's per-node profiler; `endProfiling()` writes the JSON trace (path starts with this prefix). */
  profilePrefix?: string;
}

/** An ONNX Runtime session whose inputs and outputs are bound to device tensors. */
export class DeviceSession {
  readonly device: Device;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  private native: NativeSession | undefined;
  // By name: a training step binds a thousand or more state tensors by name (session 14: a linear find per bind
  // was part of the 91 ms a 7B phase-2 Trainer spent rebinding its state on the CPU).
  private readonly inputByName: ReadonlyMap<string, ValueInfo>;
  private readonly outputByName: ReadonlyMap<string, ValueInfo>;

  private constructor(native: NativeSession, device: Device) {
    this.native = native;
    this.device = device;
    const freeze = (v: NativeValueInfo): ValueInfo => Object.freeze({ ...v, dims: Object.freeze(v.dims), symbols: Object.freeze(v.symbols) });
    this.inputs = Object.freeze(native.inputs().map(freeze));
    this.outputs = Object.freeze(native.outputs().map(freeze));
    this.inputByName = new Map(this.inputs.map((v) => [v.name, v]));
    this.outputByName = new Map(this.outputs.map((v) => [v.name, v]));
  }

  /** Loads a model from bytes or a path (a path lets ORT find external-data weight files). */
  static create(model: Uint8Array | string, opts: DeviceSessionOptions = {}): DeviceSession {
    const device: Device = opts.device?.kind === 'cuda' ? { kind: 'cuda', deviceId: opts.device.deviceId ?? 0 } : { kind: 'cpu' };
    if (device.kind === 'cuda' && (!Number.isInteger(device.deviceId) || (device.deviceId ?? 0) < 0)) {
      throw inputError({ field: 'device.deviceId' }, `must be a non-negative integer, got ${String(device.deviceId)}`);
    }
    if (opts.intraOpThreads !== undefined && (!Number.isInteger(opts.intraOpThreads) || opts.intraOpThreads < 1)) {
      throw inputError({ field: 'intraOpThreads' }, `must be a positive integer, got ${opts.intraOpThreads}`);
    }
    const { NativeSession } = loadNative();
    const native = new NativeSession(model, {
      device: device.kind,
      deviceId: device.kind === 'cuda' ? (device.deviceId ?? 0) : 0,
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      deterministic: opts.deterministic ?? false,
      intraOpThreads: opts.intraOpThreads ?? 0,
      memoryArena: opts.memoryArena ?? true,
      enableMemPattern: opts.enableMemPattern ?? true,
      logSeverity: opts.logSeverity ?? 3,
      cudaOptions: opts.cudaOptions ?? {},
      ...(opts.profilePrefix !== undefined ? { profilePrefix: opts.profilePrefix } : {}),
    });
    return new DeviceSession(native, device);
  }

  /** @internal */
  handle(): NativeSession {
    if (this.native === undefined) throw inputError({ field: 'session' }, 'device session was released');
    return this.native;
  }

  /** The model input called `name`; throws listing the inputs when there is none. */
  input(name: string): ValueInfo {
    const v = this.inputByName.get(name);
    if (v === undefined) throw inputError({ field: `input '${name}'` }, `no such input (inputs: ${this.inputs.map((i) => i.name).join(', ')})`);
    return v;
  }

  /** The model output called `name`; throws listing the outputs when there is none. */
  output(name: string): ValueInfo {
    const v = this.outputByName.get(name);
    if (v === undefined) throw inputError({ field: `output '${name}'` }, `no such output (outputs: ${this.outputs.map((o) => o.name).join(', ')})`);
    return v;
  }

  /** Allocates a zeroed tensor in this session's device memory (CUDA memory for CUDA sessions). */
  alloc(dtype: DType, dims: readonly number[]): DeviceTensor {
    checkAlloc(dtype, dims);
    return new DeviceTensor(this.handle().allocate(dtype, dims));
  }

  /** Allocates a tensor in this session's device memory and uploads `t` into it. */
  upload(t: HostTensor): DeviceTensor {
    return allocAndUpload(t, (dtype, dims) => this.alloc(dtype, dims));
  }

  /** A new IO binding over this session. */
  createBinding(): DeviceBinding {
    return new DeviceBinding(this, this.handle().createBinding());
  }

  /** Runs with every input and output taken from the binding; blocks the thread until done. */
  run(binding: DeviceBinding): void {
    this.handle().run(binding.handle());
  }

  /** Runs on the libuv thread pool; do not change the binding until the promise settles. */
  async runAsync(binding: DeviceBinding): Promise<void> {
    await this.handle().runAsync(binding.handle());
  }

  /** Stops ORT's profiler (see `profilePrefix`) and returns the trace file's path. */
  endProfiling(): string {
    return this.handle().endProfiling();
  }

  /** Frees the session (tensors and bindings created from it stay valid until released). */
  release(): void {
    const n = this.native;
    this.native = undefined;
    n?.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
