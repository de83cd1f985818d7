// Large weights as graph inputs instead of initializers, so that several sessions (a generator's prefill
// and fixed-shape decode sessions) read one device copy bound to each, and no session needs the weights in
// its model bytes (no external-data file on disk). A Concat of weight initializers along axis 0 (the packed
// q/k/v and gate/up projections, which ORT would fold into one initializer) becomes one input holding the
// concatenation, made once on the host.
import { type DType, dtypeArray, dtypeBytes } from './dtype.js';
import type { ConstTensor, Graph } from './graph.js';

/** The graph input a Concat of the initializers `names` along axis 0 becomes (stable across graphs built alike). */
const packedName = (names: readonly string[]): string => `packed(${names.join(',')})`;

const bytesOf = (t: { dtype: DType; dims: readonly number[] }): number => t.dims.reduce((a, b) => a * b, 1) * dtypeBytes[t.dtype];

/**
 * Turns every weight initializer (`isWeight` of its name) of at least `minBytes` bytes into a graph input of the
 * same name, dtype and dims, after replacing each Concat along axis 0 of weights (all of one dtype) by one input
 * `packedName(inputs)`. Other initializers (tables the graph computes from, such as RoPE's) stay constants ORT
 * can fold. Returns the data of each new input whose name is not in `known` (inputs of that name already made for
 * another graph are declared without their data being built again). Call after the graph is complete (its
 * rewrites done); prune drops the initializers no node reads any more.
 */
export function liftWeights(g: Graph, minBytes: number, isWeight: (name: string) => boolean, known: ReadonlySet<string> = new Set()): Map<string, ConstTensor> {
  const out = new Map<string, ConstTensor>();
  for (const node of [...g.nodes]) {
    if (node.op !== 'Concat' || (node.attrs['axis'] ?? 0) !== 0 || node.inputs.length < 2 || !node.inputs.every(isWeight)) continue;
    const parts = node.inputs.map((n) => g.initializers.get(n));
    if (parts.some((p) => p === undefined)) continue;
    const ps = parts as ConstTensor[];
    const dtype = ps[0]?.dtype as DType;
    if (ps.some((p) => p.dtype !== dtype || p.dims.length === 0 || p.dims.slice(1).join(',') !== ps[0]?.dims.slice(1).join(','))) continue;
    const dims = [ps.reduce((s, p) => s + (p.dims[0] as number), 0), ...(ps[0] as ConstTensor).dims.slice(1)];
    if (bytesOf({ dtype, dims }) < minBytes) continue;
    const name = packedName(node.inputs);
    const t = g.hasValue(name) ? g.value(name) : g.input(name, dtype, dims);
    if (!known.has(name) && !out.has(name)) {
      const data = new dtypeArray[dtype](dims.reduce((a, b) => a * b, 1));
      let at = 0;
      for (const p of ps) {
        (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p.data as unknown as ArrayLike<unknown>, at);
        at += p.data.length;
      }
      out.set(name, { dtype, dims, data });
    }
    g.replaceNode(node, 'Identity', [t]);
  }
  g.prune();
  for (const [name, c] of [...g.initializers]) {
    if (bytesOf(c) < minBytes || !isWeight(name)) continue;
    const lifted = g.liftInitializer(name);
    if (!known.has(name)) out.set(name, lifted);
  }
  return out;
}
