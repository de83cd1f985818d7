// Tiny ONNX models for the runtime tests, encoded here with a minimal protobuf writer (varints and
// length-delimited fields only) so the tests need no model files and no graph package. Field numbers
// follow onnx.proto: ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto, TensorShapeProto.
import type { DType } from './session.js';

/** ONNX TensorProto.DataType of each dtype. */
export const onnxElemType: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

/** Appends protobuf fields to a byte list. */
class PbWriter {
  readonly bytes: number[] = [];

  private varint(v: number): void {
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n; // negative int64 as two's complement
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n !== 0n) b |= 0x80;
      this.bytes.push(b);
    } while (n !== 0n);
  }

  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }

  raw(field: number, data: ArrayLike<number>): this {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    for (let i = 0; i < data.length; i++) this.bytes.push(data[i] as number);
    return this;
  }

  string(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s));
  }

  message(field: number, m: PbWriter): this {
    return this.raw(field, m.bytes);
  }
}

/** A graph input or output; a string dim is symbolic (dynamic). */
export interface ValueSpec {
  name: string;
  dtype: DType;
  dims: ReadonlyArray<number | string>;
}

/** One node; attributes are limited to ints (enough for Cast's `to`). */
export interface NodeSpec {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  intAttrs?: Record<string, number>;
}

export interface ModelSpec {
  inputs: readonly ValueSpec[];
  outputs: readonly ValueSpec[];
  nodes: readonly NodeSpec[];
  /** Default-domain opset (default 17). */
  opset?: number;
}

function valueInfo(v: ValueSpec): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new PbWriter().int(1, d) : new PbWriter().string(2, d));
  const tensorType = new PbWriter().int(1, onnxElemType[v.dtype]).message(2, shape);
  return new PbWriter().string(1, v.name).message(2, new PbWriter().message(1, tensorType));
}

/** Serializes a ModelProto (IR version 8) holding one graph. */
export function onnxModel(spec: ModelSpec): Uint8Array {
  const graph = new PbWriter();
  spec.nodes.forEach((n, i) => {
    const node = new PbWriter();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, `${n.op.toLowerCase()}_${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.intAttrs ?? {})) {
      node.message(5, new PbWriter().string(1, k).int(20, 2 /* AttributeType.INT */).int(3, v));
    }
    graph.message(1, node);
  });
  graph.string(2, 'test');
  for (const v of spec.inputs) graph.message(11, valueInfo(v));
  for (const v of spec.outputs) graph.message(12, valueInfo(v));
  const model = new PbWriter()
    .int(1, 8)
    .string(2, 'latent-sft-runtime-tests')
    .message(7, graph)
    .message(8, new PbWriter().string(1, '').int(2, spec.opset ?? 17));
  return Uint8Array.from(model.bytes);
}

/** `state_out = state_in + x`, all of `dtype` and `dims`. */
export function addStateModel(dtype: DType, dims: ReadonlyArray<number | string>): Uint8Array {
  return onnxModel({
    inputs: [
      { name: 'state_in', dtype, dims },
      { name: 'x', dtype, dims },
    ],
    outputs: [{ name: 'state_out', dtype, dims }],
    nodes: [{ op: 'Add', inputs: ['state_in', 'x'], outputs: ['state_out'] }],
  });
}

/** `y = a @ b` for float32 a[m,k], b[k,n] (m symbolic as 'batch' when given as a string). */
export function matMulModel(m: number | string, k: number, n: number): Uint8Array {
  return onnxModel({
    inputs: [
      { name: 'a', dtype: 'float32', dims: [m, k] },
      { name: 'b', dtype: 'float32', dims: [k, n] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: [m, n] }],
    nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
  });
}

/** `y = Cast(x, to)` from float32 to `to`. */
export function castModel(to: DType, dims: readonly number[]): Uint8Array {
  return onnxModel({
    inputs: [{ name: 'x', dtype: 'float32', dims }],
    outputs: [{ name: 'y', dtype: to, dims }],
    nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], intAttrs: { to: onnxElemType[to] } }],
  });
}

/** `y = Identity(x)` of any dtype. */
export function identityModel(dtype: DType, dims: readonly number[]): Uint8Array {
  return onnxModel({
    inputs: [{ name: 'x', dtype, dims }],
    outputs: [{ name: 'y', dtype, dims }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
}
