// Device-resident ONNX Runtime: sessions whose inputs and outputs are tensors that stay in device
// memory (CUDA, or host memory on CPU sessions: the same code path) across runs. Only what a caller
// uploads or downloads crosses the host boundary, and every such byte is counted (transferStats).
//
// A training step binds its batch and state tensors to an IO binding once, runs, and swaps the
// double-buffered state (DoubleBuffer): the step graph reads state A and writes state B, the next
// step reads B and writes A. Tensors free their memory on release(); a FinalizationRegistry frees
// those that are dropped unreleased.
import { inputError } from '@latent-sft/core';
import {
  loadNative,
  type NativeBinding,
  type NativeSession,
  type NativeTensor,
  type NativeValueInfo,
  type OrtInfo,
  type TransferStats,
} from './native.js';
import { type Device, type DType, type HostTensor, type SessionOptions, dataCtor } from './session.js';
import { addStateModel } from './test-models.js';

/** The typed array a dtype travels in (bool as 0/1 bytes, float16/bfloat16 as raw bits). */
export type TypedData = HostTensor['data'];


const dtypeNames = Object.keys(dataCtor) as DType[];

function isDType(s: string): s is DType {
  return (dtypeNames as string[]).includes(s);
}

function checkDims(field: string, dims: readonly number[]): void {
  if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw inputError({ field }, `dims must be non-negative integers, got [${String(dims)}]`);
  }
}

function fmt(dims: readonly number[], symbols?: readonly string[]): string {
  return `[${dims.map((d, i) => (d < 0 ? symbols?.[i] || '?' : String(d))).join(', ')}]`;
}

function toDevice(loc: { kind: 'cpu' | 'cuda'; deviceId?: number }): Device {
  return loc.kind === 'cuda' ? { kind: 'cuda', deviceId: loc.deviceId ?? 0 } : { kind: 'cpu' };
}

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

// Frees tensors that were dropped without release(); the held value is the native tensor.
const leakRegistry = new FinalizationRegistry<NativeTensor>((t) => {
  if (!t.released) t.release();
});

/** A tensor in device memory (CUDA or CPU). Create with `session.alloc`, `session.upload` or `allocCpu`. */
export class DeviceTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Element count. */
  readonly size: number;
  readonly byteSize: number;
  readonly device: Device;
  private native: NativeTensor | undefined;

  /** @internal Wraps a native tensor; use the factories. */
  constructor(native: NativeTensor) {
    const info = native.info();
    if (!isDType(info.dtype)) throw new Error(`unsupported tensor dtype '${info.dtype}'`);
    this.dtype = info.dtype;
    this.dims = Object.freeze([...info.dims]);
    this.size = info.dims.reduce((a, b) => a * b, 1);
    this.byteSize = info.byteSize;
    this.device = toDevice(info.location);
    this.native = native;
    leakRegistry.register(this, native, this);
  }

  /** True after release(). */
  get released(): boolean {
    return this.native === undefined;
  }

  /** @internal The native tensor; throws a one-line error after release. */
  handle(field = 'tensor'): NativeTensor {
    if (this.native === undefined) {
      throw inputError({ field }, `device tensor ${this.dtype}${fmt(this.dims)} was released`);
    }
    return this.native;
  }

  /** Copies host data in; `data` must be the dtype's typed array with exactly `size` elements. */
  upload(data: TypedData): void {
    const ctor = dataCtor[this.dtype];
    if (!(data instanceof ctor)) {
      throw inputError({ field: 'upload' }, `dtype ${this.dtype} needs ${ctor.name} data, got ${data?.constructor?.name ?? typeof data}`);
    }
    if (data.length !== this.size) {
      throw inputError({ field: 'upload' }, `${this.dtype}${fmt(this.dims)} holds ${this.size} elements, data has ${data.length}`);
    }
    this.handle('upload').upload(data);
  }

  /** Copies the tensor to a new host typed array. */
  download(): TypedData {
    const out = new dataCtor[this.dtype](this.size);
    this.handle('download').download(out);
    return out;
  }

  /** Copies the tensor into an existing host typed array of the right type and length. */
  downloadInto(out: TypedData): void {
    const ctor = dataCtor[this.dtype];
    if (!(out instanceof ctor) || out.length !== this.size) {
      throw inputError({ field: 'download' }, `${this.dtype}${fmt(this.dims)} needs a ${ctor.name} of ${this.size} elements`);
    }
    this.handle('download').download(out);
  }

  /** Downloads as a HostTensor. */
  toHost(): HostTensor {
    return { dtype: this.dtype, dims: [...this.dims], data: this.download() };
  }

  /** Copies another tensor's contents in (same dtype and element count; device to device when both are). */
  copyFrom(src: DeviceTensor): void {
    if (src.dtype !== this.dtype || src.size !== this.size) {
      throw inputError({ field: 'copyFrom' }, `source ${src.dtype}${fmt(src.dims)} does not match target ${this.dtype}${fmt(this.dims)}`);
    }
    this.handle('copyFrom').copyFrom(src.handle('copyFrom source'));
  }

  /** Frees the device memory now (a binding still holding it keeps it until rebound). Safe to call twice. */
  release(): void {
    const n = this.native;
    if (n === undefined) return;
    this.native = undefined;
    leakRegistry.unregister(this);
    n.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** Allocates a zeroed tensor in CPU memory (no session needed). */
export function allocCpu(dtype: DType, dims: readonly number[]): DeviceTensor {
  if (!isDType(dtype)) throw inputError({ field: 'dtype' }, `unknown dtype '${String(dtype)}' (one of ${dtypeNames.join(', ')})`);
  checkDims('dims', dims);
  return new DeviceTensor(loadNative().allocateCpu(dtype, dims));
}

function checkHostData(t: HostTensor): void {
  const ctor = dataCtor[t.dtype];
  if (ctor === undefined) throw inputError({ field: 'dtype' }, `unknown dtype '${String(t.dtype)}' (one of ${dtypeNames.join(', ')})`);
  checkDims('dims', t.dims);
}

/** Copies a HostTensor into a new CPU-memory device tensor. */
export function uploadCpu(t: HostTensor): DeviceTensor {
  checkHostData(t);
  const d = allocCpu(t.dtype, t.dims);
  d.upload(t.data);
  return d;
}

/** An ONNX Runtime session whose inputs and outputs are bound to device tensors. */
export class DeviceSession {
  readonly device: Device;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  private native: NativeSession | undefined;

  private constructor(native: NativeSession, device: Device) {
    this.native = native;
    this.device = device;
    const freeze = (v: NativeValueInfo): ValueInfo => Object.freeze({ ...v, dims: Object.freeze(v.dims), symbols: Object.freeze(v.symbols) });
    this.inputs = Object.freeze(native.inputs().map(freeze));
    this.outputs = Object.freeze(native.outputs().map(freeze));
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
      deviceId: device.kind === 'cuda' ? device.deviceId ?? 0 : 0,
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
    const v = this.inputs.find((i) => i.name === name);
    if (v === undefined) throw inputError({ field: `input '${name}'` }, `no such input (inputs: ${this.inputs.map((i) => i.name).join(', ')})`);
    return v;
  }

  /** The model output called `name`; throws listing the outputs when there is none. */
  output(name: string): ValueInfo {
    const v = this.outputs.find((o) => o.name === name);
    if (v === undefined) throw inputError({ field: `output '${name}'` }, `no such output (outputs: ${this.outputs.map((o) => o.name).join(', ')})`);
    return v;
  }

  /** Allocates a zeroed tensor in this session's device memory (CUDA memory for CUDA sessions). */
  alloc(dtype: DType, dims: readonly number[]): DeviceTensor {
    if (!isDType(dtype)) throw inputError({ field: 'dtype' }, `unknown dtype '${String(dtype)}' (one of ${dtypeNames.join(', ')})`);
    checkDims('dims', dims);
    return new DeviceTensor(this.handle().allocate(dtype, dims));
  }

  /** Allocates a tensor in this session's device memory and uploads `t` into it. */
  upload(t: HostTensor): DeviceTensor {
    checkHostData(t);
    const d = this.alloc(t.dtype, t.dims);
    try {
      d.upload(t.data);
    } catch (e) {
      d.release();
      throw e;
    }
    return d;
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

function checkAgainst(kind: 'input' | 'output', info: ValueInfo, t: DeviceTensor): void {
  const field = `${kind} '${info.name}'`;
  t.handle(field);
  if (info.dtype !== t.dtype) throw inputError({ field }, `tensor dtype ${t.dtype} does not match the model's ${info.dtype}`);
  const fits = info.dims.length === t.dims.length && info.dims.every((d, i) => d < 0 || d === t.dims[i]);
  if (!fits) throw inputError({ field }, `tensor dims ${fmt(t.dims)} do not match the model's ${fmt(info.dims, info.symbols)}`);
}

/** Inputs and outputs of one session bound to device tensors, checked against the model. */
export class DeviceBinding {
  readonly session: DeviceSession;
  private native: NativeBinding | undefined;
  private readonly boundOutputs = new Map<string, DeviceTensor>();

  /** @internal Use `session.createBinding()`. */
  constructor(session: DeviceSession, native: NativeBinding) {
    this.session = session;
    this.native = native;
  }

  /** @internal */
  handle(): NativeBinding {
    if (this.native === undefined) throw inputError({ field: 'binding' }, 'IO binding was released');
    return this.native;
  }

  /** Binds a model input to a tensor (dtype and fixed dims must match the model). */
  bindInput(name: string, t: DeviceTensor): this {
    checkAgainst('input', this.session.input(name), t);
    this.handle().bindInput(name, t.handle(`input '${name}'`));
    return this;
  }

  /** Binds a model output to a preallocated tensor, which the run writes in place. */
  bindOutput(name: string, t: DeviceTensor): this {
    checkAgainst('output', this.session.output(name), t);
    this.handle().bindOutput(name, t.handle(`output '${name}'`));
    this.boundOutputs.set(name, t);
    return this;
  }

  /** Lets ORT allocate an output on `device` (default: the session's device) at each run. */
  bindOutputToDevice(name: string, device: Device = this.session.device): this {
    this.session.output(name);
    this.handle().bindOutputToDevice(name, device.kind, device.kind === 'cuda' ? device.deviceId ?? 0 : 0);
    this.boundOutputs.delete(name);
    return this;
  }

  clearInputs(): void {
    this.handle().clearInputs();
  }

  clearOutputs(): void {
    this.handle().clearOutputs();
    this.boundOutputs.clear();
  }

  /** Waits for input copies to the device to finish (ORT SynchronizeBoundInputs). */
  synchronizeInputs(): void {
    this.handle().synchronizeInputs();
  }

  /** Waits for the outputs of the last run to be ready (ORT SynchronizeBoundOutputs). */
  synchronizeOutputs(): void {
    this.handle().synchronizeOutputs();
  }

  /**
   * The outputs of the last run, by name. A preallocated output comes back as the tensor that was
   * bound; an ORT-allocated one as a new DeviceTensor the caller owns (release it when done).
   */
  outputs(): Record<string, DeviceTensor> {
    const out: Record<string, DeviceTensor> = {};
    for (const { name, tensor } of this.handle().outputs()) {
      const bound = this.boundOutputs.get(name);
      if (bound !== undefined && !bound.released) {
        tensor?.release();
        out[name] = bound;
      } else if (tensor !== null) {
        out[name] = new DeviceTensor(tensor);
      }
    }
    return out;
  }

  /** One output of the last run (see outputs()); throws when it is not bound or not yet computed. */
  output(name: string): DeviceTensor {
    const o = this.outputs();
    const t = o[name];
    if (t === undefined) throw inputError({ field: `output '${name}'` }, 'not bound or not computed yet (run the session first)');
    for (const [k, v] of Object.entries(o)) if (k !== name && !this.boundOutputs.has(k)) v.release();
    return t;
  }

  /** Frees the binding; the tensors bound to it are not released. */
  release(): void {
    const n = this.native;
    this.native = undefined;
    this.boundOutputs.clear();
    n?.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * One piece of double-buffered state: the step graph reads `input` and writes `output`. `current`
 * holds the latest value (read by the next step), `next` receives the step's result; swap() after
 * each step exchanges them, so no state is copied.
 */
export class StatePair {
  readonly input: string;
  readonly output: string;
  private a: DeviceTensor;
  private b: DeviceTensor;

  constructor(input: string, output: string, a: DeviceTensor, b: DeviceTensor) {
    if (a.dtype !== b.dtype || a.dims.join(',') !== b.dims.join(',')) {
      throw inputError({ field: `state '${input}'` }, `buffers differ: ${a.dtype}${fmt(a.dims)} vs ${b.dtype}${fmt(b.dims)}`);
    }
    if (a === b) throw inputError({ field: `state '${input}'` }, 'the two buffers must be different tensors');
    this.input = input;
    this.output = output;
    this.a = a;
    this.b = b;
  }

  /** Allocates both buffers in the session's memory, with `init` uploaded into `current`. */
  static create(session: DeviceSession, input: string, output: string, init: HostTensor): StatePair {
    const a = session.upload(init);
    const b = session.alloc(init.dtype, init.dims);
    return new StatePair(input, output, a, b);
  }

  /** The latest state (what the next step reads). */
  get current(): DeviceTensor {
    return this.a;
  }

  /** The buffer the next step writes. */
  get next(): DeviceTensor {
    return this.b;
  }

  /** Binds input -> current and output -> next. */
  bind(binding: DeviceBinding): void {
    binding.bindInput(this.input, this.a);
    binding.bindOutput(this.output, this.b);
  }

  /** Exchanges the buffers after a step: the step's output becomes current. */
  swap(): void {
    [this.a, this.b] = [this.b, this.a];
  }

  release(): void {
    this.a.release();
    this.b.release();
  }
}

/** All double-buffered state of a step graph, swapped and rebound together. */
export class DoubleBuffer {
  readonly pairs: readonly StatePair[];

  constructor(pairs: readonly StatePair[]) {
    const names = new Set<string>();
    for (const p of pairs) {
      for (const n of [p.input, p.output]) {
        if (names.has(n)) throw inputError({ field: `state '${n}'` }, 'named twice in one DoubleBuffer');
        names.add(n);
      }
    }
    this.pairs = Object.freeze([...pairs]);
  }

  /** Binds every pair's input to its current buffer and output to its next buffer. */
  bind(binding: DeviceBinding): void {
    for (const p of this.pairs) p.bind(binding);
  }

  /** Swaps every pair and rebinds (call after each run, before the next). */
  swap(binding?: DeviceBinding): void {
    for (const p of this.pairs) p.swap();
    if (binding !== undefined) this.bind(binding);
  }

  /** The current buffer of the pair whose input is `input`. */
  current(input: string): DeviceTensor {
    const p = this.pairs.find((q) => q.input === input);
    if (p === undefined) throw inputError({ field: `state '${input}'` }, `no such state (states: ${this.pairs.map((q) => q.input).join(', ')})`);
    return p.current;
  }

  release(): void {
    for (const p of this.pairs) p.release();
  }
}

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

/** What `deviceSelfTest` measured. */
export interface SelfTestResult {
  device: Device;
  /** Steps of `state_out = state_in + x` run with device-resident, double-buffered state. */
  steps: number;
  /** Largest |device result - JS result| (0 expected: float32 adds of the same values). */
  maxAbsError: number;
  /** Session creation, in milliseconds. */
  createMs: number;
  /** All steps, in milliseconds. */
  runMs: number;
}

/**
 * Runs a tiny double-buffered graph (`state_out = state_in + x`, float32[2, 8]) for `steps` steps on
 * `device` and compares with JS arithmetic; throws when the session cannot start or a value differs.
 */
export function deviceSelfTest(device: Device, steps = 4, opts: DeviceSessionOptions = {}): SelfTestResult {
  const dims = [2, 8];
  const n = 16;
  const t0 = performance.now();
  const session = DeviceSession.create(addStateModel('float32', dims), { ...opts, device });
  const t1 = performance.now();
  const init = Float32Array.from({ length: n }, (_, i) => i - 4.5);
  const state = new DoubleBuffer([StatePair.create(session, 'state_in', 'state_out', { dtype: 'float32', dims, data: init })]);
  const x = session.alloc('float32', dims);
  const binding = session.createBinding().bindInput('x', x);
  state.bind(binding);
  const expected = Float32Array.from(init);
  try {
    for (let step = 0; step < steps; step++) {
      const xs = Float32Array.from({ length: n }, (_, i) => (i % 5) * 0.25 - step);
      x.upload(xs);
      session.run(binding);
      for (let i = 0; i < n; i++) expected[i] = Math.fround((expected[i] as number) + (xs[i] as number));
      state.swap(binding);
    }
    const got = state.current('state_in').download() as Float32Array;
    let maxAbsError = 0;
    for (let i = 0; i < n; i++) maxAbsError = Math.max(maxAbsError, Math.abs((got[i] as number) - (expected[i] as number)));
    if (!(maxAbsError === 0)) {
      throw new Error(`self-test on ${device.kind}: results differ from JS arithmetic by up to ${maxAbsError}`);
    }
    return { device, steps, maxAbsError, createMs: t1 - t0, runMs: performance.now() - t1 };
  } finally {
    binding.release();
    x.release();
    state.release();
    session.release();
  }
}

/** Native tensor handles alive now (not yet released or collected): a leak probe for training loops. */
export function liveTensorCount(): number {
  return loadNative().liveTensors();
}
