// recomputeSegments on a small two-segment graph (the numbers of a real decoder step, bit for bit
// against no recomputation, are in train's recompute.test.ts): which backward reads move to clones,
// which stay on the forward values (a segment value whose backward feeds the cotangent the clones wait
// for; the segment output; shape arithmetic; values of graph inputs alone), the After gates, and the
// graph's topological order afterwards.
import { describe, expect, it } from 'vitest';
import { grad } from './autodiff.js';
import { Graph, type Node, type Tensor } from './graph.js';
import { recomputeSegments } from './recompute.js';

/** The node names `value` depends on. */
function ancestors(g: Graph, value: string): Set<string> {
  const out = new Set<string>();
  const stack = [value];
  while (stack.length > 0) {
    const p = g.producer(stack.pop() as string);
    if (p === undefined || out.has(p.name)) continue;
    out.add(p.name);
    stack.push(...p.inputs.filter((x) => x !== ''));
  }
  return out;
}

/**
 * x [4, 3] → segment 0: h1 = x + tanh(x·w) → segment 1: s = σ(h1), h2 = h1 + s·Reshape(Cast(w) → [3])
 * (a Cast of a graph input inside the segment) ; loss = Σ h2 + Σ s·h2 (s is also read by the loss, and
 * the backward of s·h2 builds part of h2's cotangent from s).
 */
function build(): { g: Graph; loss: Tensor; wrt: Tensor[]; s: Tensor } {
  const g = new Graph('two');
  const x = g.input('x', 'float32', ['n', 3]);
  const w = g.input('w', 'float32', [3, 3]);
  const v = g.input('v', 'float64', [3]);
  const h1 = g.recomputable(x, (h) => g.add(h, g.tanh(g.matmul(h, w))));
  let s: Tensor | null = null;
  const h2 = g.recomputable(h1, (h) => {
    s = g.sigmoid(h);
    const shape = g.concat([g.slice(g.shapeOf(h), [0], [1]), g.ints([3])], 0); // shape arithmetic, [2]
    return g.add(h, g.mul(s, g.reshape(g.expand(g.cast(v, 'float32'), shape), [-1, 3])));
  });
  const loss = g.add(g.reduceSum(h2, undefined, false), g.reduceSum(g.mul(s as unknown as Tensor, h2), undefined, false));
  return { g, loss, wrt: [x, w], s: s as unknown as Tensor };
}

describe('recomputeSegments', () => {
  it('moves the backward reads of each segment to clones gated by its output cotangent, except the reads that cotangent depends on', () => {
    const { g, loss, wrt, s } = build();
    expect(g.segments.map((x) => x.id)).toEqual([0, 1]);
    const backwardFrom = g.nodes.length;
    const cot = new Map<string, Tensor | null>(g.segments.map((x) => [x.output, null]));
    const grads = grad(g, loss, wrt, undefined, cot);
    for (const t of cot.values()) expect(t).not.toBeNull();
    const forward = new Set(g.nodes.slice(0, backwardFrom).map((n) => n.name));
    const done = recomputeSegments(g, backwardFrom, cot, grads);
    g.output(loss, 'loss');
    grads.forEach((t, i) => g.output(t, `g${i}`));
    g.prune();

    // Topological after the rewrite.
    const defined = new Set([...g.inputs.map((t) => t.name), ...g.initializers.keys()]);
    for (const n of g.nodes) {
      for (const x of n.inputs) if (x !== '') expect(defined.has(x), `${n.name} reads ${x} before it is made`).toBe(true);
      for (const o of n.outputs) defined.add(o);
    }
    expect(done.map((d) => d.id)).toEqual([0, 1]);
    const byName = new Map(g.nodes.map((n) => [n.name, n]));
    const cloned = new Set(done.flatMap((d) => d.clones.map((c) => c.of)));
    for (const d of done) {
      const dep = g.producer(d.cotangent) as Node;
      expect(forward.has(dep.name)).toBe(false); // a backward value
      for (const c of d.clones) {
        if (!byName.has(c.node)) continue; // pruned
        expect(byName.get(c.node)!.op).toBe(byName.get(c.of)!.op);
        expect(ancestors(g, byName.get(c.node)!.outputs[0] as string).has(dep.name), `${c.node} after ${d.cotangent}`).toBe(true);
      }
      for (const gate of d.gates) expect(byName.get(gate)?.op).toBe('After');
    }
    // Segment 1: σ(h1) is read by backward nodes on both sides: the Mul gradient that builds dh2 from s
    // (it feeds the cotangent: reading a clone would be a cycle) keeps the forward s; σ's own gradient
    // (y(1 − y)) reads the clone. The outputs h1, h2 are never cloned; the shape arithmetic and the Cast of
    // graph input v neither.
    const sReaders = g.nodes.filter((n) => !forward.has(n.name) && n.inputs.includes(s.name));
    expect(sReaders.length).toBeGreaterThan(0);
    const dh2 = done[1]!.cotangent;
    for (const n of sReaders) expect(n.op === 'After' || ancestors(g, dh2).has(n.name), `${n.name} (${n.op}) reads the forward s`).toBe(true);
    const sClone = done[1]!.clones.find((c) => g.nodes.some((n) => n.name === c.of && n.outputs.includes(s.name)));
    const sCopy = byName.get(sClone!.node)!.outputs[0] as string;
    expect(g.nodes.some((n) => n.op === 'Mul' && n.inputs.includes(sCopy))).toBe(true);
    const forwardOps = (id: number, op: string) => [...forward].filter((n) => byName.get(n)?.segment === id && byName.get(n)?.op === op);
    for (const op of ['Concat', 'Slice', 'Shape', 'Cast']) for (const n of forwardOps(1, op)) expect(cloned.has(n), `${op} ${n} cloned`).toBe(false);
    for (const d of done) expect([...cloned].some((n) => byName.get(n)?.outputs.includes(d.output))).toBe(false);
    // Segment 0: x·w reads graph inputs only (kept, not recomputed); tanh, the value its gradient reads,
    // is recomputed from it through one After.
    const [mm, th] = [forwardOps(0, 'MatMul'), forwardOps(0, 'Tanh')];
    expect(cloned.has(mm[0]!)).toBe(false);
    expect(cloned.has(th[0]!)).toBe(true);
    expect(done[0]!.gates.map((n) => byName.get(n)!.inputs[0])).toEqual(byName.get(mm[0]!)!.outputs);
  });

  it('rejects nested segments and a rewiring to a value of another shape', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [2, 3]);
    expect(() => g.recomputable(x, (h) => g.recomputable(h, (k) => g.tanh(k)))).toThrow(/segment 0 is still open/);
    const y = g.tanh(g.input('z', 'float32', [3, 2]));
    const n = g.nodes.length;
    g.op1('Sigmoid', [g.tanh(x)]);
    expect(() => g.rewireInputs(n + 1, [y.name])).toThrow(/rewireInputs: 'Tanh_\d+_out' is float32\[3, 2\], input 0 of 'Sigmoid_\d+'/);
  });
});
