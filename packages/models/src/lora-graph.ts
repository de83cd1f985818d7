// LoRA in a decoder graph (PEFT semantics) and a deterministic in-graph dropout.
//   Linear:    y = x Wᵀ (+ b) + s · (dropout(x) Aᵀ) Bᵀ        A [r, in], B [out, r], s = alpha / r
//   Embedding: y = W[ids] + s · (Aᵀ[ids]) Bᵀ                 A [r, V],  B [D, r]   (PEFT applies no dropout)
// which agree with mergeLora (W + s·B·A, embedding W + s·(B·A)ᵀ).
// Dropout: a counter-based hash of (seed, stream, element index) in int64 arithmetic, so a step is
// reproducible from its int64 `dropout_seed` alone (resumable) and identical on CPU and CUDA:
//   x₀ = (index + stream · 2654435761) mod P,  P = 2³¹ − 1 (prime), s = seed mod P
//   4 rounds of  x ← (x · a_k + s + c_k) mod P ;  x ← (x · x + c'_k) mod P
// (affine bijections + squaring for non-linearity; every product < 2⁶², no int64 overflow), then
// keep = x < (1 − p) · P and the mask is keep / (1 − p). Uses only Mul/Add/Sub/Div/Less on int64
// (the op table has no bitwise ops). Each LoRA module gets its own stream, so masks differ per module.
// Shapes: N rows (B·T), I in-features, O out-features, r rank.
import type { Graph, Tensor } from '@latent-sft/graph';

const P = 2147483647;
const ROUNDS: ReadonlyArray<readonly [number, number, number]> = [
  [1103515245 % P, 12345, 374761393],
  [48271, 1013904223, 668265263],
  [69621, 2654435761 % P, 2246822519 % P],
  [1664525, 3266489917 % P, 1181783497],
];

/** x mod m for non-negative int64 x (Div truncates). */
function mod(g: Graph, x: Tensor, m: Tensor): Tensor {
  return g.sub(x, g.mul(g.div(x, m), m));
}

/**
 * Uniform int64 values in [0, 2³¹ − 1) shaped like `like`, a pure function of (`seed`, `stream`, flat
 * element index). `seed` is an int64 scalar ≥ 0.
 */
export function hashUniform(g: Graph, like: Tensor, seed: Tensor, stream: number): Tensor {
  if (seed.rank !== 0 || seed.dtype !== 'int64') throw new Error(`hashUniform: seed must be an int64 scalar, got ${seed.dtype}${seed.shapeText}`);
  if (!Number.isSafeInteger(stream) || stream < 0) throw new Error(`hashUniform: stream must be a non-negative integer, got ${stream}`);
  const pT = g.scalar(P, 'int64');
  const n = g.op1('Size', [like]);
  const idx = g.op1('Range', [g.scalar(0, 'int64'), n, g.scalar(1, 'int64')]);
  const s = mod(g, seed, pT);
  let x = mod(g, g.add(idx, g.scalar(Number((BigInt(stream) * 2654435761n) % BigInt(P)), 'int64')), pT);
  for (const [a, c, c2] of ROUNDS) {
    x = mod(g, g.add(g.mul(x, g.scalar(a, 'int64')), g.add(s, g.scalar(c, 'int64'))), pT);
    x = mod(g, g.add(g.mul(x, x), g.scalar(c2, 'int64')), pT);
  }
  return g.reshape(x, g.shapeOf(like));
}

/** Inverted dropout of `x` with keep probability 1 − p, mask from hashUniform(seed, stream). */
export function seededDropout(g: Graph, x: Tensor, p: number, seed: Tensor, stream: number): Tensor {
  if (!(p > 0 && p < 1)) throw new Error(`seededDropout: p must be in (0, 1), got ${p}`);
  const u = hashUniform(g, x, seed, stream);
  const keep = g.op1('Less', [u, g.scalar(Math.round((1 - p) * P), 'int64')]);
  return g.mul(x, g.mul(g.cast(keep, x.dtype), g.scalar(1 / (1 - p), x.dtype)));
}

/** A LoRA pair on one module and how to apply it. */
export interface LoraPair {
  a: Tensor;
  b: Tensor;
  scaling: number;
  /** Dropout on the module input (training only); null: none. */
  dropout: { p: number; seed: Tensor; stream: number } | null;
}

/** x [N, I] → x Wᵀ (+ bias) (+ LoRA), W [O, I] (Gemm with transB). */
export function linear(g: Graph, x: Tensor, w: Tensor, bias: Tensor | null, lora: LoraPair | null): Tensor {
  const y = g.op1('Gemm', bias === null ? [x, w] : [x, w, bias], { transB: 1 });
  if (lora === null) return y;
  const xin = lora.dropout === null ? x : seededDropout(g, x, lora.dropout.p, lora.dropout.seed, lora.dropout.stream);
  const down = g.op1('Gemm', [xin, lora.a], { transB: 1 }); // [N, r]
  const up = g.op1('Gemm', [down, lora.b], { transB: 1, alpha: lora.scaling }); // [N, O]
  return g.add(y, up);
}

/** Embedding lookup W[ids] (+ s·Aᵀ[ids]·Bᵀ): ids int64 [...], W [V, D] → [..., D]. */
export function embedding(g: Graph, w: Tensor, ids: Tensor, lora: LoraPair | null): Tensor {
  const y = g.gather(w, ids);
  if (lora === null) return y;
  const rows = g.gather(g.transpose(lora.a), ids); // [..., r]
  const up = g.matmul(rows, g.transpose(lora.b)); // [..., D]
  return g.add(y, g.mul(up, g.scalar(lora.scaling, up.dtype)));
}
