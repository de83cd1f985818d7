// A typed session over onnxruntime-node's InferenceSession: our own Device/DType/HostTensor types in,
// the same types out, with feeds checked before they reach the native binding. Leaves out IO binding,
// GPU-resident tensors and string tensors. bfloat16 has no onnxruntime-node tensor type (1.29), so a
// bfloat16 feed or output is rejected with an error that says to Cast inside the graph instead.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

/** Where a session runs. */
export type Device = { kind: 'cpu' } | { kind: 'cuda'; deviceId?: number };

/** Element types a HostTensor may carry. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8';

/** A dense tensor in host memory; `data.length` equals the product of `dims`. */
export interface HostTensor {
  dtype: DType;
  dims: readonly number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
}

/** Options of `Session.create`; every field has a default. */
export interface SessionOptions {
  /** Default `{ kind: 'cpu' }`. */
  device?: Device;
  /** Default 'all'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Sets ORT's `session.use_deterministic_compute` and sequential execution. Default false. */
  deterministic?: boolean;
  /** Threads inside one op; default: ORT's choice (physical cores). */
  intraOpThreads?: number;
  /** Default true (ORT's default). */
  enableMemPattern?: boolean;
  /** 0 verbose … 4 fatal; default 3 (errors only). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
}

type TypedData = HostTensor['data'];

/** The typed-array constructor each dtype travels in (bool as 0/1 bytes, fp16/bf16 as raw bits). */
export const dataCtor: { [D in DType]: new (n: number) => TypedData } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
};

/** Allocates a zero HostTensor of the given dtype and dims. */
export function zerosHost(dtype: DType, dims: readonly number[]): HostTensor {
  return { dtype, dims: [...dims], data: new dataCtor[dtype](dims.reduce((a, b) => a * b, 1)) };
}

/** Checks one feed; throws naming the input, its dims and the data length or type. */
export function checkHostTensor(name: string, t: HostTensor): void {
  for (const d of t.dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`feed '${name}': invalid dims [${t.dims.join(', ')}]`);
  }
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== size) {
    throw new Error(`feed '${name}': dims [${t.dims.join(', ')}] hold ${size} elements but data has ${t.data.length}`);
  }
  const ctor = dataCtor[t.dtype];
  if (ctor === undefined) throw new Error(`feed '${name}': unknown dtype '${String(t.dtype)}'`);
  if (!(t.data instanceof ctor)) {
    throw new Error(`feed '${name}': dtype ${t.dtype} needs ${ctor.name} data, got ${t.data.constructor.name}`);
  }
  if (t.dtype === 'bfloat16') {
    throw new Error(`feed '${name}': onnxruntime-node has no bfloat16 tensors; feed float32 and Cast in the graph`);
  }
}

const ortTypeToDType: Record<string, DType | undefined> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
  uint8: 'uint8',
  int8: 'int8',
};

function toHost(name: string, t: ort.Tensor): HostTensor {
  const dtype = ortTypeToDType[t.type];
  if (dtype === undefined) throw new Error(`output '${name}': unsupported onnxruntime tensor type '${t.type}'`);
  return { dtype, dims: [...t.dims], data: t.data as TypedData };
}

/** The directory onnxruntime-node loads its shared libraries from. */
export function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Why a CUDA session cannot start, naming the provider libraries missing next to libonnxruntime. */
function cudaLoadError(cause: unknown): Error {
  const dir = ortBinaryDir();
  const libs = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
  const missing = libs.filter((l) => !existsSync(join(dir, l)));
  const detail = cause instanceof Error ? cause.message : String(cause);
  const what =
    missing.length > 0
      ? `missing ${missing.join(' and ')} in ${dir} (onnxruntime-node's CUDA postinstall is skipped; install the CUDA provider there)`
      : `the provider libraries exist in ${dir} but did not load (CUDA/cuDNN libraries on LD_LIBRARY_PATH?)`;
  return new Error(`CUDA execution provider unavailable: ${what}; onnxruntime said: ${detail}`, { cause });
}

function ortOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  const device = opts.device ?? { kind: 'cpu' };
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: device.kind === 'cuda' ? [{ name: 'cuda', deviceId: device.deviceId ?? 0 }] : ['cpu'],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    enableMemPattern: opts.enableMemPattern ?? true,
    logSeverityLevel: opts.logSeverity ?? 3,
  };
  if (opts.intraOpThreads !== undefined) {
    if (!Number.isInteger(opts.intraOpThreads) || opts.intraOpThreads < 1) {
      throw new Error(`intraOpThreads must be a positive integer, got ${opts.intraOpThreads}`);
    }
    o.intraOpNumThreads = opts.intraOpThreads;
  }
  if (opts.deterministic === true) {
    o.executionMode = 'sequential';
    o.extra = { session: { use_deterministic_compute: '1' } };
  }
  return o;
}

/** An ONNX model loaded into onnxruntime, run with HostTensor feeds. */
export class Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private inner: ort.InferenceSession | undefined;

  private constructor(inner: ort.InferenceSession) {
    this.inner = inner;
    this.inputNames = [...inner.inputNames];
    this.outputNames = [...inner.outputNames];
  }

  /** Loads a model from bytes or a file path (a path lets ORT find external-data weight files). */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    const o = ortOptions(opts);
    try {
      const inner = typeof model === 'string' ? await ort.InferenceSession.create(model, o) : await ort.InferenceSession.create(model, o);
      return new Session(inner);
    } catch (e) {
      if (opts.device?.kind === 'cuda' && /cuda|shared library|providers/i.test(String(e))) throw cudaLoadError(e);
      throw e;
    }
  }

  /** Runs the model; `outputs` defaults to every output. Feeds must match the inputs exactly. */
  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const inner = this.inner;
    if (inner === undefined) throw new Error('session already released');
    const given = Object.keys(feeds);
    const missing = this.inputNames.filter((n) => !(n in feeds));
    const extra = given.filter((n) => !this.inputNames.includes(n));
    if (missing.length > 0 || extra.length > 0) {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing ${missing.map((n) => `'${n}'`).join(', ')}`);
      if (extra.length > 0) parts.push(`unknown ${extra.map((n) => `'${n}'`).join(', ')}`);
      throw new Error(`feeds do not match model inputs: ${parts.join('; ')} (inputs: ${this.inputNames.join(', ')})`);
    }
    const wanted = outputs ?? this.outputNames;
    const unknown = wanted.filter((n) => !this.outputNames.includes(n));
    if (unknown.length > 0) throw new Error(`unknown outputs ${unknown.join(', ')} (outputs: ${this.outputNames.join(', ')})`);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of given) {
      const t = feeds[name] as HostTensor;
      checkHostTensor(name, t);
      ortFeeds[name] = new ort.Tensor(t.dtype as Exclude<DType, 'bfloat16'>, t.data as never, [...t.dims]);
    }
    const res = await inner.run(ortFeeds, [...wanted]);
    const out: Record<string, HostTensor> = {};
    for (const name of wanted) out[name] = toHost(name, res[name] as ort.Tensor);
    return out;
  }

  /** Frees the native session; later `run` calls throw. Safe to call twice. */
  async release(): Promise<void> {
    const inner = this.inner;
    this.inner = undefined;
    if (inner !== undefined) await inner.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
