// Activation recomputation (gradient checkpointing) of the `Graph.recomputable` segments (the decoder's
// layers), as a rewrite of a graph that `grad` has already differentiated:
//   for each segment (input hₖ → output hₖ₊₁, nodes tagged with its id), the backward nodes that read a
//   value of the segment read a clone of it instead, rebuilt from hₖ and the values from outside the
//   segment (weights, RoPE tables, bias, dropout tables), so the forward's copies die as soon as the
//   forward is done with them and only the segment boundaries hₖ live until the backward.
// ONNX Runtime runs the one graph in its own topological order, so a clone whose inputs all exist early
// could run early and keep its values alive anyway. Each clone therefore waits for the cotangent of
// hₖ₊₁ (what `grad` reports through its `cotangents` map): the clones that read no other clone (the
// roots) read one input through `After(x, dep)` (a latent_sft copy of x that needs dep): their smallest
// computed input (not a graph input, constant or shape vector; on a decoder layer the RMSNorm weight
// view, or the dropout tables), so no clone can start before the backward has reached the segment's
// output, and the backward of segment k cannot finish before the clones of segment k run. They also
// wait for the rest of the backward of segment k + 1 (what reads its clones but does not lead to the
// cotangent, e.g. its weight gradients, which ORT would otherwise run last): one segment's recomputed
// values are alive at a time. Each value is rebuilt at
// most once per backward (one clone per node), and the clones are the same ops with the same inputs
// as the forward (seeded dropout masks are a function of the seed tables), so the recomputed values
// and the gradients are bit for bit those without recomputation when the kernels are deterministic.
// Not recomputed (kept, or read from the forward as without recomputation):
//   - the segment output (the next segment's checkpoint), and the reads of backward nodes that the
//     cotangent itself depends on (e.g. of a segment value also read by the loss, whose backward feeds
//     hₖ₊₁'s cotangent: rewiring those would make a cycle);
//   - shape arithmetic (nodes whose outputs are all rank ≤ 1 non-float tensors: tiny, and on CUDA
//     ORT keeps them on the host, which an After would move to the device);
//   - values computed from graph inputs and constants alone inside a segment (a frozen weight's Cast
//     to the compute dtype): weight-sized, not activations, and gating them would copy a weight.
// Run it after `grad` and before appending anything else that reads forward values; then prune.
import { dtypeBytes, isFloat } from './dtype.js';
import type { Graph, Node, Tensor } from './graph.js';
import type { OpType } from './ops.js';

/** What the pass did to one segment. */
export interface RecomputedSegment {
  id: number;
  input: string;
  output: string;
  /** The cotangent of `output` that the segment's clones wait for. */
  cotangent: string;
  /** The other values they wait for: the next segment's backward that the cotangent does not need. */
  waitsFor: string[];
  /** Each clone node and the forward node it copies. */
  clones: Array<{ node: string; of: string }>;
  /** The After nodes that gate the clones (one per gated value). */
  gates: string[];
}

/** Size used to compare inputs when choosing one to gate: symbolic dims count as 4096. */
function roughBytes(t: Tensor): number {
  return t.shape.reduce<number>((p, d) => p * (typeof d === 'number' ? d : 4096), dtypeBytes[t.dtype]);
}

/** A small non-float tensor of rank ≤ 1 (shape arithmetic). */
function shapeLike(t: Tensor): boolean {
  return !isFloat(t.dtype) && t.rank <= 1;
}

/** Indices of the nodes `name` depends on, through the producers in `producerAt`. */
function ancestors(g: Graph, producerAt: ReadonlyMap<string, number>, name: string): Set<number> {
  const seen = new Set<number>();
  const stack = [producerAt.get(name)];
  while (stack.length > 0) {
    const i = stack.pop();
    if (i === undefined || seen.has(i)) continue;
    seen.add(i);
    for (const x of (g.nodes[i] as Node).inputs) if (x !== '') stack.push(producerAt.get(x));
  }
  return seen;
}

/** Indices of the nodes that depend on any of the nodes `from` (those included), through `consumers`. */
function descendants(consumers: ReadonlyMap<string, number[]>, g: Graph, from: readonly number[]): Set<number> {
  const seen = new Set<number>();
  const stack = [...from];
  while (stack.length > 0) {
    const i = stack.pop() as number;
    if (seen.has(i)) continue;
    seen.add(i);
    for (const o of (g.nodes[i] as Node).outputs) stack.push(...(consumers.get(o) ?? []));
  }
  return seen;
}

/**
 * Rewrites `g` (see the file header): `backwardFrom` is the node count before `grad` ran (nodes from
 * there on are the backward), `cotangents` the map `grad` filled for the segment outputs, `live` the
 * values the caller will output (the gradients): backward nodes that they and the graph outputs do not
 * need are never waited for. Returns what it did per segment (segments whose values the backward does
 * not read are left out).
 */
export function recomputeSegments(
  g: Graph,
  backwardFrom: number,
  cotangents: ReadonlyMap<string, Tensor | null>,
  live: readonly Tensor[],
): RecomputedSegment[] {
  const backwardTo = g.nodes.length;
  const external = new Set<string>([...g.initializers.keys(), ...g.inputs.map((t) => t.name)]);
  const producers = (): Map<string, number> => {
    const at = new Map<string, number>();
    g.nodes.forEach((n, i) => {
      for (const o of n.outputs) at.set(o, i);
    });
    return at;
  };
  const needed = new Set<number>();
  {
    const at = producers();
    for (const t of [...live, ...g.outputs]) for (const i of ancestors(g, at, t.name)) needed.add(i);
  }
  const done: RecomputedSegment[] = [];
  // The rewired backward readers of each segment, which the segment before it waits for.
  const readersOf = new Map<number, number[]>();
  // Last segment first: segment k waits for the backward of segment k + 1.
  for (const s of [...g.segments].reverse()) {
    const dep = cotangents.get(s.output);
    if (dep === null || dep === undefined) continue;
    const producerAt = producers();
    const inSegment = (name: string): boolean => {
      const p = producerAt.get(name);
      return p !== undefined && p < backwardFrom && (g.nodes[p] as Node).segment === s.id && name !== s.output;
    };
    // Backward readers that the cotangent does not depend on, and the segment values they read.
    const feedsDep = ancestors(g, producerAt, dep.name);
    const readers: number[] = [];
    const wanted = new Set<string>();
    for (let j = backwardFrom; j < backwardTo; j++) {
      if (feedsDep.has(j)) continue;
      const reads = (g.nodes[j] as Node).inputs.filter(inSegment);
      if (reads.length === 0) continue;
      readers.push(j);
      for (const x of reads) wanted.add(x);
    }
    if (wanted.size === 0) continue;
    // What the clones wait for: the cotangent, and the backward of the segment that reads this one's
    // output (its readers the cotangent does not already depend on, e.g. its weight gradients), so that
    // segment's recomputed values are dead before these are made. Not a reader downstream of this
    // segment's readers: that would be a cycle.
    const consumers = new Map<string, number[]>();
    g.nodes.forEach((n, i) => {
      for (const x of n.inputs) {
        const list = consumers.get(x);
        if (list === undefined) consumers.set(x, [i]);
        else list.push(i);
      }
    });
    const after = g.segments.filter((t) => t.input === s.output).flatMap((t) => readersOf.get(t.id) ?? []);
    const downstream = after.length > 0 ? descendants(consumers, g, readers) : new Set<number>();
    const deps: Tensor[] = [dep];
    for (const r of after) {
      if (!feedsDep.has(r) && needed.has(r) && !downstream.has(r)) deps.push(g.value((g.nodes[r] as Node).outputs[0] as string));
    }
    // The segment nodes the wanted values need, in forward order.
    const chain = new Set<number>();
    const stack = [...wanted].map((x) => producerAt.get(x) as number);
    while (stack.length > 0) {
      const i = stack.pop() as number;
      if (chain.has(i)) continue;
      chain.add(i);
      for (const x of (g.nodes[i] as Node).inputs) if (inSegment(x)) stack.push(producerAt.get(x) as number);
    }
    const cloneOf = new Map<string, string>();
    const gateOf = new Map<string, string>();
    const seg: RecomputedSegment = {
      id: s.id,
      input: s.input,
      output: s.output,
      cotangent: dep.name,
      waitsFor: deps.slice(1).map((t) => t.name),
      clones: [],
      gates: [],
    };
    const gated = (x: string): string => {
      let t = gateOf.get(x);
      if (t === undefined) {
        t = g.op1('After', [g.value(x), ...deps]).name;
        gateOf.set(x, t);
        seg.gates.push((g.nodes[g.nodes.length - 1] as Node).name);
      }
      return t;
    };
    for (const i of [...chain].sort((a, b) => a - b)) {
      const n = g.nodes[i] as Node;
      const outs = n.outputs.map((o) => g.value(o));
      if (outs.every(shapeLike)) continue;
      let gate: string | undefined;
      if (!n.inputs.some((x) => cloneOf.has(x))) {
        // A root: gate its smallest input that is computed (not a graph input or constant, not shape arithmetic).
        const candidates = n.inputs.filter((x) => x !== '' && !external.has(x) && !shapeLike(g.value(x)));
        if (candidates.length === 0) continue;
        gate = candidates.reduce((a, b) => (roughBytes(g.value(b)) < roughBytes(g.value(a)) ? b : a));
      }
      const inputs = n.inputs.map((x) => (x === '' ? null : g.value(cloneOf.get(x) ?? (x === gate ? gated(x) : x))));
      const made = g.op(
        n.op as OpType,
        inputs,
        n.attrs as never,
        n.outputs.map((o) => g.fresh(`${o}_rc`)),
      );
      n.outputs.forEach((o, k) => cloneOf.set(o, (made[k] as Tensor).name));
      seg.clones.push({ node: (g.nodes[g.nodes.length - 1] as Node).name, of: n.name });
    }
    const rewired: number[] = [];
    for (const j of readers) {
      const n = g.nodes[j] as Node;
      if (!n.inputs.some((x) => cloneOf.has(x))) continue;
      g.rewireInputs(
        j,
        n.inputs.map((x) => cloneOf.get(x) ?? x),
      );
      rewired.push(j);
    }
    readersOf.set(s.id, rewired);
    if (seg.clones.length > 0) done.unshift(seg);
  }
  g.sortNodes();
  return done;
}
