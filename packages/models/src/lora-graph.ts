// LoRA in a decoder graph (PEFT semantics) and a deterministic in-graph dropout.
//   Linear:    y = x Wᵀ (+ b) + s · (dropout(x) Aᵀ) Bᵀ        A [r, in], B [out, r], s = alpha / r
//   Embedding: y = W[ids] + s · (Aᵀ[ids]) Bᵀ                 A [r, V],  B [D, r]   (PEFT applies no dropout)
// which agree with mergeLora (W + s·B·A, embedding W + s·(B·A)ᵀ).
// Dropout: a pure function of (int64 `dropout_seed`, stream, row, column), so a step is reproducible from
// its seed alone (resumable) and identical on CPU and CUDA. Two levels:
// 1. hashUniform, a counter-based hash of (seed, stream, flat index) in int64 arithmetic (graph's hash.ts):
//      x₀ = (index + stream · 2654435761) mod P,  P = 2³¹ − 1 (prime), s = seed mod P
//      4 rounds of  x ← (x · a_k + s + c_k) mod P ;  x ← (x · x + c'_k) mod P
//    (affine bijections + squaring for non-linearity; every product < 2⁶², no int64 overflow), uniform
//    in [0, P). Uses only Mul/Add/Sub/Div on int64 (the op table has no bitwise ops). It only fills two
//    small tables per forward (DropoutSource): 32-bit words a, c [N rows, M streams] and b, d
//    [M streams, C columns], each word from two draws x, x' as the int32 of x + 2³¹·(x' mod 2).
// 2. Per module (stream m) and element (n, i), in int32 with wrap-around (two's complement, as on both
//    EPs): h = (a[n,m] + b[m,i]) · (c[n,m] + d[m,i]) mod 2³², keep = h < (1 − p)·2³² (compared as
//    signed, offset by −2³¹). Each factor is uniform on 2³² values and independent across the elements
//    of a row (fresh b, d) and of a column (fresh a, c), so keep is Bernoulli(1 − p) up to O(2⁻³¹) and
//    pairwise independent; the product removes the additive structure a + b alone would leave in 2 × 2
//    blocks (lora-graph.test.ts checks rate, neighbours, rows/columns, 2 × 2 patterns, streams, seeds).
// Cost per module: 4 small Slices and 5 full-size ops (Add, Add, Mul, Less in int32, Cast of the bool)
// plus the Mul by x; `linear` puts 1 / (1 − p) into the alpha of the LoRA down-projection Gemm. With the
// fused kernels (graph.fuseSeededDropout, fuseHashWords) a module is one SeededDropout reading the tables in
// place, and the column table (a constant count) one HashWords.
// Each LoRA module gets its own stream, so masks differ per module.
// Shapes: N rows (B·T), I in-features, O out-features, r rank.
import { type Graph, type Tensor, hashFlat, hashStreamOffset, hashWords } from '@latent-sft/graph';

function checkSeed(seed: Tensor, stream: number, fn: string): void {
  if (seed.rank !== 0 || seed.dtype !== 'int64') throw new Error(`${fn}: seed must be an int64 scalar, got ${seed.dtype}${seed.shapeText}`);
  if (!Number.isSafeInteger(stream) || stream < 0) throw new Error(`${fn}: stream must be a non-negative integer, got ${stream}`);
}

/**
 * Uniform int64 values in [0, 2³¹ − 1) shaped like `like`, a pure function of (`seed`, `stream`, flat
 * element index). `seed` is an int64 scalar ≥ 0.
 */
export function hashUniform(g: Graph, like: Tensor, seed: Tensor, stream: number): Tensor {
  checkSeed(seed, stream, 'hashUniform');
  return g.reshape(hashFlat(g, g.op1('Size', [like]), seed, hashStreamOffset(stream)), g.shapeOf(like));
}

/** hashUniform streams of the DropoutSource tables (flat index ranges stay below 2654435761 mod P ≈ 5.1e8, so they never overlap). */
const TABLE_STREAMS = { rows: 0, rowsHigh: 1, cols: 2, colsHigh: 3 } as const;

/** int32 words [count / w, w] of the hashUniform streams `low` and `high` (graph's hashWords). */
function words(g: Graph, count: Tensor, w: number, seed: Tensor, low: number, high: number): Tensor {
  return hashWords(g, count, w, seed, hashStreamOffset(low), hashStreamOffset(high));
}

/** The per-forward random tables of seeded dropout (see the file header). */
export interface DropoutSource {
  /** int32 [N, 2·streams]: a of stream m in column 2m, c in column 2m + 1. */
  rows: Tensor;
  /** int32 [2·streams, maxCols]: b of stream m in row 2m, d in row 2m + 1. */
  cols: Tensor;
  streams: number;
  maxCols: number;
}

/**
 * The dropout tables for `rows` (int64 scalar N: every dropped-out input has N rows), `streams` modules
 * (stream ids 0 … streams − 1) and inputs of at most `maxCols` features, from int64 scalar `seed` ≥ 0.
 * Needs N·2·streams and 2·streams·maxCols below 5·10⁸ (so the table streams never overlap).
 */
export function dropoutSource(g: Graph, seed: Tensor, rows: Tensor, streams: number, maxCols: number): DropoutSource {
  checkSeed(seed, streams, 'dropoutSource');
  if (rows.rank !== 0 || rows.dtype !== 'int64') throw new Error(`dropoutSource: rows must be an int64 scalar, got ${rows.dtype}${rows.shapeText}`);
  if (!(Number.isSafeInteger(streams) && streams >= 1 && Number.isSafeInteger(maxCols) && maxCols >= 1 && 2 * streams * maxCols < 5e8)) {
    throw new Error(`dropoutSource: need streams >= 1 and 2·streams·maxCols < 5e8, got ${streams} streams, ${maxCols} columns`);
  }
  const w = 2 * streams;
  return {
    rows: words(g, g.mul(rows, g.scalar(w, 'int64')), w, seed, TABLE_STREAMS.rows, TABLE_STREAMS.rowsHigh),
    cols: words(g, g.scalar(w * maxCols, 'int64'), maxCols, seed, TABLE_STREAMS.cols, TABLE_STREAMS.colsHigh), // a constant count: graph.fuseHashWords makes it one HashWords
    streams,
    maxCols,
  };
}

/** The keep mask (bool [N, I]) of x [N, I] for `stream` of `src`: Bernoulli(1 − p), see the file header. */
export function dropoutKeep(g: Graph, x: Tensor, p: number, src: DropoutSource, stream: number): Tensor {
  if (!(p > 0 && p < 1)) throw new Error(`dropoutKeep: p must be in (0, 1), got ${p}`);
  const I = x.shape[1];
  if (x.rank !== 2 || typeof I !== 'number' || I > src.maxCols)
    throw new Error(`dropoutKeep: x must be [N, I] with static I <= ${src.maxCols}, got ${x.shapeText}`);
  if (!Number.isSafeInteger(stream) || stream < 0 || stream >= src.streams) throw new Error(`dropoutKeep: stream ${stream} not in [0, ${src.streams})`);
  const perRow = (j: number) => g.slice(src.rows, [j], [j + 1], [1]); // [N, 1]
  const perCol = (j: number) => g.slice(src.cols, [j, 0], [j + 1, I], [0, 1]); // [1, I]
  const [a, c] = [perRow(2 * stream), perRow(2 * stream + 1)];
  const [b, d] = [perCol(2 * stream), perCol(2 * stream + 1)];
  const h = g.mul(g.add(a, b), g.add(c, d));
  return g.op1('Less', [h, g.scalar(Math.min(Math.round((1 - p) * 2 ** 32) - 2 ** 31, 2 ** 31 - 1), 'int32')]);
}

/** Inverted dropout of `x` [N, I] with keep probability 1 − p: x · keep / (1 − p), keep = dropoutKeep. */
export function seededDropout(g: Graph, x: Tensor, p: number, src: DropoutSource, stream: number): Tensor {
  const keep = dropoutKeep(g, x, p, src, stream);
  return g.mul(x, g.mul(g.cast(keep, x.dtype), g.scalar(1 / (1 - p), x.dtype)));
}

/** A LoRA pair on one module and how to apply it. */
export interface LoraPair {
  a: Tensor;
  b: Tensor;
  scaling: number;
  /** Dropout on the module input (training only); null: none. */
  dropout: { p: number; source: DropoutSource; stream: number } | null;
}

/** x [N, I] → x Wᵀ (+ bias) (+ LoRA), W [O, I] (Gemm with transB). */
export function linear(g: Graph, x: Tensor, w: Tensor, bias: Tensor | null, lora: LoraPair | null): Tensor {
  const y = g.op1('Gemm', bias === null ? [x, w] : [x, w, bias], { transB: 1 });
  if (lora === null) return y;
  // Dropout: x · keep here, its 1 / (1 − p) as the Gemm's alpha (one full-size Mul fewer).
  const d = lora.dropout;
  const xin = d === null ? x : g.mul(x, g.cast(dropoutKeep(g, x, d.p, d.source, d.stream), x.dtype));
  const down = g.op1('Gemm', [xin, lora.a], d === null ? { transB: 1 } : { transB: 1, alpha: 1 / (1 - d.p) }); // [N, r]
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
