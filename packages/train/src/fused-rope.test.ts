// latent_sft.Rope (graph.fuseRope, FusedParts.rope) on the CPU: the op both ways (forward, and transpose 1, the
// backward) against a float64 reference at odd shapes in every dtype; its shape and gradient rules; the rewrite
// of models' applyRope in the decoder graph (2 per layer, no Split / Concat of RoPE left, float32 untouched); then
// a small Llama trained in float16 with it against the standard ops it replaces.
import { Graph, type Tensor, fuseRope, grad } from '@latent-sft/graph';
import { tinyLlama } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyBatch, tinyObjective } from '../test/tiny-llama.js';
import { type Objective, type Recompute, Trainer, type TrainerOptions } from './index.js';
import { floatValues, normwise, ropeCase, ropeReference, runOnce } from './testing.js';

const cpu = { kind: 'cpu' } as const;

/** Significant bits and the smallest normal exponent of the 16-bit dtypes. */
const FORMAT = { float16: { bits: 11, emin: -14 }, bfloat16: { bits: 8, emin: -126 } } as const;

/** One ulp of `dtype` at |v| (subnormal spacing below the normal range). */
function ulpAt(v: number, dtype: keyof typeof FORMAT): number {
  const { bits, emin } = FORMAT[dtype];
  const a = Math.abs(v);
  let e = a === 0 ? emin : Math.floor(Math.log2(a));
  if (2 ** (e + 1) <= a) e++; // log2 off by one next to a power of 2
  if (a !== 0 && 2 ** e > a) e--;
  return 2 ** (Math.max(e, emin) - bits + 1);
}

/** v (a float64) rounded to `dtype` once, to nearest even (no overflow in these cases). */
function roundTo(v: number, dtype: keyof typeof FORMAT): number {
  const q = ulpAt(v, dtype);
  const k = v / q; // exact: q is a power of 2
  const f = Math.floor(k);
  const r = k - f > 0.5 || (k - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r * q;
}

describe('Rope kernel vs the float64 reference (CPU), forward and transpose (the backward)', () => {
  // Odd B, T, n and half heads (3, 5: the scalar path on CUDA), the smallest head, a zero-size batch, and
  // Llama's head size 128 over 77,184 pairs (two CPU chunks of 65,536).
  const shapes: ReadonlyArray<readonly [number, number, number, number]> = [
    [3, 5, 7, 6],
    [2, 9, 3, 10],
    [1, 1, 1, 2],
    [2, 67, 9, 128],
    [0, 3, 2, 4],
  ];
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    for (const dims of shapes) {
      it(`${dtype} [${dims.join(', ')}]: y and dx`, async () => {
        const c = ropeCase(dtype, dims, 3);
        const out = await runOnce(c.model, c.inputs, cpu);
        const ref = ropeReference(c.inputs);
        for (const [k, exact, f32, scale] of [
          ['y', ref.y, ref.y32, ref.yScale],
          ['dx', ref.dx, ref.dx32, ref.dxScale],
        ] as const) {
          const got = floatValues(out[k] as HostTensor);
          expect(got.length, k).toBe(dims.reduce((a, b) => a * b, 1));
          if (got.length > 0)
            expect(
              exact.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
              `${k}: not trivially 0`,
            ).toBeGreaterThan(0);
          let bad = 0;
          let first = '';
          for (let i = 0; i < got.length; i++) {
            const [g, e, r32, s] = [got[i] as number, exact[i] as number, f32[i] as number, scale[i] as number];
            // float32: exactly the float32 arithmetic (each product and the sum rounded once), which is within
            // 2⁻²³ of the scale of the float64 value (three roundings of at most 2⁻²⁴ of their operands).
            // 16-bit: the float32 value rounded once to the dtype (the 16-bit products are exact in float32),
            // which is within one ulp of the float64 value rounded to the dtype (double rounding at most).
            const ok =
              dtype === 'float32'
                ? g === r32 && Math.abs(g - e) <= 2 ** -23 * s
                : g === roundTo(r32, dtype) && Math.abs(g - roundTo(e, dtype)) <= ulpAt(roundTo(e, dtype), dtype);
            if (!ok && bad++ === 0) first = `${k}[${i}] = ${g}, float32 arithmetic ${r32}, float64 ${e}`;
          }
          expect(bad, first).toBe(0);
        }
      });
    }
  }
});

describe('Rope shape and gradient rules', () => {
  const inputs = (g: Graph, dtype: 'float16' | 'float32' = 'float16', x: number[] = [2, 3, 4, 8], f: number[] = [2, 3, 1, 8]) =>
    [g.input('x', dtype, x), g.input('cos', dtype, f), g.input('sin', dtype, f)] as const;

  it("infers x's dtype and shape; refuses bad operands in one line naming them", () => {
    const g = new Graph('rope');
    const [x, c, s] = inputs(g);
    expect(`${g.op1('Rope', [x, c, s]).dtype}${g.op1('Rope', [x, c, s], { transpose: 1 }).shapeText}`).toBe('float16[2, 3, 4, 8]');
    expect(() => g.op1('Rope', [x, c, s], { transpose: 2 })).toThrow(/transpose must be 0 or 1, got 2/);
    const bad = (x: number[], f: number[], dtypes: ['float16' | 'float32' | 'int32', 'float16' | 'float32'] = ['float16', 'float16']) => {
      const h = new Graph('bad');
      return () => h.op1('Rope', [h.input('x', dtypes[0] as 'float16', x), h.input('cos', dtypes[1], f), h.input('sin', dtypes[1], f)]);
    };
    expect(bad([2, 3, 4, 7], [2, 3, 1, 7])).toThrow(
      /x must be a float32, bfloat16 or float16 \[B, T, n, hd\] with a static even hd, got float16\[2, 3, 4, 7\]/,
    );
    expect(bad([2, 3, 8], [2, 3, 8])).toThrow(/x must be .*\[B, T, n, hd\]/);
    expect(bad([2, 3, 4, 8], [2, 3, 4, 8])).toThrow(/cos must be float16 \[B, T, 1, 8\] \(x \[2, 3, 4, 8\]\), got float16\[2, 3, 4, 8\]/);
    expect(bad([2, 3, 4, 8], [1, 3, 1, 8])).toThrow(/cos must be float16 \[B, T, 1, 8\]/);
    expect(bad([2, 3, 4, 8], [2, 3, 1, 8], ['float16', 'float32'])).toThrow(/cos must be float16 .*got float32\[2, 3, 1, 8\]/);
    expect(bad([2, 3, 4, 8], [2, 3, 1, 8], ['int32', 'float16'])).toThrow(/x must be a float32, bfloat16 or float16/);
  });

  it('differentiates x by the same op with transpose flipped; cos and sinSigned get none (and may not need one)', () => {
    const g = new Graph('rope_grad');
    const [x, c, s] = inputs(g);
    const y = g.op1('Rope', [x, c, s]);
    const z = g.op1('Rope', [y, c, s], { transpose: 1 });
    const [dx] = grad(g, g.reduceSum(g.cast(z, 'float32'), undefined, false), [x]);
    const ropes = g.nodes.filter((n) => n.op === 'Rope');
    expect(ropes.map((n) => n.attrs)).toEqual([{}, { transpose: 1 }, {}, { transpose: 1 }]); // z's backward, then y's
    expect(ropes[3]?.outputs[0]).toBe(dx?.name);
    expect(ropes.slice(2).every((n) => n.inputs[1] === c.name && n.inputs[2] === s.name)).toBe(true);
    // cos depending on a parameter: refused rather than given no gradient.
    const h = new Graph('rope_param');
    const [hx, hc, hs] = inputs(h);
    const w = h.input('w', 'float16', [2, 3, 1, 8]);
    const out = h.op1('Rope', [hx, h.mul(hc, w), hs]);
    expect(() => grad(h, h.reduceSum(h.cast(out, 'float32'), undefined, false), [hx, w])).toThrow(
      /Rope: cos and sinSigned have no gradient \(they must not depend on a parameter\)/,
    );
  });
});

/** The forward graph of `objective` in `compute` (inputs declared as the step graphs declare them), not rewritten. */
function forwardGraph(objective: Objective, compute: 'float16' | 'float32'): Graph {
  const g = new Graph('forward');
  const view: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(objective.trainable)) view[n] = g.cast(g.input(n, s.dtype, s.shape), compute);
  const inp: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(objective.batch)) inp[n] = g.input(n, s.dtype, s.shape);
  g.output(objective.buildLoss(g, view, inp).loss, 'loss');
  return g;
}

const opCounts = (g: Graph): Record<string, number> => {
  const c: Record<string, number> = {};
  for (const n of g.nodes) c[n.op] = (c[n.op] ?? 0) + 1;
  return c;
};

const [Bt, Tt] = [2, 7];
/** head size 8 (the default tiny Llama's is 4). */
const hd8 = tinyLlama({ hiddenSize: 32 });

describe('fuseRope on the decoder graph', () => {
  it("rewrites applyRope's q and k of every layer (2 per layer): no RoPE Split / Concat / Mul / Add left", () => {
    for (const config of [tinyLlama(), hd8]) {
      const L = config.numHiddenLayers;
      const g = forwardGraph(tinyObjective('batch', Tt, 'float16', config).objective, 'float16');
      const before = opCounts(g);
      expect(before['Split'], 'the check sees the Splits where they are').toBe(2 * L);
      expect(fuseRope(g)).toBe(2 * L);
      const after = opCounts(g);
      expect(after['Rope']).toBe(2 * L);
      // Each rewrite removed its Split, Concat, two Muls and the Add (the replaced Add's place is the Rope's).
      expect(after['Split'] ?? 0).toBe(0);
      expect([before['Concat']! - after['Concat']!, before['Mul']! - after['Mul']!, before['Add']! - after['Add']!]).toEqual([2 * L, 4 * L, 2 * L]);
      expect(g.nodes.length).toBe(Object.values(before).reduce((a, b) => a + b, 0) - 4 * 2 * L);
      // Every Rope reads the layer's q or k heads and ropeFactors' cos / sinSigned, and the graph still infers.
      for (const n of g.nodes.filter((m) => m.op === 'Rope')) {
        expect(g.value(n.inputs[0]!).shape.at(-1)).toBe(config.headDim);
        expect(g.value(n.inputs[1]!).shapeText).toBe(g.value(n.inputs[2]!).shapeText);
      }
      expect(fuseRope(g)).toBe(0); // nothing left to rewrite
    }
  });

  it('leaves float32 graphs alone (their PyTorch goldens), and patterns that are not exactly RoPE', () => {
    const f32 = forwardGraph(tinyObjective('batch', Tt, 'float32', hd8).objective, 'float32');
    const n = f32.nodes.length;
    expect(fuseRope(f32)).toBe(0);
    expect(f32.nodes.length).toBe(n);

    const rope = (g: Graph, x: Tensor, c: Tensor, s: Tensor, opts: { order?: 'swap' | 'same'; extraUse?: boolean } = {}) => {
      const [x1, x2] = g.op('Split', [x, g.ints([4, 4])], { axis: 3 }) as [Tensor, Tensor];
      if (opts.extraUse === true) g.output(g.identity(x1), `x1_${g.nodes.length}`);
      const sw = g.concat(opts.order === 'same' ? [x1, x2] : [x2, x1], 3);
      return g.add(g.mul(c, x), g.mul(s, sw)); // operands swapped against applyRope's order: still matched
    };
    const g = new Graph('patterns');
    const x = g.input('x', 'float16', [2, 3, 4, 8]);
    // cos / sinSigned made from integers (as ropeFactors makes them from the positions): no gradient can reach them.
    const f = { cos: g.cast(g.input('ci', 'int32', [2, 3, 1, 8]), 'float16'), sinSigned: g.cast(g.input('si', 'int32', [2, 3, 1, 8]), 'float16') };
    g.output(rope(g, x, f.cos, f.sinSigned), 'ok');
    g.output(rope(g, rope(g, x, f.cos, f.sinSigned), f.cos, f.sinSigned), 'twice'); // the inner rewrite renames the outer's x
    g.output(rope(g, x, f.cos, f.sinSigned, { order: 'same' }), 'not_swapped');
    g.output(rope(g, x, f.cos, f.sinSigned, { extraUse: true }), 'half_used_again');
    g.output(rope(g, x, f.cos, g.input('s4', 'float16', [2, 3, 4, 8])), 'sin_per_head');
    g.output(rope(g, x, f.cos, g.mul(f.sinSigned, g.input('w', 'float16', [2, 3, 1, 8]))), 'sin_of_a_float_input');
    expect(fuseRope(g)).toBe(3);
    const ropes = g.nodes.filter((m) => m.op === 'Rope');
    expect(ropes.length).toBe(3);
    expect(ropes[2]?.inputs[0]).toBe(ropes[1]?.outputs[0]); // 'twice': Rope(Rope(x))
    expect(ropes.map((m) => m.inputs[0]).filter((i) => i === x.name).length).toBe(2);
  });
});

/** Trains `objective` for STEPS SGD steps; per step the loss and every gradient ((p before − p after) / lr). */
const STEPS = 3;
const LR = 0.1;
async function train(
  objective: Objective,
  init: Record<string, HostTensor>,
  batches: ReadonlyArray<Record<string, HostTensor>>,
  rope: boolean,
  recompute: Recompute = 'none',
  compute: 'float16' | 'float32' = 'float16',
): Promise<{ losses: number[]; grads: Array<Map<string, Float32Array>>; ropes: number }> {
  const opts: TrainerOptions = {
    objective,
    optimizer: { kind: 'sgd', lr: LR },
    schedule: { kind: 'constant' },
    totalSteps: STEPS,
    clipNorm: null,
    precision: { compute, lossScale: null },
    device: cpu,
    fusedKernels: { optimizer: false, softmax: true, rope },
    recompute,
  };
  const graphs = Trainer.stepGraphs(opts).graphs;
  const ropes = (graphs.fused ?? graphs.grad)!.nodes.filter((n) => n.op === 'Rope').length;
  const t = await Trainer.create(opts, { trainable: init, frozen: {} });
  try {
    const losses: number[] = [];
    const grads: Array<Map<string, Float32Array>> = [];
    let before = new Map(Object.entries(init).map(([n, h]) => [n, h.data as Float32Array]));
    for (const batch of batches) {
      losses.push((await t.step([batch])).loss);
      const after = new Map((await t.state()).trainable.map((p) => [p.name, p.data as Float32Array]));
      grads.push(new Map([...after].map(([n, p]) => [n, Float32Array.from(p, (v, j) => ((before.get(n)![j] as number) - v) / LR)])));
      before = after;
    }
    return { losses, grads, ropes };
  } finally {
    await t.release();
  }
}

/**
 * Rope vs the standard ops, both float16: the standard chain rounds x·cos, swap(x)·sinSigned and their sum to
 * float16, Rope the float32 sum once, so q and k differ by ~1 f16 ulp (2⁻¹¹) at rounding boundaries (and the
 * backward's dq, dk likewise), carried through two layers, the loss and the backward, 3 steps apart. Measured
 * (head size 8, worst step and parameter): losses 1.2e-4 relative apart, gradients 5.9e-3 normwise; Rope's
 * gradients 8.5e-3 from the float32 run's where the standard float16 path's are 6.3e-3: float16 noise, not a
 * bias of the op. Bounds: about twice those.
 */
const LOSS = { rtol: 3e-4, atol: 0 };
const GRAD = 1.2e-2;
const GRAD_VS_F32 = 1.7e-2;

describe('a small Llama in float16 with the fused RoPE vs the standard ops (CPU)', () => {
  it('losses and every gradient over 3 SGD steps; recompute layers gives the same bits', async () => {
    const [o16, o32] = [tinyObjective('batch', Tt, 'float16', hd8), tinyObjective('batch', Tt, 'float32', hd8)];
    const batches = Array.from({ length: STEPS }, () => tinyBatch(Bt, Tt));
    const [fused, plain, f32, recomputed] = [
      await train(o16.objective, o16.init, batches, true),
      await train(o16.objective, o16.init, batches, false),
      await train(o32.objective, o16.init, batches, false, 'none', 'float32'),
      await train(o16.objective, o16.init, batches, true, 'layers'),
    ];
    const L = hd8.numHiddenLayers;
    // q and k of every layer, forward and backward (recompute 'layers': the forward ones once more).
    expect([fused.ropes, plain.ropes, f32.ropes, recomputed.ropes]).toEqual([4 * L, 0, 0, 6 * L]);
    expect(fused.losses.every(Number.isFinite)).toBe(true);
    expect(fused.losses).toBeAllclose(plain.losses, LOSS);
    expect(fused.losses).toBeAllclose(f32.losses, LOSS);
    expect(fused.losses[2]!).toBeLessThan(fused.losses[0]!);
    fused.grads.forEach((step, s) => {
      for (const [name, g] of step) {
        const [p, r] = [plain.grads[s]!.get(name)!, f32.grads[s]!.get(name)!];
        expect(Math.max(...Array.from(r, Math.abs)), `step ${s} ${name}: not trivially 0`).toBeGreaterThan(0);
        expect(normwise(g, p), `step ${s} ${name}: Rope vs standard ops`).toBeLessThan(GRAD);
        expect(normwise(g, r), `step ${s} ${name}: Rope vs float32`).toBeLessThan(GRAD_VS_F32);
      }
    });
    expect(recomputed.losses).toEqual(fused.losses);
    recomputed.grads.forEach((step, s) => {
      for (const [name, g] of step) expect(Array.from(g), `recomputed step ${s} ${name}`).toEqual(Array.from(fused.grads[s]!.get(name)!));
    });
  });
});
