// Rotary position embeddings in a graph, HF convention (rotate_half over the two halves of head_dim):
//   cos/sin[p, j] = cos/sin(p · inv_freq[j mod hd/2]) (emb = cat(freqs, freqs)),
//   x_rot = x · cos + rotate_half(x) · sin,  rotate_half(x) = cat(−x₂, x₁).
// The op table has no Sin/Cos, so the angles come from two small float64-computed tables by angle
// addition: p = hi·K + lo, cos(p f) = cos(hi K f) cos(lo f) − sin(hi K f) sin(lo f) (sin likewise), with
// K = ⌈√maxPositions⌉: 4 tables of ~√maxPositions × hd/2 values instead of maxPositions × hd.
// The sign of rotate_half is folded into the sin factor: x · cos + swap(x) · [−sin, sin].
// Shapes: B batch, T new tokens, n heads, hd head_dim.
import type { DType, Graph, Tensor } from '@latent-sft/graph';
import { type ModelConfig, ropeInvFreq } from './config.js';

/** cos and signed sin ([−sin, sin] halves) for every position, each [B, T, 1, hd] in `dtype`. */
export interface RopeFactors {
  cos: Tensor;
  sinSigned: Tensor;
}

/**
 * Builds the RoPE factors of int64 `positionIds` [B, T] for `config` (llama3 scaling via ropeInvFreq).
 * Positions must lie in [0, maxPositions); larger ones make ORT's Gather fail at run time.
 */
export function ropeFactors(
  g: Graph,
  config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  positionIds: Tensor,
  maxPositions: number,
  dtype: DType,
): RopeFactors {
  if (positionIds.rank !== 2 || positionIds.dtype !== 'int64')
    throw new Error(`ropeFactors: position_ids must be int64 [B, T], got ${positionIds.dtype}${positionIds.shapeText}`);
  if (!Number.isSafeInteger(maxPositions) || maxPositions < 1) throw new Error(`ropeFactors: maxPositions must be a positive integer, got ${maxPositions}`);
  const invFreq = ropeInvFreq(config);
  const half = invFreq.length;
  const k = Math.ceil(Math.sqrt(maxPositions));
  const nHi = Math.ceil(maxPositions / k);
  const table = (n: number, step: number, f: (x: number) => number): Tensor => {
    const data = new Float32Array(n * half);
    for (let p = 0; p < n; p++) for (let j = 0; j < half; j++) data[p * half + j] = f(p * step * (invFreq[j] as number));
    return g.initializer(g.fresh(`rope_${f === Math.cos ? 'cos' : 'sin'}_${step === 1 ? 'lo' : 'hi'}`), { dtype: 'float32', dims: [n, half], data });
  };
  const [cosHi, sinHi, cosLo, sinLo] = [table(nHi, k, Math.cos), table(nHi, k, Math.sin), table(k, 1, Math.cos), table(k, 1, Math.sin)];
  const kk = g.scalar(k, 'int64');
  const hi = g.div(positionIds, kk);
  const lo = g.sub(positionIds, g.mul(hi, kk));
  const [ch, sh, cl, sl] = [g.gather(cosHi, hi), g.gather(sinHi, hi), g.gather(cosLo, lo), g.gather(sinLo, lo)]; // [B, T, hd/2]
  const cos = g.sub(g.mul(ch, cl), g.mul(sh, sl));
  const sin = g.add(g.mul(sh, cl), g.mul(ch, sl));
  const full = (a: Tensor, b: Tensor) => g.cast(g.unsqueeze(g.concat([a, b], -1), [2]), dtype); // [B, T, 1, hd]
  return { cos: full(cos, cos), sinSigned: full(g.neg(sin), sin) };
}

/** Applies RoPE to `x` [B, T, n, hd] (HF rotate_half convention). */
export function applyRope(g: Graph, x: Tensor, f: RopeFactors): Tensor {
  const hd = x.shape[3];
  if (x.rank !== 4 || typeof hd !== 'number' || hd % 2 !== 0) throw new Error(`applyRope: x must be [B, T, n, hd] with even hd, got ${x.shapeText}`);
  const h = hd / 2;
  // Split (backward: one Concat) rather than two Slices (backward: iota + Slice + ScatterND each).
  const [x1, x2] = g.op('Split', [x, g.ints([h, h])], { axis: 3 }) as [Tensor, Tensor];
  const swapped = g.concat([x2, x1], 3);
  return g.add(g.mul(x, f.cos), g.mul(swapped, f.sinSigned));
}

/**
 * The cos / sin tables [maxPositions, width] (cos(p · inv_freq[j]), computed in float64, llama3 scaling
 * via ropeInvFreq; columns past hd/2 hold cos 1, sin 0: no rotation) as initializers viewed in `dtype`:
 * the cos_cache / sin_cache of GroupQueryAttention. `width` defaults to hd/2.
 */
export function ropeTables(
  g: Graph,
  config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  maxPositions: number,
  dtype: DType,
  width?: number,
): { cos: Tensor; sin: Tensor } {
  if (!Number.isSafeInteger(maxPositions) || maxPositions < 1) throw new Error(`ropeTables: maxPositions must be a positive integer, got ${maxPositions}`);
  const invFreq = ropeInvFreq(config);
  const w = width ?? invFreq.length;
  if (!Number.isSafeInteger(w) || w < invFreq.length) throw new Error(`ropeTables: width must be an integer >= ${invFreq.length}, got ${w}`);
  const make = (f: (x: number) => number, name: string): Tensor => {
    const data = new Float32Array(maxPositions * w);
    for (let p = 0; p < maxPositions; p++) for (let j = 0; j < w; j++) data[p * w + j] = f(j < invFreq.length ? p * (invFreq[j] as number) : 0);
    return g.cast(g.initializer(g.fresh(name), { dtype: 'float32', dims: [maxPositions, w], data }), dtype);
  };
  return { cos: make(Math.cos, 'rope_cos_cache'), sin: make(Math.sin, 'rope_sin_cache') };
}
