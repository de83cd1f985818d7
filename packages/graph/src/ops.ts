// The op table: every ONNX op the builder knows (opset 18, plus the fused optimizer ops of domain
// latent_sft that the runtime addon implements), its attributes as a TypeScript type, and
// one shape/dtype inference rule per op in an exhaustive mapped table. Optional inputs are null.
// Leaves out ops the project does not use; adding one means adding its attrs, rule and gradient.
import { type DType, isFloat } from './dtype.js';
import type { ConstTensor, Dim, Graph, InferredOut, Tensor } from './graph.js';

/** An attribute value; each attribute name has one kind in `attrKinds`. */
export type AttrValue = number | readonly number[] | string | ConstTensor;

/** The attributes of an op that takes none. */
type NoAttrs = Record<string, never>;

/** Attributes of each op (all optional, ONNX defaults apply). */
export interface OpAttrs {
  Identity: NoAttrs;
  Neg: NoAttrs;
  Sqrt: NoAttrs;
  Reciprocal: NoAttrs;
  Exp: NoAttrs;
  Log: NoAttrs;
  Sigmoid: NoAttrs;
  Tanh: NoAttrs;
  Erf: NoAttrs;
  Relu: NoAttrs;
  Sin: NoAttrs;
  Cos: NoAttrs;
  Add: NoAttrs;
  Sub: NoAttrs;
  Mul: NoAttrs;
  Div: NoAttrs;
  Pow: NoAttrs;
  MatMul: NoAttrs;
  Gemm: { alpha?: number; beta?: number; transA?: number; transB?: number };
  Softmax: { axis?: number };
  LogSoftmax: { axis?: number };
  ReduceSum: { keepdims?: number; noop_with_empty_axes?: number };
  ReduceMean: { keepdims?: number; noop_with_empty_axes?: number };
  ReduceMax: { keepdims?: number; noop_with_empty_axes?: number };
  ReduceSumSquare: { keepdims?: number; noop_with_empty_axes?: number };
  Gather: { axis?: number };
  GatherElements: { axis?: number };
  Reshape: { allowzero?: number };
  Transpose: { perm?: readonly number[] };
  Unsqueeze: NoAttrs;
  Squeeze: NoAttrs;
  Concat: { axis: number };
  Slice: NoAttrs;
  Split: { axis?: number; num_outputs?: number };
  Expand: NoAttrs;
  Where: NoAttrs;
  Cast: { to: DType };
  TopK: { axis?: number; largest?: number; sorted?: number };
  // Non-differentiable.
  Shape: NoAttrs;
  Size: NoAttrs;
  ConstantOfShape: { value?: ConstTensor };
  Range: NoAttrs;
  Equal: NoAttrs;
  Less: NoAttrs;
  Greater: NoAttrs;
  Not: NoAttrs;
  And: NoAttrs;
  Or: NoAttrs;
  ArgMax: { axis?: number; keepdims?: number; select_last_index?: number };
  ScatterND: { reduction?: 'none' | 'add' | 'mul' };
  ScatterElements: { axis?: number; reduction?: 'none' | 'add' | 'mul' };
  // Domain latent_sft (kernels in @latent-sft/runtime's addon): fused optimizer ops.
  AdamW: { beta2: number; one_minus_beta1: number; one_minus_beta2: number; eps: number };
  AdamWCopy: { beta2: number; one_minus_beta1: number; one_minus_beta2: number; eps: number; to: DType };
  AdamWMulti: { beta2: number; one_minus_beta1: number; one_minus_beta2: number; eps: number };
  AdamWCopyMulti: { beta2: number; one_minus_beta1: number; one_minus_beta2: number; eps: number; to: DType };
  CastMulti: { to: DType };
  SumSquares: NoAttrs;
  MaskedSoftmax: { scale?: number };
  MaskedSoftmaxGrad: { scale?: number };
  FlashAttention: { scale?: number; rep: number };
  FlashAttentionGrad: { scale?: number; rep: number };
  RMSNorm: { epsilon: number };
  RMSNormGrad: NoAttrs;
  SwiGLU: NoAttrs;
  SwiGLUGrad: NoAttrs;
  SwiGLUPacked: NoAttrs;
  Rope: { transpose?: number };
  SeededDropout: { threshold: number; scale: number; a_col: number; b_row: number; c_col: number; d_row: number };
  HashWords: { count: number; width: number; offset_lo: number; offset_hi: number };
  CEChunkStats: { offset: number; vocab: number };
  CEChunkGrad: { offset: number };
  // Graph-level ops (no kernel: lowered into the ops above by linear-cross-entropy.ts before serialize).
  LinearLogProb: { chunk: number };
  LinearLogProbGrad: { chunk: number; weight_grad: number };
  After: NoAttrs;
  // Domain com.microsoft (ONNX Runtime's contrib ops; CPU float32, CUDA float16/bfloat16): inference only.
  GroupQueryAttention: {
    num_heads: number;
    kv_num_heads: number;
    do_rotary?: number;
    rotary_interleaved?: number;
    scale?: number;
    local_window_size?: number;
  };
  // Domain latent_sft, inference only: one decode step (one query per row) of GroupQueryAttention with RoPE
  // on a static cache written in place (runtime/native/src/ops/decode_attention.cc).
  DecodeAttention: { num_heads: number; kv_num_heads: number; scale: number };
  // Domain latent_sft, inference only: a generation step's top k and log-sum-exp over the vocabulary
  // (runtime/native/src/ops/vocab_topk.cc).
  VocabTopK: { k: number };
}

/** Ops outside the default ONNX domain, and their domain (serialized with opset version 1). */
export const customOpDomains: { readonly [P in OpType]?: string } = {
  AdamW: 'latent_sft',
  AdamWCopy: 'latent_sft',
  AdamWMulti: 'latent_sft',
  AdamWCopyMulti: 'latent_sft',
  CastMulti: 'latent_sft',
  SumSquares: 'latent_sft',
  MaskedSoftmax: 'latent_sft',
  MaskedSoftmaxGrad: 'latent_sft',
  FlashAttention: 'latent_sft',
  FlashAttentionGrad: 'latent_sft',
  RMSNorm: 'latent_sft',
  RMSNormGrad: 'latent_sft',
  SwiGLU: 'latent_sft',
  SwiGLUGrad: 'latent_sft',
  SwiGLUPacked: 'latent_sft',
  Rope: 'latent_sft',
  SeededDropout: 'latent_sft',
  HashWords: 'latent_sft',
  CEChunkStats: 'latent_sft',
  CEChunkGrad: 'latent_sft',
  After: 'latent_sft',
  GroupQueryAttention: 'com.microsoft',
  DecodeAttention: 'latent_sft',
  VocabTopK: 'latent_sft',
};

/** The row chunk of latent_sft.VocabTopK: its workspace outputs have ⌈V / VOCAB_TOPK_CHUNK⌉ chunks (runtime's kVtkChunk). */
export const VOCAB_TOPK_CHUNK = 8192;

/** Ops that exist only while a graph is built: serialize refuses them (their lowering must run first). */
export const graphLevelOps: ReadonlySet<OpType> = new Set<OpType>(['LinearLogProb', 'LinearLogProbGrad']);

/** Every op type of the table. */
export type OpType = keyof OpAttrs;

/** Ops through which no gradient flows (integer/boolean results, shape queries, scatters used by backward). */
export type NonDifferentiableOp =
  | 'Shape'
  | 'Size'
  | 'ConstantOfShape'
  | 'Range'
  | 'Equal'
  | 'Less'
  | 'Greater'
  | 'Not'
  | 'And'
  | 'Or'
  | 'ArgMax'
  | 'ScatterND'
  | 'ScatterElements'
  | 'AdamW'
  | 'AdamWCopy'
  | 'AdamWMulti'
  | 'AdamWCopyMulti'
  | 'CastMulti'
  | 'SumSquares'
  | 'HashWords'
  | 'MaskedSoftmaxGrad'
  | 'FlashAttentionGrad'
  | 'RMSNormGrad'
  | 'SwiGLUGrad'
  | 'SwiGLUPacked'
  | 'CEChunkStats'
  | 'CEChunkGrad'
  | 'LinearLogProbGrad'
  | 'After'
  | 'GroupQueryAttention'
  | 'DecodeAttention'
  | 'VocabTopK';

/** Ops that have a gradient rule (exhaustively: all others). */
export type DifferentiableOp = Exclude<OpType, NonDifferentiableOp>;

/** The list of non-differentiable ops, typed so that it must stay complete. */
export const nonDifferentiableOps: { readonly [P in NonDifferentiableOp]: true } = {
  Shape: true,
  Size: true,
  ConstantOfShape: true,
  Range: true,
  Equal: true,
  Less: true,
  Greater: true,
  Not: true,
  And: true,
  Or: true,
  ArgMax: true,
  ScatterND: true,
  ScatterElements: true,
  AdamW: true,
  AdamWCopy: true,
  AdamWMulti: true,
  AdamWCopyMulti: true,
  CastMulti: true,
  SumSquares: true,
  HashWords: true,
  MaskedSoftmaxGrad: true,
  FlashAttentionGrad: true,
  RMSNormGrad: true,
  SwiGLUGrad: true,
  SwiGLUPacked: true,
  CEChunkStats: true,
  CEChunkGrad: true,
  LinearLogProbGrad: true,
  After: true,
  GroupQueryAttention: true,
  DecodeAttention: true,
  VocabTopK: true,
};

type AllAttrNames = { [P in OpType]: keyof OpAttrs[P] }[OpType];
/** The protobuf kind of every attribute name used by the table. */
export const attrKinds: { readonly [K in AllAttrNames]: 'int' | 'float' | 'ints' | 'string' | 'tensor' | 'dtype' } = {
  alpha: 'float',
  beta: 'float',
  transA: 'int',
  transB: 'int',
  axis: 'int',
  keepdims: 'int',
  noop_with_empty_axes: 'int',
  allowzero: 'int',
  perm: 'ints',
  num_outputs: 'int',
  to: 'dtype',
  largest: 'int',
  sorted: 'int',
  value: 'tensor',
  select_last_index: 'int',
  reduction: 'string',
  beta2: 'float',
  one_minus_beta1: 'float',
  one_minus_beta2: 'float',
  eps: 'float',
  scale: 'float',
  threshold: 'int',
  a_col: 'int',
  b_row: 'int',
  c_col: 'int',
  d_row: 'int',
  count: 'int',
  width: 'int',
  offset_lo: 'int',
  offset_hi: 'int',
  epsilon: 'float',
  num_heads: 'int',
  kv_num_heads: 'int',
  do_rotary: 'int',
  rotary_interleaved: 'int',
  local_window_size: 'int',
  offset: 'int',
  k: 'int',
  rep: 'int',
  vocab: 'int',
  chunk: 'int',
  weight_grad: 'int',
  transpose: 'int',
};

type In = Tensor | null;
/** Infers output dtypes/shapes from inputs and attrs; throws a message naming what is wrong. */
export type InferRule<P extends OpType> = (g: Graph, inputs: readonly In[], attrs: OpAttrs[P]) => InferredOut[];

function need(inputs: readonly In[], i: number, what: string): Tensor {
  const t = inputs[i];
  if (t === null || t === undefined) throw new Error(`missing input ${i} (${what})`);
  return t;
}
function arity(inputs: readonly In[], min: number, max = min): void {
  if (inputs.length < min || inputs.length > max) throw new Error(`expects ${min === max ? min : `${min}-${max}`} inputs, got ${inputs.length}`);
}
function sameDtype(ts: readonly Tensor[]): DType {
  const d = (ts[0] as Tensor).dtype;
  for (const t of ts) if (t.dtype !== d) throw new Error(`dtype mismatch: ${ts.map((x) => x.dtype).join(' vs ')}`);
  return d;
}
/** Normalizes an axis into [0, rank). */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}
function dimEq(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Numpy-style broadcast of shapes; differing symbols are assumed equal (the first is kept). */
export function broadcastShapes(...shapes: ReadonlyArray<readonly Dim[]>): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + i];
      if (x === undefined || x === 1) continue;
      if (d === 1) d = x;
      else if (typeof d === 'number' && typeof x === 'number' && d !== x) {
        throw new Error(`shapes ${shapes.map((z) => `[${z.join(', ')}]`).join(' and ')} do not broadcast`);
      } else if (typeof d === 'string' && typeof x === 'number') d = x;
    }
    out.push(d);
  }
  return out;
}

function knownInts(g: Graph, t: Tensor | null | undefined, what: string): number[] {
  if (t === null || t === undefined) throw new Error(`missing ${what}`);
  const v = g.knownInts(t);
  if (v === undefined) throw new Error(`${what} '${t.name}' must be a build-time constant`);
  return v;
}
const unary = (g: Graph, inputs: readonly In[]): InferredOut[] => {
  arity(inputs, 1);
  const x = need(inputs, 0, 'X');
  return [{ dtype: x.dtype, shape: [...x.shape] }];
};
const floatUnary = (g: Graph, inputs: readonly In[]): InferredOut[] => {
  const out = unary(g, inputs);
  if (!isFloat((out[0] as InferredOut).dtype)) throw new Error('needs a float input');
  return out;
};
function intArith(g: Graph, a: Tensor, b: Tensor, f: (x: number, y: number) => number): Dim[] | undefined {
  const va = g.knownValue(a);
  const vb = g.knownValue(b);
  if (va === undefined || vb === undefined || a.dtype !== 'int64') return undefined;
  const n = Math.max(va.length, vb.length);
  if ((va.length !== n && va.length !== 1) || (vb.length !== n && vb.length !== 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = va[va.length === 1 ? 0 : i] as Dim;
    const y = vb[vb.length === 1 ? 0 : i] as Dim;
    if (typeof x !== 'number' || typeof y !== 'number') return undefined;
    out.push(f(x, y));
  }
  return out;
}
const binary =
  (f?: (x: number, y: number) => number) =>
  (g: Graph, inputs: readonly In[]): InferredOut[] => {
    arity(inputs, 2);
    const a = need(inputs, 0, 'A');
    const b = need(inputs, 1, 'B');
    sameDtype([a, b]);
    const out: InferredOut = { dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) };
    const k = f && out.shape.length <= 1 ? intArith(g, a, b, f) : undefined;
    if (k !== undefined) out.known = k;
    return [out];
  };
const compare = (g: Graph, inputs: readonly In[]): InferredOut[] => {
  arity(inputs, 2);
  const a = need(inputs, 0, 'A');
  const b = need(inputs, 1, 'B');
  sameDtype([a, b]);
  return [{ dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }];
};
const logical = (g: Graph, inputs: readonly In[]): InferredOut[] => {
  const out = compare(g, inputs);
  if ((inputs[0] as Tensor).dtype !== 'bool') throw new Error('needs bool inputs');
  return out;
};
const reduce = (g: Graph, inputs: readonly In[], attrs: { keepdims?: number; noop_with_empty_axes?: number }): InferredOut[] => {
  arity(inputs, 1, 2);
  const x = need(inputs, 0, 'data');
  const axesT = inputs[1] ?? null;
  const keep = (attrs.keepdims ?? 1) === 1;
  let axes: number[];
  if (axesT === null) {
    if ((attrs.noop_with_empty_axes ?? 0) === 1) return [{ dtype: x.dtype, shape: [...x.shape] }];
    axes = x.shape.map((_, i) => i);
  } else axes = knownInts(g, axesT, 'axes').map((a) => normAxis(a, x.rank));
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ dtype: x.dtype, shape }];
};
const softmaxLike = (g: Graph, inputs: readonly In[], attrs: { axis?: number }): InferredOut[] => {
  const out = floatUnary(g, inputs);
  normAxis(attrs.axis ?? -1, (inputs[0] as Tensor).rank);
  return out;
};

function sliceDim(d: Dim, start: number, end: number, step: number, fresh: () => string): Dim {
  if (step === 0) throw new Error('slice step 0');
  if (typeof d !== 'number') return fresh();
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = clamp(s, -1, d - 1);
  e = clamp(e, -1, d - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

/** Output count of ops whose count depends on attrs/inputs (Split, TopK); 1 otherwise. */
export function opOutputCount(op: OpType, nSplit?: number): number {
  if (op === 'TopK') return 2;
  if (op === 'AdamW') return 3;
  if (op === 'AdamWCopy') return 4;
  if (op === 'MaskedSoftmax' || op === 'RMSNorm' || op === 'RMSNormGrad' || op === 'SwiGLUGrad' || op === 'LinearLogProb' || op === 'LinearLogProbGrad')
    return 2;
  if (op === 'FlashAttention') return 2;
  if (op === 'FlashAttentionGrad') return 4;
  if (op === 'GroupQueryAttention' || op === 'DecodeAttention') return 3;
  if (op === 'VocabTopK') return 5;
  if (op === 'Split') return nSplit ?? 1;
  return 1;
}

/** One inference rule per op. */
export const inferRules: { readonly [P in OpType]: InferRule<P> } = {
  Identity: (g, i) => {
    const out = unary(g, i);
    const k = g.knownValue(i[0] as Tensor);
    if (k !== undefined) (out[0] as InferredOut).known = k;
    return out;
  },
  Neg: unary,
  Sqrt: floatUnary,
  Reciprocal: floatUnary,
  Exp: floatUnary,
  Log: floatUnary,
  Sigmoid: floatUnary,
  Tanh: floatUnary,
  Erf: floatUnary,
  Relu: unary,
  Sin: floatUnary,
  Cos: floatUnary,
  Add: binary((x, y) => x + y),
  Sub: binary((x, y) => x - y),
  Mul: binary((x, y) => x * y),
  Div: binary((x, y) => Math.trunc(x / y)),
  Pow: (g, inputs) => {
    arity(inputs, 2);
    const a = need(inputs, 0, 'X');
    const b = need(inputs, 1, 'Y');
    return [{ dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) }];
  },
  MatMul: (g, inputs) => {
    arity(inputs, 2);
    const a = need(inputs, 0, 'A');
    const b = need(inputs, 1, 'B');
    sameDtype([a, b]);
    if (a.rank === 0 || b.rank === 0) throw new Error('MatMul needs rank ≥ 1');
    const as = a.rank === 1 ? [1, ...a.shape] : [...a.shape];
    const bs = b.rank === 1 ? [...b.shape, 1] : [...b.shape];
    const k1 = as[as.length - 1] as Dim;
    const k2 = bs[bs.length - 2] as Dim;
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) throw new Error(`inner dims ${k1} and ${k2} differ`);
    const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
    const shape = [...batch];
    if (a.rank !== 1) shape.push(as[as.length - 2] as Dim);
    if (b.rank !== 1) shape.push(bs[bs.length - 1] as Dim);
    return [{ dtype: a.dtype, shape }];
  },
  Gemm: (g, inputs, attrs) => {
    arity(inputs, 2, 3);
    const a = need(inputs, 0, 'A');
    const b = need(inputs, 1, 'B');
    if (a.rank !== 2 || b.rank !== 2) throw new Error('Gemm needs rank-2 A and B');
    sameDtype([a, b]);
    const [m, k1] = attrs.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const [k2, n] = attrs.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) throw new Error(`inner dims ${k1} and ${k2} differ`);
    const shape = [m as Dim, n as Dim];
    const c = inputs[2] ?? null;
    if (c !== null) {
      const bc = broadcastShapes(shape, c.shape);
      if (bc.length !== 2 || !bc.every((d, i) => dimEq(d, shape[i] as Dim) || typeof shape[i] === 'string')) {
        throw new Error(`C shape [${c.shape.join(', ')}] does not broadcast to [${shape.join(', ')}]`);
      }
    }
    return [{ dtype: a.dtype, shape }];
  },
  Softmax: softmaxLike,
  LogSoftmax: softmaxLike,
  ReduceSum: reduce,
  ReduceMean: reduce,
  ReduceMax: reduce,
  ReduceSumSquare: reduce,
  Gather: (g, inputs, attrs) => {
    arity(inputs, 2);
    const data = need(inputs, 0, 'data');
    const idx = need(inputs, 1, 'indices');
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new Error(`indices must be int32/int64, got ${idx.dtype}`);
    const axis = normAxis(attrs.axis ?? 0, data.rank);
    const out: InferredOut = { dtype: data.dtype, shape: [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)] };
    const kd = g.knownValue(data);
    const ki = g.knownInts(idx);
    if (kd !== undefined && ki !== undefined && data.rank === 1 && idx.rank <= 1) {
      out.known = ki.map((j) => {
        const v = kd[j < 0 ? j + kd.length : j];
        if (v === undefined) throw new Error(`index ${j} out of range for length ${kd.length}`);
        return v;
      });
    }
    return [out];
  },
  GatherElements: (g, inputs, attrs) => {
    arity(inputs, 2);
    const data = need(inputs, 0, 'data');
    const idx = need(inputs, 1, 'indices');
    if (idx.rank !== data.rank) throw new Error(`indices rank ${idx.rank} != data rank ${data.rank}`);
    normAxis(attrs.axis ?? 0, data.rank);
    return [{ dtype: data.dtype, shape: [...idx.shape] }];
  },
  Reshape: (g, inputs, attrs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'data');
    const st = need(inputs, 1, 'shape');
    const spec = g.knownValue(st);
    if (spec === undefined) {
      if (st.rank !== 1 || typeof st.shape[0] !== 'number') throw new Error('shape must be a 1-D tensor of known length');
      return [{ dtype: x.dtype, shape: Array.from({ length: st.shape[0] }, () => g.fresh('reshape')) }];
    }
    const shape: Dim[] = spec.map((d, i) => (d === 0 && !attrs.allowzero ? (x.shape[i] as Dim) : d));
    const neg = shape.filter((d) => d === -1).length;
    if (neg > 1) throw new Error(`more than one -1 in shape [${spec.join(', ')}]`);
    if (neg === 1) {
      const known = shape.filter((d) => d !== -1);
      if (isStaticDims(x.shape) && isStaticDims(known)) {
        const total = (x.shape as number[]).reduce((p, q) => p * q, 1);
        const rest = (known as number[]).reduce((p, q) => p * q, 1);
        if (rest === 0 || total % rest !== 0) throw new Error(`cannot reshape [${x.shape.join(', ')}] to [${spec.join(', ')}]`);
        shape[shape.indexOf(-1)] = total / rest;
      } else shape[shape.indexOf(-1)] = g.fresh('reshape');
    }
    if (isStaticDims(x.shape) && isStaticDims(shape)) {
      const a = (x.shape as number[]).reduce((p, q) => p * q, 1);
      const b = (shape as number[]).reduce((p, q) => p * q, 1);
      if (a !== b) throw new Error(`cannot reshape ${a} elements to [${spec.join(', ')}] (${b})`);
    }
    const out: InferredOut = { dtype: x.dtype, shape };
    const kx = g.knownValue(x);
    if (kx !== undefined && shape.length <= 1) out.known = kx;
    return [out];
  },
  Transpose: (g, inputs, attrs) => {
    arity(inputs, 1);
    const x = need(inputs, 0, 'data');
    const perm = attrs.perm ?? x.shape.map((_, i) => x.rank - 1 - i);
    if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
      throw new Error(`perm [${perm.join(', ')}] is not a permutation of rank ${x.rank}`);
    }
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p] as Dim) }];
  },
  Unsqueeze: (g, inputs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'data');
    const rank = x.rank + knownInts(g, inputs[1], 'axes').length;
    const axes = knownInts(g, inputs[1], 'axes').map((a) => normAxis(a, rank));
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : (x.shape[j++] as Dim));
    const out: InferredOut = { dtype: x.dtype, shape };
    const k = g.knownValue(x);
    if (k !== undefined && rank <= 1) out.known = k;
    return [out];
  },
  Squeeze: (g, inputs) => {
    arity(inputs, 1, 2);
    const x = need(inputs, 0, 'data');
    const axesT = inputs[1] ?? null;
    const axes = axesT === null ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : knownInts(g, axesT, 'axes').map((a) => normAxis(a, x.rank));
    for (const a of axes) if (x.shape[a] !== 1 && typeof x.shape[a] === 'number') throw new Error(`cannot squeeze axis ${a} of size ${x.shape[a]}`);
    const out: InferredOut = { dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) };
    const k = g.knownValue(x);
    if (k !== undefined) out.known = k;
    return [out];
  },
  Concat: (g, inputs, attrs) => {
    if (inputs.length < 1) throw new Error('needs at least one input');
    const ts = inputs.map((t, i) => need(inputs, i, `input ${i}`));
    const dtype = sameDtype(ts);
    const first = ts[0] as Tensor;
    const axis = normAxis(attrs.axis, first.rank);
    const shape = [...first.shape];
    let total: Dim = first.shape[axis] as Dim;
    for (const t of ts.slice(1)) {
      if (t.rank !== first.rank) throw new Error(`rank ${t.rank} != ${first.rank}`);
      t.shape.forEach((d, i) => {
        if (i !== axis && typeof d === 'number' && typeof shape[i] === 'number' && d !== shape[i]) {
          throw new Error(`dim ${i} differs: ${d} vs ${shape[i]}`);
        }
      });
      const d = t.shape[axis] as Dim;
      total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
    }
    shape[axis] = total;
    const out: InferredOut = { dtype, shape };
    const ks = ts.map((t) => g.knownValue(t));
    if (first.rank === 1 && ks.every((k) => k !== undefined)) out.known = ks.flatMap((k) => k as Dim[]);
    return [out];
  },
  Slice: (g, inputs) => {
    arity(inputs, 3, 5);
    const x = need(inputs, 0, 'data');
    const starts = knownInts(g, inputs[1], 'starts');
    const ends = knownInts(g, inputs[2], 'ends');
    const axes = inputs[3] ? knownInts(g, inputs[3], 'axes').map((a) => normAxis(a, x.rank)) : starts.map((_, i) => i);
    const steps = inputs[4] ? knownInts(g, inputs[4], 'steps') : starts.map(() => 1);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
      throw new Error('starts, ends, axes and steps differ in length');
    }
    const shape = [...x.shape];
    axes.forEach((a, i) => {
      shape[a] = sliceDim(x.shape[a] as Dim, starts[i] as number, ends[i] as number, steps[i] as number, () => g.fresh('slice'));
    });
    const out: InferredOut = { dtype: x.dtype, shape };
    const k = g.knownValue(x);
    if (k !== undefined && x.rank === 1 && (steps[0] as number) > 0) {
      const d = k.length;
      const s = Math.min(Math.max((starts[0] as number) < 0 ? (starts[0] as number) + d : (starts[0] as number), 0), d);
      const e = Math.min(Math.max((ends[0] as number) < 0 ? (ends[0] as number) + d : (ends[0] as number), 0), d);
      out.known = k.slice(s, e).filter((_, j) => j % (steps[0] as number) === 0);
    }
    return [out];
  },
  Split: (g, inputs, attrs) => {
    arity(inputs, 1, 2);
    const x = need(inputs, 0, 'input');
    const axis = normAxis(attrs.axis ?? 0, x.rank);
    const d = x.shape[axis] as Dim;
    let sizes: Dim[];
    if (inputs[1]) {
      const st = inputs[1];
      const n = st.shape[0];
      if (st.rank !== 1 || typeof n !== 'number') throw new Error('split must be 1-D of known length');
      sizes = g.knownValue(st) ?? Array.from({ length: n }, () => g.fresh('split'));
    } else {
      const n = attrs.num_outputs;
      if (n === undefined) throw new Error('needs a split input or num_outputs');
      if (typeof d !== 'number') sizes = Array.from({ length: n }, () => g.fresh('split'));
      else {
        const chunk = Math.ceil(d / n);
        sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, (d as number) - i * chunk)));
      }
    }
    if (typeof d === 'number' && (sizes as Dim[]).every((s) => typeof s === 'number') && (sizes as number[]).reduce((p, q) => p + q, 0) !== d) {
      throw new Error(`split sizes [${sizes.join(', ')}] do not sum to dim ${d}`);
    }
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((q, i) => (i === axis ? s : q)) }));
  },
  Expand: (g, inputs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'input');
    const st = need(inputs, 1, 'shape');
    const spec = g.knownValue(st);
    if (spec === undefined) {
      if (st.rank !== 1 || typeof st.shape[0] !== 'number') throw new Error('shape must be 1-D of known length');
      const r = Math.max(st.shape[0], x.rank);
      return [{ dtype: x.dtype, shape: Array.from({ length: r }, () => g.fresh('expand')) }];
    }
    return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, spec) }];
  },
  Where: (g, inputs) => {
    arity(inputs, 3);
    const c = need(inputs, 0, 'condition');
    const a = need(inputs, 1, 'X');
    const b = need(inputs, 2, 'Y');
    if (c.dtype !== 'bool') throw new Error(`condition must be bool, got ${c.dtype}`);
    return [{ dtype: sameDtype([a, b]), shape: broadcastShapes(c.shape, a.shape, b.shape) }];
  },
  Cast: (g, inputs, attrs) => {
    arity(inputs, 1);
    const x = need(inputs, 0, 'input');
    const out: InferredOut = { dtype: attrs.to, shape: [...x.shape] };
    const k = g.knownValue(x);
    if (k !== undefined && attrs.to === 'int64') out.known = k;
    return [out];
  },
  TopK: (g, inputs, attrs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'X');
    const [k] = knownInts(g, inputs[1], 'K');
    const axis = normAxis(attrs.axis ?? -1, x.rank);
    const d = x.shape[axis];
    if (k === undefined || (typeof d === 'number' && k > d)) throw new Error(`K=${k} exceeds dim ${d}`);
    const shape = x.shape.map((q, i) => (i === axis ? k : q));
    return [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape: [...shape] },
    ];
  },
  Shape: (g, inputs) => {
    arity(inputs, 1);
    const x = need(inputs, 0, 'data');
    return [{ dtype: 'int64', shape: [x.rank], known: [...x.shape] }];
  },
  Size: (g, inputs) => {
    arity(inputs, 1);
    const x = need(inputs, 0, 'data');
    const out: InferredOut = { dtype: 'int64', shape: [] };
    if (isStaticDims(x.shape)) out.known = [x.shape.reduce((p, q) => p * q, 1)];
    return [out];
  },
  ConstantOfShape: (g, inputs, attrs) => {
    arity(inputs, 1);
    const st = need(inputs, 0, 'shape');
    const spec = g.knownValue(st);
    if (spec === undefined) throw new Error('shape must be known at build time (use Expand for dynamic shapes)');
    return [{ dtype: attrs.value?.dtype ?? 'float32', shape: [...spec] }];
  },
  Range: (g, inputs) => {
    arity(inputs, 3);
    const s = need(inputs, 0, 'start');
    const l = need(inputs, 1, 'limit');
    const d = need(inputs, 2, 'delta');
    const dtype = sameDtype([s, l, d]);
    const [ks, kl, kd] = [g.knownInts(s), g.knownInts(l), g.knownInts(d)];
    const n = ks && kl && kd ? Math.max(0, Math.ceil(((kl[0] as number) - (ks[0] as number)) / (kd[0] as number))) : g.fresh('range');
    return [{ dtype, shape: [n] }];
  },
  Equal: compare,
  Less: compare,
  Greater: compare,
  And: logical,
  Or: logical,
  Not: (g, inputs) => {
    const out = unary(g, inputs);
    if ((out[0] as InferredOut).dtype !== 'bool') throw new Error('needs a bool input');
    return out;
  },
  ArgMax: (g, inputs, attrs) => {
    const out = reduce(g, [inputs[0] ?? null, g.ints([attrs.axis ?? 0])], { keepdims: attrs.keepdims ?? 1 });
    return [{ dtype: 'int64', shape: (out[0] as InferredOut).shape }];
  },
  ScatterND: (g, inputs) => {
    arity(inputs, 3);
    const data = need(inputs, 0, 'data');
    sameDtype([data, need(inputs, 2, 'updates')]);
    return [{ dtype: data.dtype, shape: [...data.shape] }];
  },
  ScatterElements: (g, inputs, attrs) => {
    arity(inputs, 3);
    const data = need(inputs, 0, 'data');
    const idx = need(inputs, 1, 'indices');
    const upd = need(inputs, 2, 'updates');
    sameDtype([data, upd]);
    if (idx.rank !== data.rank || upd.rank !== data.rank) throw new Error('data, indices and updates need the same rank');
    normAxis(attrs.axis ?? 0, data.rank);
    return [{ dtype: data.dtype, shape: [...data.shape] }];
  },
  // p, g, m, v, step_size, decay, bc2_sqrt, coef → p', m', v' (runtime/native/src/ops/adamw.cc): p float32 (masters)
  // or 16-bit, m and v of adamwMomentDtype(p), g any float dtype; float32 math, each result rounded once.
  AdamW: (g, inputs, attrs) => adamwOutputs(inputs, attrs),
  // AdamW's inputs and attributes, `to` bfloat16 | float16 → p', m', v' and p' rounded to `to` (as Cast).
  AdamWCopy: (g, inputs, attrs) => {
    if (attrs.to !== 'bfloat16' && attrs.to !== 'float16') throw new Error(`attribute to must be bfloat16 or float16, got ${String(attrs.to)}`);
    const out = adamwOutputs(inputs, attrs);
    if ((out[0] as InferredOut).dtype !== 'float32') throw new Error('AdamWCopy needs float32 p, m, v (a 16-bit p is its own copy)');
    return [...out, { dtype: attrs.to, shape: [...(out[0] as InferredOut).shape] }];
  },
  // step_size, decay, bc2_sqrt, coef, then p_i, g_i, m_i, v_i for i = 1 … k → p'_i, m'_i, v'_i (AdamWCopyMulti:
  // and copy_i) for each i in order: k AdamW (AdamWCopy) updates in one node (fusions.ts fuseMultiTensorAdamW),
  // each tensor's values bit for bit the single op's.
  AdamWMulti: (g, inputs, attrs) => adamwMultiOutputs(inputs, (group) => adamwOutputs(group, attrs)),
  AdamWCopyMulti: (g, inputs, attrs) => adamwMultiOutputs(inputs, (group) => inferRules.AdamWCopy(g, group, attrs)),
  // x_1 .. x_k float32 → each rounded to `to` (bfloat16 | float16, nearest even: what Cast writes), in one node
  // (fusions.ts fuseMultiTensorCast: the step's casts of the float32 masters to the compute dtype).
  CastMulti: (g, inputs, attrs) => {
    if (inputs.length < 1) throw new Error('expects at least 1 input');
    if (attrs.to !== 'bfloat16' && attrs.to !== 'float16') throw new Error(`attribute to must be bfloat16 or float16, got ${String(attrs.to)}`);
    return inputs.map((_, i) => {
      const x = need(inputs, i, `x${i}`);
      if (x.dtype !== 'float32') throw new Error(`input ${i} must be float32, got ${x.dtype}`);
      return { dtype: attrs.to, shape: [...x.shape] };
    });
  },
  // x_1 .. x_k (float dtypes) → float32 scalar Σ x² (accumulated in float64).
  SumSquares: (g, inputs) => {
    if (inputs.length < 1) throw new Error('expects at least 1 input');
    for (let i = 0; i < inputs.length; i++) {
      const x = need(inputs, i, `x${i}`);
      if (!['float32', 'bfloat16', 'float16'].includes(x.dtype)) throw new Error(`input ${i} must be float32, bfloat16 or float16, got ${x.dtype}`);
    }
    return [{ dtype: 'float32', shape: [] }];
  },
  // X [..., S] (float), mask float32 broadcastable to X → Y = softmax(scale·X + mask) over the last
  // axis in float32, rounded to X's dtype, and stats [..., 2] = (row max, row Σ exp) for the backward.
  MaskedSoftmax: (g, inputs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'X');
    checkSoftmaxMask(x, need(inputs, 1, 'mask'));
    return [
      { dtype: x.dtype, shape: [...x.shape] },
      { dtype: 'float32', shape: [...x.shape.slice(0, -1), 2] },
    ];
  },
  // dY, X, mask, stats → dX = scale · Y ⊙ (dY − Σ dY·Y), Y recomputed from X, mask and stats.
  MaskedSoftmaxGrad: (g, inputs) => {
    arity(inputs, 4);
    const dy = need(inputs, 0, 'dY');
    const x = need(inputs, 1, 'X');
    checkSoftmaxMask(x, need(inputs, 2, 'mask'));
    checkLikeX(dy, x);
    const st = need(inputs, 3, 'stats');
    if (st.dtype !== 'float32' || st.rank !== x.rank || st.shape[x.rank - 1] !== 2)
      throw new Error(`stats must be float32 [..., 2], got ${st.dtype}${st.shapeText}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  // Q [B, G, N, D] (N = rep·T: row r·T + t is query position t of the r-th query head of KV head g), K, V
  // [B, G, S, D] (one float dtype), M float32 [B|1, G|1, rep|1, T|1, S|1] → O [B, G, N, D] = softmax over s
  // of (scale·q·k_s + M[b, g, r, t, s]) applied to V, in Q's dtype (float32 inside, no [.., T, S] tensor),
  // and stats [B, G, N, 2] float32 = (row max, row Σ exp(z − max)) for the backward
  // (runtime/native/src/ops/flash_attention.cc; fusions.ts fuseFlashAttention).
  FlashAttention: (g, inputs, attrs) => {
    arity(inputs, 4);
    const [q, k, v, m] = [0, 1, 2, 3].map((i) => need(inputs, i, ['Q', 'K', 'V', 'M'][i] as string)) as [Tensor, Tensor, Tensor, Tensor];
    checkFlashAttention(q, k, v, m, attrs.rep);
    return [
      { dtype: q.dtype, shape: [...q.shape] },
      { dtype: 'float32', shape: [...q.shape.slice(0, 3), 2] },
    ];
  },
  // dO, Q, K, V, M, O, stats → dQ, dK, dV (Q's, K's, V's dtype and shape; P recomputed from Q, K, M and
  // stats; dK, dV summed over the rep query heads of each KV head) and the workspace Dsum [B, G, N] float32
  // (Σ_d dO·O per row; nothing reads it). M gets no gradient.
  FlashAttentionGrad: (g, inputs, attrs) => {
    arity(inputs, 7);
    const [dO, q, k, v, m, o, st] = [0, 1, 2, 3, 4, 5, 6].map((i) => need(inputs, i, ['dO', 'Q', 'K', 'V', 'M', 'O', 'stats'][i] as string)) as [
      Tensor,
      Tensor,
      Tensor,
      Tensor,
      Tensor,
      Tensor,
      Tensor,
    ];
    checkFlashAttention(q, k, v, m, attrs.rep);
    for (const [t, what] of [
      [dO, 'dO'],
      [o, 'O'],
    ] as const) {
      if (t.dtype !== q.dtype || t.rank !== 4 || t.shape.some((d, i) => clash(d, q.shape[i] as Dim)))
        throw new Error(`${what} must have Q's dtype and shape (${q.dtype}${q.shapeText}), got ${t.dtype}${t.shapeText}`);
    }
    if (st.dtype !== 'float32' || st.rank !== 4 || st.shape[3] !== 2 || st.shape.slice(0, 3).some((d, i) => clash(d, q.shape[i] as Dim)))
      throw new Error(`stats must be float32 [B, G, N, 2] over Q's rows (${q.shapeText}), got ${st.dtype}${st.shapeText}`);
    return [
      { dtype: q.dtype, shape: [...q.shape] },
      { dtype: k.dtype, shape: [...k.shape] },
      { dtype: v.dtype, shape: [...v.shape] },
      { dtype: 'float32', shape: q.shape.slice(0, 3) },
    ];
  },
  // X [..., D], W [D] (one float dtype) → Y = W ⊙ round(X·r) (float32 inside, each product rounded to
  // X's dtype as HF's LlamaRMSNorm does) and R [...] = r = 1/√(mean(X²) + ε), float32, for the backward.
  RMSNorm: (g, inputs, attrs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'X');
    checkRmsWeight(x, need(inputs, 1, 'W'));
    if (!(attrs.epsilon > 0)) throw new Error(`epsilon must be > 0, got ${attrs.epsilon}`);
    return [
      { dtype: x.dtype, shape: [...x.shape] },
      { dtype: 'float32', shape: x.shape.slice(0, -1) },
    ];
  },
  // dY, X, W, R → dX = r·(g − n·mean(g·n)) with g = dY ⊙ W, n = X·r; and dW as float32 partial sums
  // [P, D] over P row blocks (P is the kernel's: the CPU's row blocks, 1 on CUDA, whose op sums its blocks' partials;
  // ReduceSum over axis 0 gives dW).
  RMSNormGrad: (g, inputs) => {
    arity(inputs, 4);
    const dy = need(inputs, 0, 'dY');
    const x = need(inputs, 1, 'X');
    checkRmsWeight(x, need(inputs, 2, 'W'));
    checkLikeX(dy, x);
    const r = need(inputs, 3, 'R');
    if (r.dtype !== 'float32' || r.rank !== x.rank - 1) throw new Error(`R must be float32 [...] over the rows of X, got ${r.dtype}${r.shapeText}`);
    return [
      { dtype: x.dtype, shape: [...x.shape] },
      { dtype: 'float32', shape: [g.fresh('rmsnorm_parts'), x.shape[x.rank - 1] as Dim] },
    ];
  },
  // gate, up (one float dtype and shape) → Y = round(round(g·σ(g)) · u), float32 inside (SiLU rounded
  // once, as torch's F.silu).
  SwiGLU: (g, inputs) => {
    arity(inputs, 2);
    const gate = need(inputs, 0, 'gate');
    checkSwiGlu(gate, need(inputs, 1, 'up'), 'up');
    return [{ dtype: gate.dtype, shape: [...gate.shape] }];
  },
  // dY, gate, up → dGate = (dY·u)·σ(g)·(1 + g·(1 − σ(g))), dUp = dY·round(g·σ(g)), float32 inside.
  SwiGLUGrad: (g, inputs) => {
    arity(inputs, 3);
    const gate = need(inputs, 1, 'gate');
    checkSwiGlu(gate, need(inputs, 2, 'up'), 'up');
    checkSwiGlu(gate, need(inputs, 0, 'dY'), 'dY');
    return [
      { dtype: gate.dtype, shape: [...gate.shape] },
      { dtype: gate.dtype, shape: [...gate.shape] },
    ];
  },
  // x [..., 2F] (gate, then up, along the last axis) → Y [..., F] = SwiGLU(x[..., :F], x[..., F:]); inference only.
  SwiGLUPacked: (g, inputs) => {
    arity(inputs, 1);
    const x = need(inputs, 0, 'x');
    if (!['float32', 'bfloat16', 'float16'].includes(x.dtype) || x.rank < 1)
      throw new Error(`x must be a float tensor [..., 2F], got ${x.dtype}${x.shapeText}`);
    const last = x.shape[x.rank - 1] as Dim;
    if (typeof last !== 'number' || last % 2 !== 0) throw new Error(`x's last dim must be a known even size (gate, then up), got ${x.shapeText}`);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), last / 2] }];
  },
  // x [B, T, n, hd] (float32, bfloat16 or float16; hd static and even), cos and sinSigned [B, T, 1, hd] of x's
  // dtype (models' ropeFactors) → y of x's dtype and shape: y[j] = x[j]·cos[j] + x[swap(j)]·sinSigned[j], swap(j)
  // = j ± hd/2 (the halves of the head exchanged: models' applyRope), float32 inside, rounded once
  // (fusions.ts fuseRope). transpose 1: the transposed map y[j] = x[j]·cos[j] + x[swap(j)]·sinSigned[swap(j)],
  // which is the backward (dx from dy); cos and sinSigned get no gradient.
  Rope: (g, inputs, attrs) => {
    arity(inputs, 3);
    const x = need(inputs, 0, 'x');
    const hd = x.shape[3];
    if (!['float32', 'bfloat16', 'float16'].includes(x.dtype) || x.rank !== 4 || typeof hd !== 'number' || hd % 2 !== 0)
      throw new Error(`x must be a float32, bfloat16 or float16 [B, T, n, hd] with a static even hd, got ${x.dtype}${x.shapeText}`);
    for (const [i, what] of [
      [1, 'cos'],
      [2, 'sinSigned'],
    ] as const) {
      const t = need(inputs, i, what);
      if (
        t.dtype !== x.dtype ||
        t.rank !== 4 ||
        clash(t.shape[0] as Dim, x.shape[0] as Dim) ||
        clash(t.shape[1] as Dim, x.shape[1] as Dim) ||
        t.shape[2] !== 1 ||
        t.shape[3] !== hd
      )
        throw new Error(`${what} must be ${x.dtype} [B, T, 1, ${hd}] (x ${x.shapeText}), got ${t.dtype}${t.shapeText}`);
    }
    const tr = attrs.transpose ?? 0;
    if (tr !== 0 && tr !== 1) throw new Error(`transpose must be 0 or 1, got ${tr}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  // z [R, C] 16-bit or float32 (a chunk of LM-head logits, vocabulary columns offset … offset + C − 1), target
  // [R, 1] int64 → stats [R, 3] float32: the row max m, Σ exp(z − m), and z[target − offset] when the target
  // falls in this chunk (else 0; NaN when the target is outside [0, vocab)).
  CEChunkStats: (g, inputs, attrs) => {
    arity(inputs, 2);
    const z = need(inputs, 0, 'z');
    const t = need(inputs, 1, 'target');
    checkCeChunk(z, t, attrs.offset, 'rows');
    if (!(Number.isInteger(attrs.vocab) && attrs.vocab > attrs.offset)) throw new Error(`vocab must be an integer > offset, got ${attrs.vocab}`);
    return [{ dtype: 'float32', shape: [z.shape[0] as Dim, 3] }];
  },
  // zT [C, R] (a chunk of logits, transposed: column r is row r's logits offset … offset + C − 1), target
  // [R, 1] int64, lse [R, 1] f32, dlogp [R, 1] f32 → dzT [C, R] of zT's dtype:
  // dlogp[r] · ([v + offset = target[r]] − exp(zT[v, r] − lse[r])), float32 inside, rounded once.
  CEChunkGrad: (g, inputs, attrs) => {
    arity(inputs, 4);
    const z = need(inputs, 0, 'zT');
    const t = need(inputs, 1, 'target');
    checkCeChunk(z, t, attrs.offset, 'columns');
    for (const [i, what] of [
      [2, 'lse'],
      [3, 'dlogp'],
    ] as const) {
      const x = need(inputs, i, what);
      if (x.dtype !== 'float32' || x.rank !== 2 || x.shape[1] !== 1) throw new Error(`${what} must be float32 [R, 1], got ${x.dtype}${x.shapeText}`);
    }
    return [{ dtype: z.dtype, shape: [...z.shape] }];
  },
  // h [N, D], W [V, D] (one float dtype), target [N, 1] int64 → log p(target) [N, 1] and the row log-sum-exp
  // [N, 1], float32, of the logits h·Wᵀ (rounded to h's dtype) — without the [N, V] logits ever existing
  // at once: lowered into chunks of `chunk` vocabulary columns (linear-cross-entropy.ts).
  LinearLogProb: (g, inputs, attrs) => {
    arity(inputs, 3);
    const { t } = checkLinearLogProb(inputs, attrs.chunk);
    return [
      { dtype: 'float32', shape: [...t.shape] },
      { dtype: 'float32', shape: [...t.shape] },
    ];
  },
  // dlogp [N, 1] f32, h, W, target, lse [N, 1] f32 → dh [N, D], dW [V, D] (dW only with weight_grad 1; else
  // output 1 must stay unused).
  LinearLogProbGrad: (g, inputs, attrs) => {
    arity(inputs, 5);
    const { h, w } = checkLinearLogProb(inputs.slice(1, 4), attrs.chunk);
    for (const [i, what] of [
      [0, 'dlogp'],
      [4, 'lse'],
    ] as const) {
      const x = need(inputs, i, what);
      if (x.dtype !== 'float32' || x.rank !== 2 || x.shape[1] !== 1) throw new Error(`${what} must be float32 [N, 1], got ${x.dtype}${x.shapeText}`);
    }
    if (attrs.weight_grad !== 0 && attrs.weight_grad !== 1) throw new Error(`weight_grad must be 0 or 1, got ${attrs.weight_grad}`);
    return [
      { dtype: h.dtype, shape: [...h.shape] },
      { dtype: w.dtype, shape: [...w.shape] },
    ];
  },
  // X (any dtype), dep_1 .. dep_k (any, k ≥ 1) → a copy of X that exists only once every dep does: an
  // ordering edge for the recomputed forward segments (recompute.ts), which must not run before their
  // output's cotangent (and the previous segment's backward).
  // x [N, I] float, int32 tables A [N, Wa], B [Rb, Kb ≥ I], C [N, Wc], D [Rd, Kd ≥ I] and the indices a_col,
  // b_row, c_col, d_row → y = x·(keep ? scale : 0) rounded to x's dtype, keep = (a + b)·(c + d) (int32,
  // wrapping) < threshold with a = A[:, a_col], b = B[b_row, :I], c = C[:, c_col], d = D[d_row, :I]:
  // lora-graph.ts's seeded dropout in one pass, reading its per-forward tables in place (fusions.ts
  // fuseSeededDropout); its own gradient.
  SeededDropout: (g, inputs, attrs) => {
    arity(inputs, 5);
    const x = need(inputs, 0, 'x');
    if (!isFloat(x.dtype) || x.rank !== 2) throw new Error(`x must be a float [N, I], got ${x.dtype}${x.shapeText}`);
    const I = x.shape[1];
    const index = [attrs.a_col, attrs.b_row, attrs.c_col, attrs.d_row];
    for (const [k, name] of ['A', 'B', 'C', 'D'].entries()) {
      const t = need(inputs, k + 1, name);
      const perRow = k % 2 === 0;
      const at = index[k] as number;
      const span = t.shape[perRow ? 1 : 0]; // what the index selects from
      const width = t.shape[1]; // B, D: must cover x's columns
      const ok =
        t.dtype === 'int32' &&
        t.rank === 2 &&
        Number.isInteger(at) &&
        at >= 0 &&
        (typeof span !== 'number' || at < span) &&
        (perRow || typeof width !== 'number' || typeof I !== 'number' || width >= I);
      if (!ok)
        throw new Error(
          `${name} must be int32 ${perRow ? '[N, W] with a column index < W' : `[R, K >= ${String(I)}] with a row index < R`}, got ${t.dtype}${t.shapeText} at index ${at}`,
        );
    }
    if (!Number.isInteger(attrs.threshold) || !(attrs.scale > 0))
      throw new Error(`needs an integer threshold and a scale > 0, got ${attrs.threshold}, ${attrs.scale}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  // seed int64 scalar → int32 [count / width, width]: hash.ts's hashWords(count, width, seed, offset_lo,
  // offset_hi) in one pass (fuseHashWords); no gradient.
  HashWords: (g, inputs, attrs) => {
    arity(inputs, 1);
    const seed = need(inputs, 0, 'seed');
    if (seed.dtype !== 'int64' || seed.rank !== 0) throw new Error(`seed must be an int64 scalar, got ${seed.dtype}${seed.shapeText}`);
    const { count, width, offset_lo: lo, offset_hi: hi } = attrs;
    if (!(Number.isSafeInteger(count) && count >= 0 && Number.isSafeInteger(width) && width >= 1 && count % width === 0))
      throw new Error(`needs count >= 0 a multiple of width >= 1, got count ${count}, width ${width}`);
    for (const [k, v] of [
      ['offset_lo', lo],
      ['offset_hi', hi],
    ] as const)
      if (!(Number.isSafeInteger(v) && v >= 0 && v < 2147483647)) throw new Error(`${k} must be in [0, 2^31 - 1), got ${v}`);
    return [{ dtype: 'int32', shape: [count / width, width] }];
  },
  After: (g, inputs) => {
    if (inputs.length < 2) throw new Error(`expects X and at least one dep, got ${inputs.length} inputs`);
    const x = need(inputs, 0, 'X');
    for (let i = 1; i < inputs.length; i++) need(inputs, i, `dep ${i}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  // ORT's GroupQueryAttention (com.microsoft) as the generation engine uses it: query [B, S, H·hd],
  // key / value [B, S, kvH·hd], past_key / past_value [B, kvH, C, hd] (a static cache of capacity C,
  // bound to the same buffers as the presents), seqlens_k int32 [B] (each row's total length − 1),
  // total_sequence_length int32 scalar, cos_cache / sin_cache [C, rd/2] (with do_rotary) →
  // output [B, S, H·hd], present_key / present_value of the past's shape. Packed: key and value null, query
  // [B, S, (H + 2·kvH)·hd] (q, k, v heads side by side, as one Gemm over the concatenated projections gives them).
  GroupQueryAttention: (g, inputs, attrs) => {
    arity(inputs, 7, 9);
    const q = need(inputs, 0, 'query');
    const packed = inputs[1] === null && inputs[2] === null;
    const pk = need(inputs, 3, 'past_key');
    const pv = need(inputs, 4, 'past_value');
    const { num_heads: H, kv_num_heads: kvH } = attrs;
    if (!(H > 0 && kvH > 0 && H % kvH === 0)) throw new Error(`num_heads ${H} must be a positive multiple of kv_num_heads ${kvH}`);
    if (pk.rank !== 4 || pk.shape[1] !== kvH) throw new Error(`past_key must be [B, ${kvH}, C, hd], got ${pk.shapeText}`);
    const hd = pk.shape[3];
    if (packed && typeof hd !== 'number') throw new Error(`packed q/k/v needs a known head size (past_key ${pk.shapeText})`);
    const qkv = packed
      ? ([[q, 'packed query', H + 2 * kvH]] as const)
      : ([
          [q, 'query', H],
          [need(inputs, 1, 'key'), 'key', kvH],
          [need(inputs, 2, 'value'), 'value', kvH],
        ] as const);
    for (const [t, name, heads] of qkv) {
      if (t.dtype !== pk.dtype || t.rank !== 3) throw new Error(`${name} must be ${pk.dtype} [B, S, ${heads}·hd], got ${t.dtype}${t.shapeText}`);
      if (typeof hd === 'number' && typeof t.shape[2] === 'number' && t.shape[2] !== heads * hd)
        throw new Error(`${name} must be [B, S, ${heads * hd}], got ${t.shapeText}`);
    }
    if (pv.dtype !== pk.dtype || pv.shapeText !== pk.shapeText)
      throw new Error(`past_value must match past_key ${pk.shapeText}, got ${pv.dtype}${pv.shapeText}`);
    const sk = need(inputs, 5, 'seqlens_k');
    const tot = need(inputs, 6, 'total_sequence_length');
    if (sk.dtype !== 'int32' || sk.rank !== 1) throw new Error(`seqlens_k must be int32 [B], got ${sk.dtype}${sk.shapeText}`);
    if (tot.dtype !== 'int32') throw new Error(`total_sequence_length must be int32, got ${tot.dtype}`);
    if ((attrs.do_rotary ?? 0) === 1) {
      const cos = need(inputs, 7, 'cos_cache');
      const sin = need(inputs, 8, 'sin_cache');
      if (cos.rank !== 2 || cos.dtype !== pk.dtype || sin.shapeText !== cos.shapeText || sin.dtype !== cos.dtype)
        throw new Error(`cos_cache / sin_cache must be ${pk.dtype} [C, rd/2], got ${cos.dtype}${cos.shapeText} / ${sin.dtype}${sin.shapeText}`);
    }
    return [
      { dtype: q.dtype, shape: packed ? [q.shape[0] as Dim, q.shape[1] as Dim, H * (hd as number)] : [...q.shape] },
      { dtype: pk.dtype, shape: [...pk.shape] },
      { dtype: pv.dtype, shape: [...pv.shape] },
    ];
  },
  // latent_sft.VocabTopK: x [B, V] float32, inv_temperature float32 [1] → values [B, k] float32, indices [B, k]
  // int64 (descending, equal values → the lower index), lse [B] (log Σ e^(x·invT)), and the per-chunk workspace
  // cand [B, ⌈V / 8192⌉, k] int64, part [B, ⌈V / 8192⌉, 2] float32. 1 ≤ k ≤ min(64, V).
  VocabTopK: (g, inputs, attrs) => {
    arity(inputs, 2);
    const x = need(inputs, 0, 'x');
    const t = need(inputs, 1, 'inv_temperature');
    if (x.dtype !== 'float32' || x.rank !== 2) throw new Error(`x must be float32 [B, V], got ${x.dtype}${x.shapeText}`);
    if (t.dtype !== 'float32' || t.shape.length !== 1 || t.shape[0] !== 1) throw new Error(`inv_temperature must be float32 [1], got ${t.dtype}${t.shapeText}`);
    const { k } = attrs;
    const V = x.shape[1] as Dim;
    if (!Number.isInteger(k) || k < 1 || k > 64 || (typeof V === 'number' && k > V))
      throw new Error(`k must be an integer in [1, min(64, V = ${V})], got ${k}`);
    const B = x.shape[0] as Dim;
    const chunks: Dim = typeof V === 'number' ? Math.ceil(V / VOCAB_TOPK_CHUNK) : 'vocab_chunks';
    return [
      { dtype: 'float32', shape: [B, k] },
      { dtype: 'int64', shape: [B, k] },
      { dtype: 'float32', shape: [B] },
      { dtype: 'int64', shape: [B, chunks, k] },
      { dtype: 'float32', shape: [B, chunks, 2] },
    ];
  },
  // latent_sft.DecodeAttention: q [B, 1, H·hd], k / v [B, 1, kvH·hd] (before RoPE), past_key / past_value
  // [B, kvH, C, hd], seqlens_k int32 [B] (the new token's position), cos / sin [P, hd/2] → out [B, 1, H·hd],
  // present_key / present_value [B, kvH, C, hd] (the pasts with the new k / v at each row's position).
  DecodeAttention: (g, inputs, attrs) => {
    arity(inputs, 8, 8);
    const [q, k, v, pk, pv, sk, cos, sin] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
      need(inputs, i, ['query', 'key', 'value', 'past_key', 'past_value', 'seqlens_k', 'cos', 'sin'][i] as string),
    ) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const { num_heads: H, kv_num_heads: kvH } = attrs;
    if (!(H > 0 && kvH > 0 && H % kvH === 0)) throw new Error(`num_heads ${H} must be a positive multiple of kv_num_heads ${kvH}`);
    if (!['float32', 'bfloat16', 'float16'].includes(pk.dtype)) throw new Error(`past_key must be float32, bfloat16 or float16, got ${pk.dtype}`);
    if (pk.rank !== 4 || pk.shape[1] !== kvH) throw new Error(`past_key must be [B, ${kvH}, C, hd], got ${pk.shapeText}`);
    const hd = pk.shape[3];
    if (typeof hd !== 'number' || hd % 2 !== 0) throw new Error(`past_key's head size must be a static even number, got ${pk.shapeText}`);
    for (const [t, name, heads] of [
      [q, 'query', H],
      [k, 'key', kvH],
      [v, 'value', kvH],
    ] as const) {
      if (t.dtype !== pk.dtype || t.rank !== 3 || t.shape[1] !== 1 || (typeof t.shape[2] === 'number' && t.shape[2] !== heads * hd))
        throw new Error(`${name} must be ${pk.dtype} [B, 1, ${heads * hd}], got ${t.dtype}${t.shapeText}`);
    }
    if (pv.dtype !== pk.dtype || pv.shapeText !== pk.shapeText)
      throw new Error(`past_value must match past_key ${pk.shapeText}, got ${pv.dtype}${pv.shapeText}`);
    if (sk.dtype !== 'int32' || sk.rank !== 1) throw new Error(`seqlens_k must be int32 [B], got ${sk.dtype}${sk.shapeText}`);
    if (cos.rank !== 2 || cos.dtype !== pk.dtype || cos.shape[1] !== hd / 2 || sin.shapeText !== cos.shapeText || sin.dtype !== cos.dtype)
      throw new Error(`cos / sin must be ${pk.dtype} [P, ${hd / 2}], got ${cos.dtype}${cos.shapeText} / ${sin.dtype}${sin.shapeText}`);
    return [
      { dtype: q.dtype, shape: [...q.shape] },
      { dtype: pk.dtype, shape: [...pk.shape] },
      { dtype: pv.dtype, shape: [...pv.shape] },
    ];
  },
};

function checkSwiGlu(gate: Tensor, other: Tensor, what: string): void {
  if (!['float32', 'bfloat16', 'float16'].includes(gate.dtype)) throw new Error(`gate must be float32, bfloat16 or float16, got ${gate.dtype}`);
  if (other.dtype !== gate.dtype || other.rank !== gate.rank || !other.shape.every((d, i) => dimEq(d, gate.shape[i] as Dim))) {
    throw new Error(`${what} must have the dtype and shape of gate (${gate.dtype}${gate.shapeText}), got ${other.dtype}${other.shapeText}`);
  }
}

/** AdamW's checks and outputs p', m', v' (float32, p's shape). */
/**
 * The dtype of AdamW's moments m, v for parameters of dtype `p`: float32 with float32 masters, bfloat16 with
 * bfloat16 parameters (PyTorch's bf16 recipe), float32 with float16 parameters (float16's 5-bit exponent
 * cannot hold v = g² of small gradients: it would underflow to 0 and blow up m/√v).
 */
export function adamwMomentDtype(p: DType): DType {
  return p === 'bfloat16' ? 'bfloat16' : 'float32';
}

function adamwOutputs(inputs: readonly In[], attrs: OpAttrs['AdamW']): InferredOut[] {
  arity(inputs, 8);
  const p = need(inputs, 0, 'p');
  const gr = need(inputs, 1, 'g');
  if (!['float32', 'bfloat16', 'float16'].includes(p.dtype)) throw new Error(`p must be float32, bfloat16 or float16, got ${p.dtype}`);
  if (!['float32', 'bfloat16', 'float16'].includes(gr.dtype)) throw new Error(`g must be float32, bfloat16 or float16, got ${gr.dtype}`);
  for (const [i, what] of [
    [1, 'g'],
    [2, 'm'],
    [3, 'v'],
  ] as const) {
    const x = need(inputs, i, what);
    if (x.rank !== p.rank || !x.shape.every((d, j) => dimEq(d, p.shape[j] as Dim))) throw new Error(`${what} must have the shape of p`);
    if (i > 1 && x.dtype !== adamwMomentDtype(p.dtype)) throw new Error(`${what} must be ${adamwMomentDtype(p.dtype)} for ${p.dtype} p, got ${x.dtype}`);
  }
  ['step_size', 'decay', 'bc2_sqrt', 'coef'].forEach((what, i) => {
    const s = need(inputs, 4 + i, what);
    if (s.dtype !== 'float32' || s.rank !== 0) throw new Error(`${what} must be a float32 scalar, got ${s.dtype}${s.shapeText}`);
  });
  for (const k of ['beta2', 'one_minus_beta1', 'one_minus_beta2', 'eps'] as const) {
    if (typeof attrs[k] !== 'number' || !Number.isFinite(attrs[k])) throw new Error(`attribute ${k} must be a finite number`);
  }
  const md = adamwMomentDtype(p.dtype);
  return [p.dtype, md, md].map((dtype) => ({ dtype, shape: [...p.shape] }));
}

/** The multi-tensor AdamW's outputs: `one` on each group [p, g, m, v, 4 scalars], concatenated. */
function adamwMultiOutputs(inputs: readonly In[], one: (group: readonly In[]) => InferredOut[]): InferredOut[] {
  if (inputs.length < 8 || inputs.length % 4 !== 0) throw new Error(`expects the 4 scalars and 4 inputs per tensor (k >= 1), got ${inputs.length} inputs`);
  const out: InferredOut[] = [];
  for (let i = 4; i < inputs.length; i += 4) {
    try {
      out.push(...one([...inputs.slice(i, i + 4), ...inputs.slice(0, 4)]));
    } catch (e) {
      throw new Error(`tensor ${(i - 4) / 4}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return out;
}

/** A fused backward's dY: X's dtype and shape. */
function checkLikeX(dy: Tensor, x: Tensor): void {
  if (dy.dtype !== x.dtype || dy.rank !== x.rank || !dy.shape.every((d, i) => dimEq(d, x.shape[i] as Dim)))
    throw new Error('dY must have the dtype and shape of X');
}

function checkCeChunk(z: Tensor, t: Tensor, offset: number, rowsAre: 'rows' | 'columns'): void {
  if (!['float32', 'bfloat16', 'float16'].includes(z.dtype)) throw new Error(`logits must be float32, bfloat16 or float16, got ${z.dtype}`);
  if (z.rank !== 2) throw new Error(`logits must be rank 2, got ${z.shapeText}`);
  if (t.dtype !== 'int64' || t.rank !== 2 || t.shape[1] !== 1) throw new Error(`target must be int64 [R, 1], got ${t.dtype}${t.shapeText}`);
  const r = z.shape[rowsAre === 'rows' ? 0 : 1] as Dim;
  if (typeof r === 'number' && typeof t.shape[0] === 'number' && r !== t.shape[0]) throw new Error(`${t.shape[0]} targets for ${r} logit ${rowsAre}`);
  if (!(Number.isInteger(offset) && offset >= 0)) throw new Error(`offset must be an integer >= 0, got ${offset}`);
}

function checkLinearLogProb(inputs: readonly In[], chunk: number): { h: Tensor; w: Tensor; t: Tensor } {
  const h = need(inputs, 0, 'h');
  const w = need(inputs, 1, 'W');
  const t = need(inputs, 2, 'target');
  if (!['float32', 'bfloat16', 'float16'].includes(h.dtype) || h.rank !== 2) throw new Error(`h must be a float [N, D], got ${h.dtype}${h.shapeText}`);
  if (w.dtype !== h.dtype || w.rank !== 2 || typeof w.shape[0] !== 'number' || !dimEq(w.shape[1] as Dim, h.shape[1] as Dim))
    throw new Error(`W must be ${h.dtype} [V, ${String(h.shape[1])}] with a static V, got ${w.dtype}${w.shapeText}`);
  if (t.dtype !== 'int64' || t.rank !== 2 || t.shape[1] !== 1) throw new Error(`target must be int64 [N, 1], got ${t.dtype}${t.shapeText}`);
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`chunk must be an integer >= 1, got ${chunk}`);
  return { h, w, t };
}

function checkRmsWeight(x: Tensor, w: Tensor): void {
  if (!['float32', 'bfloat16', 'float16'].includes(x.dtype)) throw new Error(`X must be float32, bfloat16 or float16, got ${x.dtype}`);
  if (x.rank < 1) throw new Error('X must have rank >= 1');
  if (w.dtype !== x.dtype || w.rank !== 1 || !dimEq(w.shape[0] as Dim, x.shape[x.rank - 1] as Dim)) {
    throw new Error(`W must be ${x.dtype}[${String(x.shape[x.rank - 1])}] (X's dtype and last dim), got ${w.dtype}${w.shapeText}`);
  }
}

function checkSoftmaxMask(x: Tensor, m: Tensor): void {
  if (!['float32', 'bfloat16', 'float16'].includes(x.dtype)) throw new Error(`X must be float32, bfloat16 or float16, got ${x.dtype}`);
  if (x.rank < 1 || x.rank > 9) throw new Error(`X must have rank 1..9, got ${x.rank}`);
  if (m.dtype !== 'float32') throw new Error(`mask must be float32, got ${m.dtype}`);
  if (m.rank > x.rank) throw new Error(`mask rank ${m.rank} exceeds X rank ${x.rank}`);
  const lead = x.rank - m.rank;
  m.shape.forEach((d, i) => {
    const xd = x.shape[lead + i] as Dim;
    if (d !== 1 && !dimEq(d, xd) && !(typeof d === 'string' || typeof xd === 'string'))
      throw new Error(`mask ${m.shapeText} does not broadcast to X ${x.shapeText}`);
  });
}

/** Two dims that are both static and differ (a symbolic dim may stand for any size: the kernel checks at run time). */
function clash(a: Dim, b: Dim): boolean {
  return typeof a === 'number' && typeof b === 'number' && a !== b;
}

/** FlashAttention's operands: Q [B, G, N, D], K / V [B, G, S, D] of one float dtype, rep | N, M float32 rank 5 broadcastable to [B, G, rep, N/rep, S]. */
function checkFlashAttention(q: Tensor, k: Tensor, v: Tensor, m: Tensor, rep: number): void {
  if (!['float32', 'bfloat16', 'float16'].includes(q.dtype)) throw new Error(`Q must be float32, bfloat16 or float16, got ${q.dtype}`);
  if (!(Number.isInteger(rep) && rep >= 1)) throw new Error(`rep must be an integer >= 1, got ${rep}`);
  if (q.rank !== 4) throw new Error(`Q must be [B, G, N, D], got ${q.shapeText}`);
  const [B, G, N, D] = q.shape as [Dim, Dim, Dim, Dim];
  if (typeof N === 'number' && N % rep !== 0) throw new Error(`Q's N = ${N} is not a multiple of rep ${rep}`);
  for (const [t, what] of [
    [k, 'K'],
    [v, 'V'],
  ] as const) {
    if (t.dtype !== q.dtype || t.rank !== 4 || clash(t.shape[0] as Dim, B) || clash(t.shape[1] as Dim, G) || clash(t.shape[3] as Dim, D))
      throw new Error(`${what} must be ${q.dtype} [${String(B)}, ${String(G)}, S, ${String(D)}] (Q ${q.shapeText}), got ${t.dtype}${t.shapeText}`);
  }
  if (clash(v.shape[2] as Dim, k.shape[2] as Dim)) throw new Error(`V ${v.shapeText} must have K's S (${k.shapeText})`);
  const full: Dim[] = [B, G, rep, typeof N === 'number' ? N / rep : 'T', k.shape[2] as Dim];
  if (m.dtype !== 'float32' || m.rank !== 5 || m.shape.some((d, i) => d !== 1 && clash(d, full[i] as Dim)))
    throw new Error(`M must be float32 broadcastable to [B, G, rep, T, S] = ${showDims(full)} (each dim 1 or the full size), got ${m.dtype}${m.shapeText}`);
}

function showDims(s: readonly Dim[]): string {
  return `[${s.join(', ')}]`;
}

function isStaticDims(s: readonly Dim[]): s is readonly number[] {
  return s.every((d) => typeof d === 'number');
}
