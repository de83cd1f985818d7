// In-place state, below the Trainer: the graph check (in-place.ts) on hand-built graphs — a state read
// after its update, through a view, an update by a standard op, a state read as the wrong input — and
// ORT writing the fused AdamW's outputs into the input tensors they are bound to (CPU, by value: bit for
// bit the float32 reference), with a non-finite coef leaving p, m, v and AdamWCopy's copy as they were.
import { Graph, type Tensor } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { ADAMW_CASE, adamwCopyCase, adamwInputs, adamwReference, runAdamWInPlace, runOnce, withCoef } from './testing.js';
import { IN_PLACE_OPS, inPlaceHazard } from './in-place.js';

const cpu = { kind: 'cpu' } as const;
const N = 6;
const PAIRS = [
  { input: 'p', output: 'p.new' },
  { input: 'm.p', output: 'm.p.new' },
  { input: 'v.p', output: 'v.p.new' },
];

/** Bits of a float32 array (bit-for-bit comparisons: -0 ≠ 0, NaN payloads count). */
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/**
 * A graph with p, m.p, v.p and a fused AdamW writing p.new, m.p.new, v.p.new from the gradient
 * `grad(g, p)` (default: an input); `extra` adds nodes after it.
 */
function stepGraph(
  opts: { grad?: (g: Graph, p: Tensor) => Tensor; extra?: (g: Graph, p: Tensor, pNew: Tensor) => void; update?: 'AdamW' | 'Sub' } = {},
): Graph {
  const g = new Graph('step');
  const p = g.input('p', 'float32', [N]);
  const m = g.input('m.p', 'float32', [N]);
  const v = g.input('v.p', 'float32', [N]);
  const gr = opts.grad?.(g, p) ?? g.input('grad', 'float32', [N]);
  const c = ADAMW_CASE;
  const sc = ['step', 'decay', 'bc2', 'coef'].map((k) => g.input(k, 'float32', []));
  let pNew: Tensor;
  if (opts.update === 'Sub') {
    pNew = g.op('Sub', [p, gr], {}, ['p.new'])[0] as Tensor;
    g.output(pNew);
    g.output(g.op('Identity', [m], {}, ['m.p.new'])[0] as Tensor);
    g.output(g.op('Identity', [v], {}, ['v.p.new'])[0] as Tensor);
  } else {
    const attrs = { beta2: c.beta2, one_minus_beta1: 1 - c.beta1, one_minus_beta2: 1 - c.beta2, eps: c.eps };
    const outs = g.op('AdamW', [p, gr, m, v, ...sc], attrs, ['p.new', 'm.p.new', 'v.p.new']);
    for (const o of outs) g.output(o);
    pNew = outs[0] as Tensor;
  }
  opts.extra?.(g, p, pNew);
  return g;
}

describe('inPlaceHazard: the graph check behind in-place state', () => {
  it('passes a fused AdamW whose other readers of p feed it (its gradient is computed from p)', () => {
    expect(inPlaceHazard(stepGraph(), PAIRS)).toBe('');
    const g = stepGraph({ grad: (g, p) => g.reshape(g.mul(g.reshape(p, [2, 3]), g.scalar(2, 'float32')), [N]) }); // a view of p, read before the update
    expect(inPlaceHazard(g, [...PAIRS].reverse())).toBe('');
  });

  it('rejects p read by a node that does not feed the update (it may run after the overwrite)', () => {
    const g = stepGraph({ extra: (g, p) => g.output(g.mul(p, g.scalar(2, 'float32')), 'late') });
    const [mul, adamw] = [g.nodes.find((n) => n.op === 'Mul')!, g.nodes.find((n) => n.op === 'AdamW')!];
    expect(inPlaceHazard(g, PAIRS)).toBe(
      `state p → p.new: Mul (${mul.name}) reads p but does not feed AdamW (${adamw.name}), so it may run after the overwrite`,
    );
    // The same graph is fine when only m and v are in place.
    expect(inPlaceHazard(g, PAIRS.slice(1))).toBe('');
  });

  it('rejects a late reader of a view of p (ORT may alias a Reshape to p’s buffer) although the Reshape itself feeds the update', () => {
    const g = stepGraph({
      grad: (g, p) => g.mul(g.reshape(p, [N]), g.scalar(2, 'float32')),
      extra: (g) => {
        const view = g.nodes.find((n) => n.op === 'Reshape')!.outputs[0] as string;
        g.output(g.neg(g.value(view)), 'late');
      },
    });
    expect(inPlaceHazard(g, PAIRS)).toMatch(/^state p → p\.new: Neg \(.*\) reads .* but does not feed AdamW/);
  });

  it('rejects an update that is not an in-place-safe op, a state read as another input, and pairs that are not the graph’s', () => {
    expect(inPlaceHazard(stepGraph({ update: 'Sub' }), PAIRS)).toMatch(
      /^state p → p\.new: p\.new is written by Sub \(.*\), not by an op that updates in place \(AdamW, AdamWCopy, AdamWMulti, AdamWCopyMulti\)$/,
    );
    const asGrad = stepGraph({ grad: (g, p) => p });
    expect(inPlaceHazard(asGrad, PAIRS)).toMatch(/^state p → p\.new: AdamW \(.*\) reads p as input 1, not as the input its output overwrites$/);
    expect(inPlaceHazard(stepGraph(), [{ input: 'p', output: 'm.p.new' }])).toMatch(/reads p as input 0, not as the input its output overwrites/);
    expect(inPlaceHazard(stepGraph(), [{ input: 'q', output: 'p.new' }])).toBe('state q → p.new: q is not a graph input');
    expect(inPlaceHazard(stepGraph(), [{ input: 'p', output: 'q.new' }])).toBe('state p → q.new: q.new is not a graph output');
    expect(inPlaceHazard(stepGraph(), [PAIRS[0]!, { input: 'p', output: 'm.p.new' }])).toBe('state p → m.p.new: p is in two pairs');
    expect(Object.keys(IN_PLACE_OPS)).toEqual(['AdamW', 'AdamWCopy', 'AdamWMulti', 'AdamWCopyMulti']);
    // the multi-tensor forms: p', m', v' (and the copy) of tensor i over its p, m, v after the 4 scalars
    expect(IN_PLACE_OPS['AdamWMulti']!(12)).toEqual([4, 6, 7, 8, 10, 11]);
    expect(IN_PLACE_OPS['AdamWCopyMulti']!(12)).toEqual([4, 6, 7, null, 8, 10, 11, null]);
  });
});

describe('ORT writes the fused AdamW in place (outputs bound to the input tensors, CPU)', () => {
  for (const gdt of ['float32', 'bfloat16'] as const) {
    it(`p, m, v hold bit for bit the float32 reference after one in-place run (gradient ${gdt}, 2 CPU chunks + a tail)`, async () => {
      const inp = adamwInputs((1 << 16) + 5, gdt, 4);
      const out = await runAdamWInPlace(inp, gdt, cpu);
      const ref = adamwReference(inp);
      for (const k of ['p', 'm', 'v'] as const) expect(bits(out[k]), k).toEqual(bits(ref[k]));
      expect(bits(out.p)).not.toEqual(bits(inp['p']!.data as Float32Array)); // it did update
    });
  }

  for (const coef of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    it(`a coef of ${coef} leaves p, m, v bit for bit as they were (in place and into separate outputs), and AdamWCopy's copy is Cast(p)`, async () => {
      const inp = withCoef(adamwInputs(1003, 'float16', 5), coef);
      const inPlace = await runAdamWInPlace(inp, 'float16', cpu);
      for (const k of ['p', 'm', 'v'] as const) expect(bits(inPlace[k]), k).toEqual(bits(inp[k]!.data as Float32Array));
      const c = adamwCopyCase(1003, 'bfloat16', 6);
      const out = await runOnce(c.model, withCoef(c.inputs, coef), cpu);
      for (const k of ['p', 'm', 'v']) expect(bits(out[`${k}c`]!.data as Float32Array), k).toEqual(bits(c.inputs[k]!.data as Float32Array));
      expect(out['copy']!.data).toEqual(out['cast']!.data); // the copy of the unchanged p
    });
  }
});
