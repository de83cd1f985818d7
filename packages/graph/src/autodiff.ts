// Reverse-mode autodiff on a Graph: `grad` appends the backward pass as ordinary ONNX ops (opset 18,
// all with ORT CPU and CUDA kernels in the inference build). One exhaustive table holds a rule per
// differentiable op; the compiler rejects an op without one. Contributions to a value used several
// times are summed with Add; broadcast inputs get their gradient summed back (`unbroadcast`).
// Leaves out higher-order gradients (rules of the ops only backward uses are not provided).
import { type DType, isFloat } from './dtype.js';
import { type Graph, type Node, type Tensor, isStatic } from './graph.js';
import { type DifferentiableOp, type OpAttrs, type OpType, nonDifferentiableOps, normAxis } from './ops.js';

/** What a gradient rule sees: the node, its inputs/outputs and the cotangents of its outputs. */
export interface GradContext<P extends OpType> {
  g: Graph;
  node: Node;
  attrs: OpAttrs[P];
  /** Forward inputs (null for omitted optional ones). */
  x: ReadonlyArray<Tensor | null>;
  /** Forward outputs. */
  y: readonly Tensor[];
  /** Cotangent of each output, null when nothing flows into it. */
  dy: ReadonlyArray<Tensor | null>;
  /** Whether input i needs a gradient (rules skip work for the others). */
  needs: readonly boolean[];
}

/** Returns the cotangent of each input (null: none / not needed). */
export type GradRule<P extends OpType> = (c: GradContext<P>) => Array<Tensor | null>;

const sc = (g: Graph, v: number, dtype: DType): Tensor => g.scalar(v, dtype);

/** Sums `grad` down to `target`'s shape (undoing numpy broadcasting), then reshapes to it. */
export function unbroadcast(g: Graph, grad: Tensor, target: Tensor): Tensor {
  const gs = grad.shape;
  const ts = target.shape;
  if (gs.length === ts.length && gs.every((d, i) => d === ts[i])) return grad;
  const lead = gs.length - ts.length;
  const axes: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    if (i < lead) axes.push(i);
    else if (ts[i - lead] === 1 && gs[i] !== 1) axes.push(i);
  }
  const k = axes.length;
  const prefix = axes.every((a, i) => a === i);
  const summed = k === 0 ? grad : grad.dtype === 'bfloat16' && prefix && isStatic(gs.slice(k)) ? sumLeadingAxes(g, grad, k) : g.reduceSum(grad, axes, true);
  return g.reshape(summed, isStatic(ts) ? [...ts] : g.shapeOf(target));
}

/**
 * Σ of `x` over its first `k` axes as ones[1, M] · x[M, K] (M = product of those axes, K of the rest;
 * result [1, K]). Used for bfloat16 gradients reduced over leading (row) axes — RMSNorm weights,
 * biases, broadcast scales: on the CUDA EP a bf16 MatMul is a cuBLAS GEMM with float32 accumulation,
 * while ReduceSum over rows takes ORT's slow cuDNN reduction path (fixed cost per call, ~40 GB/s on
 * [4096, 2048] in the profile). Same float32-accumulated sum, rounded once to bfloat16; the summation
 * order differs. Not used for other dtypes: an fp32 MatMul may run in TF32 on the GPU, an fp16 GEMM may
 * accumulate in fp16, and fp32/fp16 graphs also run on the CPU EP (tests).
 */
export function sumLeadingAxes(g: Graph, x: Tensor, k: number): Tensor {
  const rest = x.shape.slice(k);
  if (!isStatic(rest)) throw new Error(`sumLeadingAxes: the kept dims of ${x.shapeText} must be static`);
  const K = (rest as number[]).reduce((p, q) => p * q, 1);
  const lead = x.shape.slice(0, k);
  const flat = g.reshape(x, [-1, K]);
  const M = isStatic(lead) ? g.ints([1, (lead as number[]).reduce((p, q) => p * q, 1)]) : g.concat([g.ints([1]), g.slice(g.shapeOf(flat), [0], [1])], 0);
  const ones = g.expand(g.scalar(1, x.dtype), M);
  return g.matmul(ones, flat);
}

function dy0(c: { dy: ReadonlyArray<Tensor | null> }): Tensor {
  const d = c.dy[0];
  if (d === null || d === undefined) throw new Error('missing cotangent of output 0');
  return d;
}
function xi(c: { x: ReadonlyArray<Tensor | null> }, i: number): Tensor {
  const t = c.x[i];
  if (t === null || t === undefined) throw new Error(`missing input ${i}`);
  return t;
}
/** Swaps the last two axes. */
function mT(g: Graph, t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[t.rank - 1] = t.rank - 2;
  perm[t.rank - 2] = t.rank - 1;
  return g.transpose(t, perm);
}
/** Axes of a Reduce* node as normalized numbers (all axes when omitted). */
function reduceAxes<P extends 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceSumSquare'>(c: GradContext<P>): number[] {
  const x = xi(c, 0);
  const a = c.x[1] ?? null;
  if (a === null) return x.shape.map((_, i) => i);
  const v = c.g.knownInts(a);
  if (v === undefined) throw new Error('reduce gradient needs constant axes');
  return v.map((q) => normAxis(q, x.rank));
}
/** The cotangent of a reduction reshaped to keepdims form. */
function keptDy<P extends 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceSumSquare'>(c: GradContext<P>, axes: number[]): Tensor {
  const d = dy0(c);
  if ((c.attrs.keepdims ?? 1) === 1 || axes.length === 0) return d;
  return c.g.unsqueeze(d, axes);
}
function noop<P extends 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceSumSquare'>(c: GradContext<P>): boolean {
  return (c.x[1] ?? null) === null && (c.attrs.noop_with_empty_axes ?? 0) === 1;
}
/** Elementwise rule: dx = dy * f(x, y). */
const elementwise =
  <P extends OpType>(f: (g: Graph, x: Tensor, y: Tensor) => Tensor): GradRule<P> =>
  (c) => [c.g.mul(dy0(c), f(c.g, xi(c, 0), c.y[0] as Tensor))];
/** Shape-only ops: the cotangent is reshaped back to the input's shape. */
const reshapeBack =
  <P extends OpType>(): GradRule<P> =>
  (c) => {
    const x = xi(c, 0);
    return [c.g.reshape(dy0(c), isStatic(x.shape) ? [...x.shape] : c.g.shapeOf(x)), ...c.x.slice(1).map(() => null)];
  };
/**
 * ScatterND / ScatterElements in float32 when `data` is float16/bfloat16: the CUDA EP has no 16-bit
 * kernels for them (seen: "element_type 16 not implemented for ScatterND"), and summing duplicate
 * indices (embedding rows) in float32 is the more accurate choice anyway. Result in data's dtype.
 */
/** The shape input when `t` is zeros made by zerosLike (Expand of a scalar 0 constant), else null. */
function zerosShape(g: Graph, t: Tensor): Tensor | null {
  const z = g.producer(t.name);
  if (z === undefined || z.op !== 'Expand') return null;
  const zero = g.initializers.get(z.inputs[0] as string);
  if (zero === undefined || zero.data.length !== 1 || Number(zero.data[0]) !== 0) return null;
  return g.value(z.inputs[1] as string);
}
function scatter(g: Graph, op: 'ScatterND' | 'ScatterElements', data: Tensor, idx: Tensor, upd: Tensor, attrs: Record<string, number | string> = {}): Tensor {
  const low = data.dtype === 'float16' || data.dtype === 'bfloat16';
  if (!low) return g.op1(op, [data, idx, upd], attrs);
  // 16-bit data is scattered in float32 (duplicate indices add without 16-bit rounding in between). Zeros
  // (zerosLike: Expand of a scalar 0) are made in float32 directly: a tied 128k-row embedding's gradient
  // would otherwise write the 16-bit zeros and cast them (≈ 2 GB of traffic per step at 1B).
  const shape = zerosShape(g, data);
  const wide = shape !== null ? g.expand(g.scalar(0, 'float32'), shape) : g.cast(data, 'float32');
  const out = g.op1(op, [wide, idx, g.cast(upd, 'float32')], attrs);
  return g.cast(out, data.dtype);
}
/** Scatters `dy` back into a zero tensor shaped like `x` at the flat positions `flatIdx` (no duplicates). */
function scatterFlat(g: Graph, x: Tensor, flatIdx: Tensor, dy: Tensor): Tensor {
  const zeros = g.reshape(g.zerosLike(x), [-1]);
  const scattered = scatter(g, 'ScatterND', zeros, g.reshape(flatIdx, [-1, 1]), g.reshape(dy, [-1]));
  return g.reshape(scattered, isStatic(x.shape) ? [...x.shape] : g.shapeOf(x));
}
/**
 * When `d` (a cotangent shaped like `y`) is ScatterElements(zeros, idx, upd) along `axis` with add — what
 * GatherElements' rule makes for picked log-probs, one per row (cross-entropy) or k per row (a top-k
 * KL) — returns idx and upd; else null.
 */
function pickedCotangent(g: Graph, d: Tensor, y: Tensor, axis: number): { idx: Tensor; upd: Tensor } | null {
  const p = g.producer(d.name);
  if (p === undefined || p.op !== 'ScatterElements' || d.dtype !== y.dtype || p.attrs['reduction'] !== 'add') return null;
  const [data, idx, upd] = p.inputs.map((n) => g.value(n)) as [Tensor, Tensor, Tensor];
  if (normAxis(Number(p.attrs['axis'] ?? 0), d.rank) !== axis) return null;
  if (idx.shape.length !== upd.shape.length || idx.shape.some((s, i) => s !== upd.shape[i])) return null;
  return zerosShape(g, data) === null ? null : { idx, upd };
}

/** Flat element index of every position of `x`, shaped like `x` (int64). */
function iota(g: Graph, x: Tensor): Tensor {
  const n = g.op1('Size', [x]);
  const r = g.op1('Range', [g.scalar(0, 'int64'), n, g.scalar(1, 'int64')]);
  return g.reshape(r, isStatic(x.shape) ? [...x.shape] : g.shapeOf(x));
}

/** One gradient rule per differentiable op; each carries its derivative as a comment. */
export const gradRules: { readonly [P in DifferentiableOp]: GradRule<P> } = {
  // y = x
  Identity: (c) => [dy0(c)],
  // y = -x
  Neg: (c) => [c.g.neg(dy0(c))],
  // y = a + b
  Add: (c) => [unbroadcast(c.g, dy0(c), xi(c, 0)), unbroadcast(c.g, dy0(c), xi(c, 1))],
  // y = a - b
  Sub: (c) => [unbroadcast(c.g, dy0(c), xi(c, 0)), c.needs[1] ? unbroadcast(c.g, c.g.neg(dy0(c)), xi(c, 1)) : null],
  // y = a b
  Mul: (c) => [
    c.needs[0] ? unbroadcast(c.g, c.g.mul(dy0(c), xi(c, 1)), xi(c, 0)) : null,
    c.needs[1] ? unbroadcast(c.g, c.g.mul(dy0(c), xi(c, 0)), xi(c, 1)) : null,
  ],
  // y = a / b: da = dy / b, db = -dy y / b
  Div: (c) => [
    c.needs[0] ? unbroadcast(c.g, c.g.div(dy0(c), xi(c, 1)), xi(c, 0)) : null,
    c.needs[1] ? unbroadcast(c.g, c.g.neg(c.g.div(c.g.mul(dy0(c), c.y[0] as Tensor), xi(c, 1))), xi(c, 1)) : null,
  ],
  // y = a^b: da = dy b a^(b-1), db = dy y ln a
  Pow: (c) => {
    const g = c.g;
    const a = xi(c, 0);
    const b = xi(c, 1);
    const bb = g.cast(b, a.dtype);
    const da = c.needs[0] ? unbroadcast(g, g.mul(dy0(c), g.mul(bb, g.pow(a, g.sub(bb, sc(g, 1, a.dtype))))), a) : null;
    const db = c.needs[1] ? unbroadcast(g, g.mul(dy0(c), g.mul(c.y[0] as Tensor, g.log(a))), b) : null;
    return [da, db];
  },
  // y = √x: dx = dy / (2y)
  Sqrt: (c) => [c.g.div(dy0(c), c.g.mul(c.y[0] as Tensor, sc(c.g, 2, xi(c, 0).dtype)))],
  // y = 1/x: dx = -dy y²
  Reciprocal: (c) => [c.g.neg(c.g.mul(dy0(c), c.g.mul(c.y[0] as Tensor, c.y[0] as Tensor)))],
  // y = eˣ: dx = dy y
  Exp: elementwise((g, x, y) => y),
  // y = ln x: dx = dy / x
  Log: (c) => [c.g.div(dy0(c), xi(c, 0))],
  // y = σ(x): dx = dy y (1 - y)
  Sigmoid: elementwise((g, x, y) => g.mul(y, g.sub(sc(g, 1, y.dtype), y))),
  // y = tanh x: dx = dy (1 - y²)
  Tanh: elementwise((g, x, y) => g.sub(sc(g, 1, y.dtype), g.mul(y, y))),
  // y = erf x: dx = dy 2/√π e^(-x²)
  Erf: elementwise((g, x) => g.mul(sc(g, 2 / Math.sqrt(Math.PI), x.dtype), g.exp(g.neg(g.mul(x, x))))),
  // y = sin x: dx = dy cos x
  Sin: elementwise((g, x) => g.cos(x)),
  // y = cos x: dx = -dy sin x
  Cos: elementwise((g, x) => g.neg(g.sin(x))),
  // y = max(x, 0): dx = dy [x > 0]
  Relu: (c) => {
    const x = xi(c, 0);
    return [c.g.where(c.g.op1('Greater', [x, sc(c.g, 0, x.dtype)]), dy0(c), sc(c.g, 0, x.dtype))];
  },
  // y = a b (batched, broadcast): da = dy bᵀ, db = aᵀ dy, summed over broadcast batch dims
  MatMul: (c) => {
    const g = c.g;
    const a = xi(c, 0);
    const b = xi(c, 1);
    if (a.rank < 2 || b.rank < 2) throw new Error('MatMul gradient needs rank ≥ 2 operands (reshape vectors first)');
    const d = dy0(c);
    return [c.needs[0] ? unbroadcast(g, g.matmul(d, mT(g, b)), a) : null, c.needs[1] ? unbroadcast(g, g.matmul(mT(g, a), d), b) : null];
  },
  // y = α op(A) op(B) + β C
  Gemm: (c) => {
    const g = c.g;
    const [a, b, cc] = [xi(c, 0), xi(c, 1), c.x[2] ?? null];
    const d = dy0(c);
    const alpha = c.attrs.alpha ?? 1;
    const tA = c.attrs.transA ?? 0;
    const tB = c.attrs.transB ?? 0;
    const da = !c.needs[0]
      ? null
      : tA === 0
        ? g.op1('Gemm', [d, b], { alpha, transB: tB === 0 ? 1 : 0 })
        : g.op1('Gemm', [b, d], { alpha, transA: tB, transB: 1 });
    const db = !c.needs[1]
      ? null
      : tB === 0
        ? g.op1('Gemm', [a, d], { alpha, transA: tA === 0 ? 1 : 0 })
        : g.op1('Gemm', [d, a], { alpha, transA: 1, transB: tA });
    const beta = c.attrs.beta ?? 1;
    const dc = cc === null || !c.needs[2] ? null : unbroadcast(g, beta === 1 ? d : g.mul(d, sc(g, beta, d.dtype)), cc);
    return [da, db, dc];
  },
  // y = softmax(x): dx = y (dy - Σ dy y)
  Softmax: (c) => {
    const g = c.g;
    const y = c.y[0] as Tensor;
    const axis = normAxis(c.attrs.axis ?? -1, y.rank);
    const d = dy0(c);
    return [g.mul(y, g.sub(d, g.reduceSum(g.mul(d, y), [axis], true)))];
  },
  // latent_sft fused softmax (fusions.ts): dX by the fused backward op; no gradient for the mask.
  MaskedSoftmax: (c) => {
    if (c.needs[1]) throw new Error('MaskedSoftmax: the mask has no gradient (it must not depend on a parameter)');
    const d = c.dy[0];
    if (d === null || d === undefined || !c.needs[0]) return [null, null];
    const [x, m] = [c.x[0] as Tensor, c.x[1] as Tensor];
    return [c.g.op1('MaskedSoftmaxGrad', [d, x, m, c.y[1] as Tensor], c.attrs.scale !== undefined ? { scale: c.attrs.scale } : {}), null];
  },
  // latent_sft fused attention (fusions.ts fuseFlashAttention): dQ, dK, dV by the fused backward op, which
  // recomputes the probabilities from Q, K, M and the row stats; no gradient for the mask. The stats output
  // is read by the backward only.
  FlashAttention: (c) => {
    if (c.dy[1] !== null && c.dy[1] !== undefined) throw new Error('FlashAttention: its stats output has no gradient');
    if (c.needs[3]) throw new Error('FlashAttention: the mask has no gradient (it must not depend on a parameter)');
    const d = c.dy[0];
    if (d === null || d === undefined || (!c.needs[0] && !c.needs[1] && !c.needs[2])) return [null, null, null, null];
    const [q, k, v, m] = c.x as [Tensor, Tensor, Tensor, Tensor];
    const attrs = c.attrs.scale !== undefined ? { scale: c.attrs.scale, rep: c.attrs.rep } : { rep: c.attrs.rep };
    const [dq, dk, dv] = c.g.op('FlashAttentionGrad', [d, q, k, v, m, c.y[0] as Tensor, c.y[1] as Tensor], attrs) as [Tensor, Tensor, Tensor, Tensor];
    return [c.needs[0] ? dq : null, c.needs[1] ? dk : null, c.needs[2] ? dv : null, null];
  },
  // latent_sft fused RMSNorm (fusions.ts): dX and the dW partials by the fused backward op, dW summed here.
  RMSNorm: (c) => {
    const d = c.dy[0];
    if (d === null || d === undefined || (!c.needs[0] && !c.needs[1])) return [null, null];
    const [x, w] = [c.x[0] as Tensor, c.x[1] as Tensor];
    const [dx, parts] = c.g.op('RMSNormGrad', [d, x, w, c.y[1] as Tensor]) as [Tensor, Tensor];
    const dw = c.needs[1] ? c.g.cast(c.g.reduceSum(parts, [0], false), w.dtype) : null;
    return [c.needs[0] ? dx : null, dw];
  },
  // latent_sft fused SwiGLU (fusions.ts): dGate and dUp by the fused backward op.
  SwiGLU: (c) => {
    const d = c.dy[0];
    if (d === null || d === undefined || (!c.needs[0] && !c.needs[1])) return [null, null];
    const [dg, du] = c.g.op('SwiGLUGrad', [d, c.x[0] as Tensor, c.x[1] as Tensor]) as [Tensor, Tensor];
    return [c.needs[0] ? dg : null, c.needs[1] ? du : null];
  },
  // latent_sft fused RoPE (fusions.ts fuseRope): y = R·x with R linear in x, so dx = Rᵀ·dy, the same op with
  // `transpose` flipped (dx[j] = dy[j]·cos[j] + dy[swap(j)]·sinSigned[swap(j)]); one kernel both ways. cos and
  // sinSigned get no gradient (they come from integer positions): as for MaskedSoftmax's mask, a graph in which
  // they depend on a parameter is refused rather than given a silently wrong gradient.
  Rope: (c) => {
    if (c.needs[1] || c.needs[2]) throw new Error('Rope: cos and sinSigned have no gradient (they must not depend on a parameter)');
    const d = c.dy[0];
    if (d === null || d === undefined || !c.needs[0]) return [null, null, null];
    const transpose = (c.attrs.transpose ?? 0) === 1 ? 0 : 1;
    return [c.g.op1('Rope', [d, c.x[1] as Tensor, c.x[2] as Tensor], transpose === 1 ? { transpose } : {}), null, null];
  },
  // latent_sft fused seeded dropout (fusions.ts): y = x·mask, so dx = dy·mask, the same op (tables and
  // indices) on dy; the int32 tables have no gradient.
  SeededDropout: (c) => {
    const d = c.dy[0];
    if (d === null || d === undefined || !c.needs[0]) return [null, null, null, null, null];
    const tables = c.x.slice(1) as Tensor[];
    return [c.g.op1('SeededDropout', [d, ...tables], { ...c.attrs }), null, null, null, null];
  },
  // Graph-level LM head + log-prob (linear-cross-entropy.ts): dh and dW by LinearLogProbGrad (lowered with
  // it); dW only when W needs one (a frozen head: no weight-gradient GEMMs). The lse output is read by the
  // backward only.
  LinearLogProb: (c) => {
    if (c.dy[1] !== null && c.dy[1] !== undefined) throw new Error('LinearLogProb: its lse output has no gradient');
    if (c.needs[2]) throw new Error('LinearLogProb: the target has no gradient');
    const d = c.dy[0];
    if (d === null || d === undefined || (!c.needs[0] && !c.needs[1])) return [null, null, null];
    const [h, w, t] = [c.x[0] as Tensor, c.x[1] as Tensor, c.x[2] as Tensor];
    const [dh, dw] = c.g.op('LinearLogProbGrad', [d, h, w, t, c.y[1] as Tensor], { chunk: c.attrs.chunk, weight_grad: c.needs[1] ? 1 : 0 }) as [Tensor, Tensor];
    return [c.needs[0] ? dh : null, c.needs[1] ? dw : null, null];
  },
  // y = x - logΣeˣ: dx = dy - eʸ Σ dy
  LogSoftmax: (c) => {
    const g = c.g;
    const y = c.y[0] as Tensor;
    const axis = normAxis(c.attrs.axis ?? -1, y.rank);
    const d = dy0(c);
    // Picked log-probs: dy is k values u per row scattered (added) into zeros (GatherElements' rule), so
    // Σ dy = Σ_k u and dx = eʸ·(−Σ_k u) + the u added at their indices, one ScatterElements-add into
    // eʸ·(−Σ_k u), without the general formula's zeros/ReduceSum/Sub passes over [N, V] (the unused scatter
    // is pruned). k = 1 (cross-entropy): bit for bit the general formula; k > 1 (the top-k KL): the same
    // sums in another order.
    const picked = pickedCotangent(g, d, y, axis);
    if (picked !== null) {
      const u = picked.upd.shape[axis] === 1 ? picked.upd : g.reduceSum(picked.upd, [axis], true);
      return [g.op1('ScatterElements', [g.mul(g.exp(y), g.neg(u)), picked.idx, picked.upd], { axis, reduction: 'add' })];
    }
    return [g.sub(d, g.mul(g.exp(y), g.reduceSum(d, [axis], true)))];
  },
  // y = Σ x: dx = broadcast(dy)
  ReduceSum: (c) => {
    const x = xi(c, 0);
    if (noop(c)) return [dy0(c), null];
    return [c.g.expand(keptDy(c, reduceAxes(c)), c.g.shapeOf(x)), null];
  },
  // y = Σ x²: dx = 2 x broadcast(dy)
  ReduceSumSquare: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    const d = noop(c) ? dy0(c) : keptDy(c, reduceAxes(c));
    return [g.mul(g.mul(x, sc(g, 2, x.dtype)), d), null];
  },
  // y = mean x: dx = broadcast(dy) / n
  ReduceMean: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    if (noop(c)) return [dy0(c), null];
    const axes = reduceAxes(c);
    const dims = axes.map((a) => x.shape[a]);
    const n = dims.every((d) => typeof d === 'number')
      ? sc(
          g,
          (dims as number[]).reduce((p, q) => p * q, 1),
          x.dtype,
        )
      : g.cast(g.div(g.op1('Size', [x]), g.op1('Size', [c.y[0] as Tensor])), x.dtype);
    return [g.expand(g.div(keptDy(c, axes), n), g.shapeOf(x)), null];
  },
  // y = max x: dx = dy [x = y] / #ties (ties share the gradient, as torch.amax)
  ReduceMax: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    if (noop(c)) return [dy0(c), null];
    const axes = reduceAxes(c);
    const yk = (c.attrs.keepdims ?? 1) === 1 ? (c.y[0] as Tensor) : g.unsqueeze(c.y[0] as Tensor, axes);
    const mask = g.cast(g.equal(x, yk), x.dtype);
    const count = g.reduceSum(mask, axes, true);
    return [g.mul(mask, g.div(keptDy(c, axes), count)), null];
  },
  // y = data[idx] along axis: dx = scatter-add of dy (duplicates accumulate)
  Gather: (c) => {
    const g = c.g;
    const data = xi(c, 0);
    let idx = xi(c, 1);
    const axis = normAxis(c.attrs.axis ?? 0, data.rank);
    if (idx.dtype !== 'int64') idx = g.cast(idx, 'int64');
    // Negative indices count from the end.
    const size = g.gather(g.shapeOf(data), g.ints([axis]), 0);
    idx = g.where(g.op1('Less', [idx, g.scalar(0, 'int64')]), g.add(idx, g.reshape(size, [])), idx);
    let d = dy0(c);
    const r = idx.rank;
    // Move the index dims of dy to the front: [idx..., data[:axis], data[axis+1:]].
    const perm = [
      ...Array.from({ length: r }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: data.rank - axis - 1 }, (_, i) => axis + r + i),
    ];
    if (perm.some((p, i) => p !== i)) d = g.transpose(d, perm);
    const dataPerm = [axis, ...Array.from({ length: data.rank }, (_, i) => i).filter((i) => i !== axis)];
    const dataT = dataPerm.some((p, i) => p !== i) ? g.transpose(data, dataPerm) : data;
    const rest = g.slice(g.shapeOf(dataT), [1], [data.rank]);
    const upd = g.reshape(d, g.concat([g.ints([-1]), rest], 0));
    const zeros = g.zerosLike(dataT);
    let dx = scatter(g, 'ScatterND', zeros, g.reshape(idx, [-1, 1]), upd, { reduction: 'add' });
    if (dataPerm.some((p, i) => p !== i))
      dx = g.transpose(
        dx,
        dataPerm.map((_, i) => dataPerm.indexOf(i)),
      );
    return [dx, null];
  },
  // y = data[…idx…] along axis: dx = ScatterElements(0, idx, dy, add)
  GatherElements: (c) => {
    const g = c.g;
    const data = xi(c, 0);
    const axis = normAxis(c.attrs.axis ?? 0, data.rank);
    return [scatter(g, 'ScatterElements', g.zerosLike(data), g.cast(xi(c, 1), 'int64'), dy0(c), { axis, reduction: 'add' }), null];
  },
  Reshape: reshapeBack(),
  Unsqueeze: reshapeBack(),
  Squeeze: reshapeBack(),
  // y = transpose(x, p): dx = transpose(dy, p⁻¹)
  Transpose: (c) => {
    const x = xi(c, 0);
    const perm = c.attrs.perm ?? x.shape.map((_, i) => x.rank - 1 - i);
    return [
      c.g.transpose(
        dy0(c),
        perm.map((_, i) => perm.indexOf(i)),
      ),
    ];
  },
  // y = concat(xs): dx_i = the matching piece of dy
  Concat: (c) => {
    const g = c.g;
    const xs = c.x.map((_, i) => xi(c, i));
    const axis = normAxis(c.attrs.axis, (xs[0] as Tensor).rank);
    const sizes = g.concat(
      xs.map((t) => g.gather(g.shapeOf(t), g.ints([axis]), 0)),
      0,
    );
    if (xs.length === 1) return [dy0(c)];
    return g.op('Split', [dy0(c), sizes], { axis });
  },
  // y = x[starts:ends:steps]: dx = dy scattered to the sliced flat positions
  Slice: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    const pos = g.op1('Slice', [iota(g, x), ...c.x.slice(1)]);
    return [scatterFlat(g, x, pos, dy0(c)), null, null, null, null].slice(0, c.x.length);
  },
  // ys = split(x): dx = concat(dys), zeros for outputs nothing flowed into
  Split: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    const axis = normAxis(c.attrs.axis ?? 0, x.rank);
    const parts = c.y.map((y, i) => c.dy[i] ?? g.zerosLike(y));
    return [g.concat(parts, axis), ...c.x.slice(1).map(() => null)];
  },
  // y = expand(x, s): dx = dy summed over broadcast dims
  Expand: (c) => [unbroadcast(c.g, dy0(c), xi(c, 0)), null],
  // y = c ? a : b
  Where: (c) => {
    const g = c.g;
    const [cond, a, b] = [xi(c, 0), xi(c, 1), xi(c, 2)];
    const zero = sc(g, 0, a.dtype);
    return [null, c.needs[1] ? unbroadcast(g, g.where(cond, dy0(c), zero), a) : null, c.needs[2] ? unbroadcast(g, g.where(cond, zero, dy0(c)), b) : null];
  },
  // y = cast(x): dx = cast(dy) back to x's dtype (none for integer x)
  Cast: (c) => {
    const x = xi(c, 0);
    return [isFloat(x.dtype) ? c.g.cast(dy0(c), x.dtype) : null];
  },
  // (values, indices) = topk(x): dx = dy_values scattered to the chosen positions
  TopK: (c) => {
    const g = c.g;
    const x = xi(c, 0);
    const axis = normAxis(c.attrs.axis ?? -1, x.rank);
    return [scatter(g, 'ScatterElements', g.zerosLike(x), c.y[1] as Tensor, dy0(c), { axis }), null];
  },
};

/** True when `op` has a gradient rule. */
export function isDifferentiable(op: OpType): op is DifferentiableOp {
  return !(op in nonDifferentiableOps);
}

/**
 * Appends the backward pass of `loss` (any shape; seeded with ones) to its graph and returns
 * d loss / d wrt[i] for each i (zeros when `loss` does not depend on it). Only nodes on a path from
 * some `wrt` to `loss` are differentiated; nothing flows through `Graph.stopGradient` nodes. Call
 * `graph.prune()` after choosing the outputs. `cotangents`: for each value named by a key, grad sets the
 * total cotangent it built for that value (left as is when none flows into it): what the
 * recomputation pass (recompute.ts) orders each segment's recomputation after.
 */
export function grad(graph: Graph, loss: Tensor, wrt: readonly Tensor[], seed?: Tensor, cotangents?: Map<string, Tensor | null>): Tensor[] {
  const g = graph;
  for (const w of wrt) if (!isFloat(w.dtype)) throw new Error(`grad: '${w.name}' is ${w.dtype}; only float values have gradients`);
  if (!isFloat(loss.dtype)) throw new Error(`grad: loss '${loss.name}' is ${loss.dtype}`);
  const nodes = [...g.nodes];
  // Forward reachability from wrt, backward reachability from loss.
  // Stop-gradient nodes cut the forward reachability (their outputs depend on no `wrt` for `grad`).
  const fromWrt = new Set(wrt.map((w) => w.name));
  for (const n of nodes) if (n.stopGradient !== true && n.inputs.some((i) => fromWrt.has(i))) for (const o of n.outputs) fromWrt.add(o);
  const toLoss = new Set([loss.name]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i] as Node;
    if (n.outputs.some((o) => toLoss.has(o))) for (const x of n.inputs) if (x !== '') toLoss.add(x);
  }
  const relevant = (name: string): boolean => fromWrt.has(name) && toLoss.has(name) && isFloat(g.value(name).dtype);

  const pending = new Map<string, Tensor[]>();
  const push = (name: string, t: Tensor): void => {
    const list = pending.get(name);
    if (list) list.push(t);
    else pending.set(name, [t]);
  };
  const take = (name: string): Tensor | null => {
    const list = pending.get(name);
    if (list === undefined || list.length === 0) return null;
    const sum = list.reduce((acc, t) => g.add(acc, t));
    pending.set(name, [sum]);
    return sum;
  };
  push(loss.name, seed ?? g.expand(g.scalar(1, loss.dtype), g.shapeOf(loss)));

  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i] as Node;
    if (n.stopGradient === true || !n.outputs.some((o) => relevant(o))) continue;
    const needs = n.inputs.map((x) => x !== '' && relevant(x));
    if (!needs.some(Boolean)) continue;
    const dy = n.outputs.map((o) => (relevant(o) ? take(o) : null));
    if (dy.every((d) => d === null)) continue;
    n.outputs.forEach((o, k) => {
      const d = dy[k];
      if (cotangents?.has(o) === true && d !== null && d !== undefined) cotangents.set(o, d);
    });
    if (!isDifferentiable(n.op)) throw new Error(`grad: gradient flows into ${n.op} node '${n.name}', which is not differentiable`);
    const rule = gradRules[n.op] as GradRule<OpType>;
    const dx = rule({
      g,
      node: n,
      attrs: n.attrs as never,
      x: n.inputs.map((x) => (x === '' ? null : g.value(x))),
      y: n.outputs.map((o) => g.value(o)),
      dy,
      needs,
    });
    n.inputs.forEach((name, k) => {
      const d = dx[k];
      if (needs[k] && d !== null && d !== undefined) {
        const target = g.value(name);
        if (d.dtype !== target.dtype) throw new Error(`grad rule of ${n.op} gave ${d.dtype} for ${target.dtype} input '${name}'`);
        push(name, d);
      }
    });
  }
  return wrt.map((w) => take(w.name) ?? g.zerosLike(w));
}
