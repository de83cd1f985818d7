// Whether a step graph may write state in place: the state input `I` and its output `O` bound to one
// device tensor (runtime's in-place StatePair), so the node producing O overwrites I while the graph runs.
// That is correct when, for every pair,
//   1. O is written directly by a node whose kernel is elementwise-safe in place (IN_PLACE_OPS: each
//      element read before it is written, at the same index), and that node reads I, if at all, only as
//      the input its output O overwrites (p as p', m as m', …): then the node itself sees the old values;
//   2. every other reader of I — or of a value that may share I's buffer (ALIASING_OPS: ORT may alias a
//      Reshape/Squeeze/… output to its input) — is an ancestor of that node, so ORT (which runs a node
//      only after its inputs exist) has finished it before the overwrite;
//   3. I is a graph input and O a graph output, each in one pair only.
// ORT runs the nodes of one session in some topological order (sequentially; on CUDA in stream order),
// so 1–3 are what the result depends on. The Trainer runs this check on the graphs it builds (its
// `inPlaceState` option) and falls back to double buffering, or throws, with the returned reason.
import type { Graph, Node } from '@latent-sft/graph';

/**
 * Ops whose kernels may write output k in place over input IN_PLACE_OPS[op](inputs)[k] (null: an output with
 * no such input, written from the others), given the node's input count: the fused AdamW (runtime native
 * ops/adamw.cc, kernels/adamw.cu), one tensor (p, g, m, v, 4 scalars → p', m', v' [, copy]) or several
 * (4 scalars, then p, g, m, v per tensor → p', m', v' [, copy] per tensor).
 */
export const IN_PLACE_OPS: Readonly<Record<string, (inputs: number) => readonly (number | null)[]>> = {
  AdamW: () => [0, 2, 3],
  AdamWCopy: () => [0, 2, 3, null],
  AdamWMulti: (inputs) => Array.from({ length: (inputs - 4) / 4 }, (_, i) => [4 + 4 * i, 6 + 4 * i, 7 + 4 * i]).flat(),
  AdamWCopyMulti: (inputs) => Array.from({ length: (inputs - 4) / 4 }, (_, i) => [4 + 4 * i, 6 + 4 * i, 7 + 4 * i, null]).flat(),
};

/** Ops whose output ORT may place in its input's buffer (views; Cast only when it changes no dtype). */
const ALIASING_OPS = new Set(['Identity', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Cast']);

/** One piece of state: the graph input read and the graph output written to the same tensor. */
export interface InPlacePair {
  input: string;
  output: string;
}

/**
 * '' when every pair of `pairs` may be bound in place in `g` (see the file header), else the first
 * reason it may not, naming the pair and the node.
 */
export function inPlaceHazard(g: Graph, pairs: readonly InPlacePair[]): string {
  const producer = new Map<string, Node>();
  const readers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of new Set(n.inputs)) {
      if (i === '') continue;
      const list = readers.get(i);
      if (list === undefined) readers.set(i, [n]);
      else list.push(n);
    }
  }
  const graphInputs = new Set(g.inputs.map((t) => t.name));
  const graphOutputs = new Set(g.outputs.map((t) => t.name));
  const seen = new Set<string>();
  const ancestorsOf = new Map<Node, Set<Node>>();
  const ancestors = (u: Node): Set<Node> => {
    let set = ancestorsOf.get(u);
    if (set !== undefined) return set;
    set = new Set();
    const stack = [u];
    while (stack.length > 0) {
      const n = stack.pop() as Node;
      for (const i of n.inputs) {
        const p = producer.get(i);
        if (p !== undefined && !set.has(p)) {
          set.add(p);
          stack.push(p);
        }
      }
    }
    ancestorsOf.set(u, set);
    return set;
  };
  for (const { input, output } of pairs) {
    const what = `state ${input} → ${output}`;
    if (!graphInputs.has(input)) return `${what}: ${input} is not a graph input`;
    if (!graphOutputs.has(output)) return `${what}: ${output} is not a graph output`;
    for (const n of [input, output]) {
      if (seen.has(n)) return `${what}: ${n} is in two pairs`;
      seen.add(n);
    }
    const u = producer.get(output);
    if (u === undefined) return `${what}: ${output} is not computed by a node`;
    const slots = IN_PLACE_OPS[u.op]?.(u.inputs.length);
    if (slots === undefined)
      return `${what}: ${output} is written by ${u.op} (${u.name}), not by an op that updates in place (${Object.keys(IN_PLACE_OPS).join(', ')})`;
    const own = slots[u.outputs.indexOf(output)];
    const bad = u.inputs.findIndex((x, k) => x === input && k !== own);
    if (bad >= 0) return `${what}: ${u.op} (${u.name}) reads ${input} as input ${bad}, not as the input its output overwrites`;
    // Every value that may live in I's buffer: I and the outputs of aliasing ops over it, transitively.
    const aliases = [input];
    for (let k = 0; k < aliases.length; k++) {
      for (const r of readers.get(aliases[k] as string) ?? []) {
        if (r === u) continue;
        if (!ancestors(u).has(r))
          return `${what}: ${r.op} (${r.name}) reads ${aliases[k]} but does not feed ${u.op} (${u.name}), so it may run after the overwrite`;
        if (ALIASING_OPS.has(r.op)) aliases.push(...r.outputs);
      }
    }
    if (aliases.some((a) => a !== input && u.inputs.includes(a))) return `${what}: ${u.op} (${u.name}) reads a view of ${input}`;
  }
  return '';
}
