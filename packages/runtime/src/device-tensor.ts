// Device tensors: memory in a session's device (CUDA, or host memory on CPU sessions: the same code
// path), uploaded and downloaded explicitly, every byte counted (addon-info.ts transferStats). A tensor
// frees its memory on release() or at the end of a `using` block (Symbol.dispose, Node >= 20.4); a
// FinalizationRegistry frees those dropped unreleased.
import { inputError } from '@latent-sft/core';
import { loadNative, type NativeTensor } from './native.js';
import { type Device, type DType, type HostTensor, dataCtor } from './session.js';

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

/** @internal `[2, ?, 8]`: dims with dynamic ones by symbol (or ?). */
export function fmt(dims: readonly number[], symbols?: readonly string[]): string {
  return `[${dims.map((d, i) => (d < 0 ? symbols?.[i] || '?' : String(d))).join(', ')}]`;
}

function toDevice(loc: { kind: 'cpu' | 'cuda'; deviceId?: number }): Device {
  return loc.kind === 'cuda' ? { kind: 'cuda', deviceId: loc.deviceId ?? 0 } : { kind: 'cpu' };
}

/** @internal Checks a dtype and dims to allocate (one-line errors naming the field). */
export function checkAlloc(dtype: DType, dims: readonly number[]): void {
  if (!isDType(dtype)) throw inputError({ field: 'dtype' }, `unknown dtype '${String(dtype)}' (one of ${dtypeNames.join(', ')})`);
  checkDims('dims', dims);
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
  checkAlloc(dtype, dims);
  return new DeviceTensor(loadNative().allocateCpu(dtype, dims));
}

/** @internal A tensor from `alloc` holding `t`'s data; released again when the upload throws. */
export function allocAndUpload(t: HostTensor, alloc: (dtype: DType, dims: readonly number[]) => DeviceTensor): DeviceTensor {
  const ctor = dataCtor[t.dtype];
  if (ctor === undefined) throw inputError({ field: 'dtype' }, `unknown dtype '${String(t.dtype)}' (one of ${dtypeNames.join(', ')})`);
  checkDims('dims', t.dims);
  const d = alloc(t.dtype, t.dims);
  try {
    d.upload(t.data);
  } catch (e) {
    d.release();
    throw e;
  }
  return d;
}

/** Copies a HostTensor into a new CPU-memory device tensor. */
export function uploadCpu(t: HostTensor): DeviceTensor {
  return allocAndUpload(t, allocCpu);
}
