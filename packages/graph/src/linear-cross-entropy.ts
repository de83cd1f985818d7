// The LM head and the cross-entropy as one computation over chunks of the vocabulary, so that the
// [N, V] logits (and their float32 copies, log-probabilities and gradient) never exist at once.
//
// fuseLinearCrossEntropy (before `grad`): the chain the decoder and `crossEntropy` write,
//   GatherElements(LogSoftmax(Reshape/Cast…(Gemm(h [N, D], W [V, D], transB) → float32), axis 1), target)
// (each link used once, every Reshape keeping V as the last dim, so rows stay rows) becomes the graph-level
// op LinearLogProb(h, W, target){chunk} → log p(target) [N, 1] f32 and lse [N, 1] f32. Its gradient rule
// (autodiff.ts) emits LinearLogProbGrad(dlogp, h, W, target, lse){chunk, weight_grad}.
//
// lowerLinearLogProb (after `grad`, before serialize) expands both into standard ops and two kernels of
// domain latent_sft, chunk c covering vocabulary columns [s, e):
//   forward   z_c = Gemm(h, W[s:e]ᵀ) [N, e−s] (the compute dtype, as the unfused head)
//             stats_c = CEChunkStats(z_c, target){offset s} [N, 3] = (row max, Σ exp(z − max), z[target])
//             lse = M + log Σ_c sum_c·exp(max_c − M) (M = max_c max_c), log p = Σ_c z_c[target] − lse
//   backward  zT_c = Gemm(W[s:e], h, transB) [e−s, N] (recomputed, transposed)
//             dzT_c = CEChunkGrad(zT_c, target, lse, dlogp){offset s} = dlogp·(onehot − exp(z − lse))
//             dh = Σ_c float32(Gemm(dzT_c, W[s:e], transA)), rounded once;  dW = Concat_c Gemm(dzT_c, h)
// Live at once: one chunk of z and of dz instead of the whole logits in the compute dtype plus float32
// copies — whatever order ORT picks: each chunk reads h through latent_sft.After (an ordering copy, 1/16 of
// a chunk's bytes at 1B) of the previous chunk's last result, and its dh product waits for its dW product. The backward's Slice and Gemm differ in form from the forward's (no axes input; transposed
// product) so that ORT's common-subexpression elimination cannot merge them with the forward's nodes and
// keep every forward chunk alive until the backward. Numerics: the logits are the same GEMM results
// rounded to the compute dtype as before; row statistics in float32 in another summation order; dz
// rounded once to the compute dtype, as the unfused backward's final Cast does; dh sums the chunks'
// products, each rounded to the compute dtype, in float32.
import { useMap } from './fusions.js';
import type { Graph, Tensor } from './graph.js';
import { normAxis } from './ops.js';

/** Vocabulary columns per chunk unless given: 16 chunks for Llama-3's 128,256, 19 for Qwen2's 152,064. */
export const DEFAULT_CE_CHUNK = 8192;

/** Rewrites every matching LM-head cross-entropy of `g` into LinearLogProb (see the file header); returns how many. */
export function fuseLinearCrossEntropy(g: Graph, opts: { chunk?: number } = {}): number {
  const chunk = opts.chunk ?? DEFAULT_CE_CHUNK;
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`fuseLinearCrossEntropy: chunk must be an integer >= 1, got ${chunk}`);
  const { uses, producer } = useMap(g);
  const single = (name: string) => uses.get(name) === 1;
  let count = 0;
  for (const ge of [...g.nodes]) {
    if (ge.op !== 'GatherElements') continue;
    const picked = g.value(ge.outputs[0] as string);
    if (picked.rank !== 2 || normAxis((ge.attrs['axis'] as number | undefined) ?? 0, 2) !== 1) continue;
    const ls = producer.get(ge.inputs[0] as string);
    if (ls === undefined || ls.op !== 'LogSoftmax' || !single(ls.outputs[0] as string)) continue;
    if (normAxis((ls.attrs['axis'] as number | undefined) ?? -1, 2) !== 1) continue;
    const logits = g.value(ls.inputs[0] as string);
    const V = logits.shape[1];
    if (logits.dtype !== 'float32' || typeof V !== 'number') continue;
    // Back through Reshapes that keep V last and widening Casts, each used once, to the head's Gemm.
    let name = logits.name;
    let p = producer.get(name);
    while (p !== undefined && (p.op === 'Reshape' || p.op === 'Cast') && single(name)) {
      const src = g.value(p.inputs[0] as string);
      if (p.op === 'Reshape' && src.shape[src.rank - 1] !== V) break;
      name = src.name;
      p = producer.get(name);
    }
    if (p === undefined || p.op !== 'Gemm' || !single(name) || p.inputs.length !== 2) continue;
    const a = p.attrs as { alpha?: number; transA?: number; transB?: number };
    if ((a.alpha ?? 1) !== 1 || (a.transA ?? 0) !== 0 || (a.transB ?? 0) !== 1) continue;
    const [h, w] = [g.value(p.inputs[0] as string), g.value(p.inputs[1] as string)];
    if (w.shape[0] !== V || !['float32', 'bfloat16', 'float16'].includes(h.dtype)) continue;
    g.replaceNode(ge, 'LinearLogProb', [h, w, g.value(ge.inputs[1] as string)], { chunk });
    count++;
  }
  return count;
}

/** Expands every LinearLogProb / LinearLogProbGrad of `g` (see the file header); returns how many. */
export function lowerLinearLogProb(g: Graph): number {
  let count = 0;
  for (;;) {
    const n = g.nodes.find((x) => x.op === 'LinearLogProb' || x.op === 'LinearLogProbGrad');
    if (n === undefined) return count;
    const x = n.inputs.map((name) => g.value(name));
    const chunk = n.attrs['chunk'] as number;
    if (n.op === 'LinearLogProb') g.replaceWithNodes(n, () => lowerForward(g, x[0] as Tensor, x[1] as Tensor, x[2] as Tensor, chunk));
    else {
      const [dlogp, h, w, t, lse] = x as [Tensor, Tensor, Tensor, Tensor, Tensor];
      g.replaceWithNodes(n, () => lowerBackward(g, { dlogp, h, w, t, lse }, chunk, n.attrs['weight_grad'] === 1));
    }
    count++;
  }
}

/** [start, end) of each vocabulary chunk. */
function chunks(V: number, chunk: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < V; s += chunk) out.push([s, Math.min(V, s + chunk)]);
  return out;
}

function lowerForward(g: Graph, h: Tensor, w: Tensor, t: Tensor, chunk: number): Tensor[] {
  const V = w.shape[0] as number;
  const parts = chunks(V, chunk);
  const stats: Tensor[] = [];
  for (const [s, e] of parts) {
    // Chunk c starts once chunk c − 1's stats exist (After: an ordering copy of h), so one z chunk lives at a time.
    const hc = stats.length === 0 ? h : g.op1('After', [h, stats[stats.length - 1] as Tensor]);
    const z = g.op1('Gemm', [hc, g.slice(w, [s], [e], [0])], { transB: 1 }); // [N, e − s]
    stats.push(g.op1('CEChunkStats', [z, t], { offset: s, vocab: V })); // [N, 3]
  }
  const all = g.reshape(parts.length === 1 ? (stats[0] as Tensor) : g.concat(stats, 1), [-1, parts.length, 3]);
  const [mx, sum, tgt] = g.op('Split', [all], { axis: 2, num_outputs: 3 }) as [Tensor, Tensor, Tensor]; // [N, K, 1] each
  const M = g.reduceMax(mx, [1], true);
  const lse = g.add(M, g.log(g.reduceSum(g.mul(sum, g.exp(g.sub(mx, M))), [1], true)));
  const logp = g.sub(g.reduceSum(tgt, [1], true), lse);
  const rows = g.shapeOf(t);
  return [g.reshape(logp, rows), g.reshape(lse, rows)];
}

function lowerBackward(g: Graph, x: { dlogp: Tensor; h: Tensor; w: Tensor; t: Tensor; lse: Tensor }, chunk: number, weightGrad: boolean): Array<Tensor | null> {
  const V = x.w.shape[0] as number;
  let dh: Tensor | null = null;
  let last: Tensor | null = null; // the previous chunk's dh product
  const dws: Tensor[] = [];
  for (const [s, e] of chunks(V, chunk)) {
    // Chunk c starts after chunk c − 1's dh, and its dh after its dW (After: ordering copies of h and W_c), so
    // one chunk of zᵀ and dzᵀ lives at a time whatever order ORT picks.
    const hc: Tensor = last === null ? x.h : g.op1('After', [x.h, last]);
    const wc = g.slice(x.w, [s], [e]); // no axes input: not the forward's Slice (see the file header)
    const zT: Tensor = g.op1('Gemm', [wc, hc], { transB: 1 }); // [e − s, N]
    const dzT: Tensor = g.op1('CEChunkGrad', [zT, x.t, x.lse, x.dlogp], { offset: s });
    const dwc: Tensor | null = weightGrad ? g.op1('Gemm', [dzT, hc]) : null; // [e − s, D]
    if (dwc !== null) dws.push(dwc);
    last = g.op1('Gemm', [dzT, dwc === null ? wc : g.op1('After', [wc, dwc])], { transA: 1 }); // [N, D]
    const part = g.cast(last, 'float32');
    dh = dh === null ? part : g.add(dh, part);
  }
  const dW = weightGrad ? (dws.length === 1 ? (dws[0] as Tensor) : g.concat(dws, 0)) : null;
  return [g.cast(dh as Tensor, x.h.dtype), dW];
}
