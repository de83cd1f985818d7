// Entry checks and small shared pieces of the graph-side latent ops (graph-*.ts): rank, dtype and
// dim agreement of builder inputs (thrown at build time, naming the function, the input and its
// shape), the float32 up-cast of half-precision values (spec §8: softmax and KL run in fp32), and
// the build-time reachability test behind `checkDetached`. Internal: not re-exported by index.ts.
// Leaves out run-time value checks (a graph cannot throw on data; see each builder's contract).
import { type DType, type Dim, type Graph, type Tensor, isFloat } from '@latent-sft/graph';

/** Throws unless `t` has rank `rank`; `legend` names the expected shape. */
export function requireRank(fn: string, name: string, t: Tensor, rank: number, legend: string): void {
  if (t.rank !== rank) throw new Error(`${fn}: ${name} must be ${legend}, got ${t.dtype}${t.shapeText}`);
}

/** Throws unless `t` is a float tensor. */
export function requireFloatTensor(fn: string, name: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new Error(`${fn}: ${name} must be a float tensor, got ${t.dtype}${t.shapeText}`);
}

/** Throws unless `t` has dtype `dtype`. */
export function requireDtype(fn: string, name: string, t: Tensor, dtype: DType): void {
  if (t.dtype !== dtype) throw new Error(`${fn}: ${name} must be ${dtype}, got ${t.dtype}${t.shapeText}`);
}

/** Throws unless two float tensors share a dtype. */
export function requireSameDtype(fn: string, a: [string, Tensor], b: [string, Tensor]): void {
  if (a[1].dtype !== b[1].dtype) {
    throw new Error(`${fn}: ${a[0]} is ${a[1].dtype}${a[1].shapeText} but ${b[0]} is ${b[1].dtype}${b[1].shapeText} (dtypes must agree)`);
  }
}

/**
 * Throws when dim `ai` of `a` and dim `bi` of `b` are both numbers and differ (symbolic dims are
 * taken on trust, as the graph's own inference does).
 */
export function requireSameDim(fn: string, a: [string, Tensor, number], b: [string, Tensor, number], letter: string): void {
  const da: Dim | undefined = a[1].shape[a[2]];
  const db: Dim | undefined = b[1].shape[b[2]];
  if (typeof da === 'number' && typeof db === 'number' && da !== db) {
    throw new Error(`${fn}: ${a[0]} has shape ${a[1].shapeText} but ${b[0]} has shape ${b[1].shapeText} (${letter} must agree)`);
  }
}

/** The dtype the numerics run in: float32 for float16/bfloat16, the input's own dtype otherwise. */
export function computeDtype(dtype: DType): DType {
  return dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
}

/** `t` cast up to its compute dtype (no node when it already is). */
export function upcast(g: Graph, t: Tensor): Tensor {
  return g.cast(t, computeDtype(t.dtype));
}

/**
 * True when `target` depends on any of `sources` through the nodes of `g` (a value depends on
 * itself). The same forward reachability that `grad` uses to decide where gradients flow.
 */
export function reachable(g: Graph, sources: readonly Tensor[], target: Tensor): boolean {
  const seen = new Set(sources.map((s) => s.name));
  if (seen.has(target.name)) return true;
  for (const n of g.nodes) {
    if (n.inputs.some((i) => seen.has(i))) for (const o of n.outputs) seen.add(o);
  }
  return seen.has(target.name);
}
