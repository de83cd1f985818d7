// safetensors I/O. File layout: u64 little-endian header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the data
// buffer; offsets are relative to the buffer start (8 + N). Reading parses the header only and reads
// one tensor's byte range with fs.readSync at its offset, so large files are never loaded whole.
// Validation follows the Rust reader: offsets in range, size = numel x dtype size, tensors contiguous
// and non-overlapping, the buffer exactly covered. Writing pads the header with spaces to a multiple
// of 8 bytes (as safetensors does) and orders tensors by name. (The Python/Rust writer orders by
// dtype alignment, then name; HF loads any order, and name order keeps our files easy to diff.)
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AtomicWriter, inputError } from '@latent-sft/core';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from './dtype.js';

/** Element types of the safetensors format handled here. */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Typed array of a tensor's elements (F16/BF16 as raw Uint16 bits unless converted to float32). */
export type TensorArray = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** One tensor in a file: where its bytes are. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte range in the file, [begin, end). */
  begin: number;
  end: number;
}

/** A tensor to write. Float dtypes take a Float32Array (converted) or, for F16/BF16, raw Uint16Array bits. */
export interface TensorData {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  data: TensorArray;
}

/** A parsed header. */
export interface SafetensorsHeader {
  path: string;
  headerSize: number;
  dataStart: number;
  metadata: Record<string, string> | null;
  /** In file (offset) order. */
  tensors: TensorInfo[];
}

/** Anything that serves tensors by name (one file or a sharded checkpoint). */
export interface TensorSource {
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Record<string, string> | null;
  has(name: string): boolean;
  info(name: string): TensorInfo;
  readTensor(name: string, opts?: { as?: ReadAs }): TensorArray;
}

/**
 * What readTensor converts a float tensor to: float32 (exact widening of F16/BF16; F64 rounds), or the bits of
 * a 16-bit float (Uint16Array): a tensor stored in that dtype is returned as stored, others are rounded once
 * to nearest even (F64 through float32).
 */
export type ReadAs = 'float32' | 'bfloat16' | 'float16';

const MAX_HEADER = 100_000_000;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function readExact(fd: number, buf: Uint8Array, position: number, path: string, what: string): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw inputError({ file: path, field: what }, `file ends after ${position + off} bytes`);
    off += n;
  }
}

function parseHeader(path: string, fd: number): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw inputError({ file: path }, `only ${fileSize} bytes; a safetensors file starts with an 8-byte header size`);
  const sizeBuf = Buffer.alloc(8);
  readExact(fd, sizeBuf, 0, path, 'header size');
  const big = sizeBuf.readBigUInt64LE(0);
  if (big > BigInt(fileSize - 8)) throw inputError({ file: path, field: 'header size' }, `${big} exceeds the ${fileSize - 8} bytes after it`);
  const headerSize = Number(big);
  if (headerSize > MAX_HEADER) throw inputError({ file: path, field: 'header size' }, `${headerSize} exceeds ${MAX_HEADER}`);
  const hb = Buffer.alloc(headerSize);
  readExact(fd, hb, 8, path, 'header');
  let parsed: unknown;
  try {
    parsed = JSON.parse(hb.toString('utf8'));
  } catch (e) {
    throw inputError({ file: path, field: 'header' }, `not JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw inputError({ file: path, field: 'header' }, 'not a JSON object');
  const dataStart = 8 + headerSize;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
        throw inputError({ file: path, field: '__metadata__' }, 'must map strings to strings');
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const field = `tensor '${name}'`;
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null) throw inputError({ file: path, field }, 'not an object');
    if (typeof t.dtype !== 'string' || !(t.dtype in DTYPE_SIZE)) throw inputError({ file: path, field }, `unsupported dtype ${JSON.stringify(t.dtype)}`);
    const dtype = t.dtype as Dtype;
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw inputError({ file: path, field }, `bad shape ${JSON.stringify(t.shape)}`);
    }
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[0] > off[1]) {
      throw inputError({ file: path, field }, `bad data_offsets ${JSON.stringify(off)}`);
    }
    const [b, e] = off as [number, number];
    if (e > dataSize) {
      throw inputError({ file: path, field }, `data_offsets [${b}, ${e}] run past the end of the data (${dataSize} bytes; truncated file?)`);
    }
    const shape = t.shape as number[];
    const expected = numel(shape) * DTYPE_SIZE[dtype];
    if (e - b !== expected) {
      throw inputError({ file: path, field }, `data_offsets [${b}, ${e}] hold ${e - b} bytes but ${dtype} [${shape}] needs ${expected}`);
    }
    tensors.push({ name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  tensors.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = dataStart;
  for (const t of tensors) {
    if (t.begin < cursor)
      throw inputError(
        { file: path, field: `tensor '${t.name}'` },
        `data overlaps the previous tensor (starts at ${t.begin - dataStart}, previous ends at ${cursor - dataStart})`,
      );
    if (t.begin > cursor) throw inputError({ file: path, field: `tensor '${t.name}'` }, `gap in the data buffer before offset ${t.begin - dataStart}`);
    cursor = t.end;
  }
  if (cursor !== fileSize) throw inputError({ file: path, field: 'data' }, `${fileSize - cursor} trailing bytes after the last tensor`);
  return { path, headerSize, dataStart, metadata, tensors };
}

/** Reads and validates the header of a safetensors file (the data is not read). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw inputError({ file: path }, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseHeader(path, fd);
  } finally {
    closeSync(fd);
  }
}

function decode(info: TensorInfo, bytes: Uint8Array, as: ReadAs | undefined, path: string): TensorArray {
  const n = numel(info.shape);
  // Copy into an aligned buffer; the file data need not be aligned for the typed array.
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  const dv = new DataView(buf);
  if (as === 'bfloat16' || as === 'float16') {
    const same = as === 'bfloat16' ? 'BF16' : 'F16';
    const out = new Uint16Array(n);
    if (info.dtype === same) {
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    }
    if (!['F32', 'F64', 'BF16', 'F16'].includes(info.dtype)) {
      throw inputError({ file: path, field: `tensor '${info.name}'` }, `dtype ${info.dtype} cannot be read as ${as}`);
    }
    const wide = decode(info, bytes, 'float32', path) as Float32Array;
    const to = as === 'bfloat16' ? float32ToBf16Bits : float32ToF16Bits;
    for (let i = 0; i < n; i++) out[i] = to(wide[i] as number);
    return out;
  }
  if (as === 'float32') {
    const out = new Float32Array(n);
    switch (info.dtype) {
      case 'F32':
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
        return out;
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
        return out;
      case 'BF16':
        for (let i = 0; i < n; i++) out[i] = bf16BitsToFloat32(dv.getUint16(2 * i, true));
        return out;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = f16BitsToFloat32(dv.getUint16(2 * i, true));
        return out;
      default:
        throw inputError({ file: path, field: `tensor '${info.name}'` }, `dtype ${info.dtype} cannot be read as float32`);
    }
  }
  switch (info.dtype) {
    case 'F64': {
      const o = new Float64Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getFloat64(8 * i, true);
      return o;
    }
    case 'F32': {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getFloat32(4 * i, true);
      return o;
    }
    case 'F16':
    case 'BF16': {
      const o = new Uint16Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getUint16(2 * i, true);
      return o;
    }
    case 'I64': {
      const o = new BigInt64Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getBigInt64(8 * i, true);
      return o;
    }
    case 'I32': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getInt32(4 * i, true);
      return o;
    }
    case 'I16': {
      const o = new Int16Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getInt16(2 * i, true);
      return o;
    }
    case 'I8':
      return new Int8Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
  }
}

/** One safetensors file with a parsed header; tensors are read on demand. */
export class SafetensorsFile implements TensorSource {
  readonly header: SafetensorsHeader;
  private readonly byName: Map<string, TensorInfo>;

  constructor(readonly path: string) {
    this.header = readSafetensorsHeader(path);
    this.byName = new Map(this.header.tensors.map((t) => [t.name, t]));
  }

  get tensors(): readonly TensorInfo[] {
    return this.header.tensors;
  }
  get metadata(): Record<string, string> | null {
    return this.header.metadata;
  }
  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (t === undefined) throw inputError({ file: this.path, field: `tensor '${name}'` }, 'not in this file');
    return t;
  }

  /** Reads one tensor's bytes (only that range); `as` converts a float tensor (ReadAs). */
  readTensor(name: string, opts: { as?: ReadAs } = {}): TensorArray {
    const info = this.info(name);
    const fd = openSync(this.path, 'r');
    try {
      const bytes = Buffer.alloc(info.end - info.begin);
      readExact(fd, bytes, info.begin, this.path, `tensor '${name}'`);
      return decode(info, bytes, opts.as, this.path);
    } finally {
      closeSync(fd);
    }
  }
}

/** Opens a safetensors file (header only). */
export function openSafetensors(path: string): SafetensorsFile {
  return new SafetensorsFile(path);
}

/** A sharded checkpoint described by `model.safetensors.index.json` ({metadata, weight_map}). */
export class ShardedSafetensors implements TensorSource {
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Record<string, string> | null = null;
  private readonly shardOf = new Map<string, SafetensorsFile>();

  constructor(readonly indexPath: string) {
    let idx: unknown;
    try {
      idx = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw inputError({ file: indexPath }, `cannot read JSON (${(e as Error).message})`);
    }
    const map = (idx as { weight_map?: unknown } | null)?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw inputError({ file: indexPath, field: 'weight_map' }, 'missing or not an object');
    const files = new Map<string, SafetensorsFile>();
    const list: TensorInfo[] = [];
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
        throw inputError({ file: indexPath, field: `weight_map.${name}` }, `expected a file name beside the index, got ${JSON.stringify(shard)}`);
      }
      let f = files.get(shard);
      if (f === undefined) {
        f = new SafetensorsFile(join(dirname(indexPath), shard));
        files.set(shard, f);
      }
      if (!f.has(name)) throw inputError({ file: indexPath, field: `weight_map.${name}` }, `tensor is not in shard ${shard}`);
      this.shardOf.set(name, f);
      list.push(f.info(name));
    }
    for (const [shard, f] of files) {
      for (const t of f.tensors) {
        if (this.shardOf.get(t.name) !== f)
          throw inputError({ file: join(dirname(indexPath), shard), field: `tensor '${t.name}'` }, 'not listed for this shard in the weight_map');
      }
    }
    this.tensors = list;
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }
  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }
  readTensor(name: string, opts: { as?: ReadAs } = {}): TensorArray {
    return this.shard(name).readTensor(name, opts);
  }

  private shard(name: string): SafetensorsFile {
    const f = this.shardOf.get(name);
    if (f === undefined) throw inputError({ file: this.indexPath, field: `tensor '${name}'` }, 'not in the weight_map');
    return f;
  }
}

/** Opens a sharded checkpoint from its index file. */
export function openShardedSafetensors(indexPath: string): ShardedSafetensors {
  return new ShardedSafetensors(indexPath);
}

function encodeTensor(t: TensorData): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) throw new Error(`writeSafetensors: tensor '${t.name}' has ${t.data.length} values but shape [${t.shape}] needs ${n}`);
  const out = new Uint8Array(n * DTYPE_SIZE[t.dtype]);
  const dv = new DataView(out.buffer);
  const d = t.data;
  const bad = () => new Error(`writeSafetensors: tensor '${t.name}' of dtype ${t.dtype} cannot take a ${d.constructor.name}`);
  switch (t.dtype) {
    case 'F32':
    case 'F64': {
      if (!(d instanceof Float32Array || d instanceof Float64Array)) throw bad();
      if (t.dtype === 'F32') for (let i = 0; i < n; i++) dv.setFloat32(4 * i, d[i] as number, true);
      else for (let i = 0; i < n; i++) dv.setFloat64(8 * i, d[i] as number, true);
      return out;
    }
    case 'BF16':
    case 'F16': {
      const conv = t.dtype === 'BF16' ? float32ToBf16Bits : float32ToF16Bits;
      if (d instanceof Uint16Array) for (let i = 0; i < n; i++) dv.setUint16(2 * i, d[i] as number, true);
      else if (d instanceof Float32Array || d instanceof Float64Array) for (let i = 0; i < n; i++) dv.setUint16(2 * i, conv(d[i] as number), true);
      else throw bad();
      return out;
    }
    case 'I64':
      if (!(d instanceof BigInt64Array)) throw bad();
      for (let i = 0; i < n; i++) dv.setBigInt64(8 * i, d[i] as bigint, true);
      return out;
    case 'I32':
      if (!(d instanceof Int32Array)) throw bad();
      for (let i = 0; i < n; i++) dv.setInt32(4 * i, d[i] as number, true);
      return out;
    case 'I16':
      if (!(d instanceof Int16Array)) throw bad();
      for (let i = 0; i < n; i++) dv.setInt16(2 * i, d[i] as number, true);
      return out;
    case 'I8':
      if (!(d instanceof Int8Array)) throw bad();
      out.set(new Uint8Array(d.buffer, d.byteOffset, n));
      return out;
    case 'U8':
    case 'BOOL':
      if (!(d instanceof Uint8Array)) throw bad();
      out.set(d);
      return out;
  }
}

/** The header JSON bytes (padded with spaces to a multiple of 8) for tensors in the given order. */
export function safetensorsHeaderBytes(
  tensors: ReadonlyArray<{ name: string; dtype: Dtype; shape: readonly number[] }>,
  metadata?: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  let off = 0;
  for (const t of tensors) {
    const size = numel(t.shape) * DTYPE_SIZE[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + size] };
    off += size;
  }
  const json = JSON.stringify(header);
  const len = Buffer.byteLength(json, 'utf8');
  return Buffer.from(json + ' '.repeat((8 - (len % 8)) % 8), 'utf8');
}

/** Writes a safetensors file atomically, tensors ordered by name, streaming one tensor at a time. */
export function writeSafetensors(path: string, tensors: readonly TensorData[], metadata?: Record<string, string>): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name.length === 0) throw new Error(`writeSafetensors: invalid tensor name '${t.name}'`);
    if (names.has(t.name)) throw new Error(`writeSafetensors: duplicate tensor '${t.name}'`);
    if (!(t.dtype in DTYPE_SIZE)) throw new Error(`writeSafetensors: tensor '${t.name}' has unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`writeSafetensors: tensor '${t.name}' has bad shape [${t.shape}]`);
    names.add(t.name);
  }
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header = safetensorsHeaderBytes(sorted, metadata);
  const w = new AtomicWriter(path);
  try {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(header.length), 0);
    w.write(size);
    w.write(header);
    for (const t of sorted) w.write(encodeTensor(t));
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}
