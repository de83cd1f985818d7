// Graph-side optimizer updates and clipping against the float64 reference optimizers (which are
// checked against torch in optim.test.ts), over several steps, in float64 and float32 graphs.
import { Graph, type Tensor, buildTrainStep, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { normals } from '../test/objectives.js';
import { type OptimizerConfig, graphOptimizer } from './index.js';
import { adamw, sgd, type OptState } from './optim.js';
import { clipByGlobalNorm } from './grads.js';
import { clipByGlobalNormGraph } from './graph-optim.js';

/** float64 graph vs float64 reference: same operations in the same order. */
const F64 = { rtol: 1e-12, atol: 1e-15 };
/**
 * float32 graph vs the float64 reference applied to the graph's own float32 state, every step: rtol
 * 1e-6, plus an absolute floor of one float32 ulp at magnitude 1 for values that come out of a
 * cancellation (m + (1-b1)(g - m) near 0). A 5-step float32 trajectory drifts from the float64 one by
 * design (measured up to 4.5e-5 relative on such near-zero entries), so the float64 graph checks the
 * trajectory.
 */
const F32 = { rtol: 1e-6, atol: 1.2e-7 };

const SHAPES = { w: [3, 4], b: [4] } as const;

function reference(c: OptimizerConfig) {
  return c.kind === 'adamw' ? adamw(c) : sgd({ lr: c.lr, momentum: c.momentum ?? 0, weightDecay: c.weightDecay ?? 0, nesterov: c.nesterov ?? false });
}

/** A graph: params + grads (as inputs `grad.<p>`) → optional clip → update; outputs p.new, slots, grad_norm. */
function updateGraph(c: OptimizerConfig, dtype: 'float32' | 'float64', clip: number | null): Graph {
  const g = new Graph('update');
  const opt = graphOptimizer(c);
  const params: Record<string, Tensor> = {};
  const grads: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(SHAPES)) {
    params[n] = g.input(n, dtype, s);
    grads[n] = g.input(`grad.${n}`, dtype, s);
  }
  const clipped = clipByGlobalNormGraph(g, grads, clip);
  g.output(clipped.norm, 'grad_norm');
  for (const n of Object.keys(SHAPES)) g.output(opt.update(g, params[n] as Tensor, clipped.grads[n] as Tensor, n), `${n}.new`);
  g.prune();
  return g;
}

const host = (dtype: 'float32' | 'float64', dims: readonly number[], v: ArrayLike<number>): HostTensor => ({
  dtype,
  dims: [...dims],
  data: dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v),
});

async function compare(c: OptimizerConfig, dtype: 'float32' | 'float64', clip: number | null, steps = 5, gradScale = 1): Promise<void> {
  const opt = graphOptimizer(c);
  const ref = reference(c);
  const s = await Session.create(serialize(updateGraph(c, dtype, clip)).model);
  try {
    const round = (v: number[]) => (dtype === 'float32' ? Array.from(Float32Array.from(v)) : v);
    let params: Record<string, Float64Array> = Object.fromEntries(
      Object.entries(SHAPES).map(([n, sh], i) => [n, Float64Array.from(round(normals(10 + i, sh[0] * (sh[1] ?? 1))))]),
    );
    let st: OptState = ref.init(params);
    const dev: Record<string, HostTensor> = {};
    for (const [n, sh] of Object.entries(SHAPES)) {
      dev[n] = host(dtype, sh, params[n] as Float64Array);
      for (const slot of opt.slots) dev[`${slot}.${n}`] = host(dtype, sh, new Float64Array(params[n]!.length));
    }
    for (let t = 1; t <= steps; t++) {
      const lr = c.lr * (1 - 0.1 * t); // a changing lr, as a schedule gives
      const grads = Object.fromEntries(
        Object.entries(SHAPES).map(([n, sh], i) => [n, Float64Array.from(round(normals(100 * t + i, sh[0] * (sh[1] ?? 1), gradScale)))]),
      );
      const feeds: Record<string, HostTensor> = { ...dev };
      for (const [n, sh] of Object.entries(SHAPES)) feeds[`grad.${n}`] = host(dtype, sh, grads[n] as Float64Array);
      for (const [k, v] of Object.entries(opt.scalars(t, lr))) feeds[k] = host(dtype, [], [v]);
      const out = await s.run(feeds);
      const clipped = clip === null ? { grads, totalNorm: Math.hypot(...Object.values(grads).flatMap((x) => [...x])) } : clipByGlobalNorm(grads, clip);
      const next = ref.update(params, clipped.grads, st, lr);
      const tol = dtype === 'float64' ? F64 : F32;
      expect(out['grad_norm']!.data).toBeAllclose([clipped.totalNorm], tol);
      for (const n of Object.keys(SHAPES)) {
        expect(out[`${n}.new`]!.data).toBeAllclose(next.params[n]!, tol);
        dev[n] = out[`${n}.new`]!;
        for (const slot of opt.slots) {
          expect(out[`${slot}.${n}.new`]!.data).toBeAllclose(next.state.slots[slot]![n]!, tol);
          dev[`${slot}.${n}`] = out[`${slot}.${n}.new`]!;
        }
      }
      if (dtype === 'float64') {
        params = next.params;
        st = next.state;
      } else {
        // Re-anchor the reference on the graph's float32 state.
        params = Object.fromEntries(Object.keys(SHAPES).map((n) => [n, Float64Array.from(dev[n]!.data as Float32Array)]));
        const slots = Object.fromEntries(
          opt.slots.map((slot) => [
            slot,
            Object.fromEntries(Object.keys(SHAPES).map((n) => [n, Float64Array.from(dev[`${slot}.${n}`]!.data as Float32Array)])),
          ]),
        );
        st = { step: next.state.step, slots };
      }
    }
  } finally {
    await s.release();
  }
}

const CASES: Array<[string, OptimizerConfig]> = [
  ['adamw (spec defaults)', { kind: 'adamw', lr: 1e-2 }],
  ['adamw wd 0, betas 0.8/0.99', { kind: 'adamw', lr: 3e-2, beta1: 0.8, beta2: 0.99, weightDecay: 0, eps: 1e-6 }],
  ['sgd plain', { kind: 'sgd', lr: 0.1 }],
  ['sgd momentum + wd', { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0.01 }],
  ['sgd nesterov', { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }],
];

describe('graph optimizers vs the float64 reference', () => {
  it.each(CASES)('%s: 5 steps, float64 graph', async (_n, c) => compare(c, 'float64', null));
  it.each(CASES)('%s: 5 steps, float32 graph', async (_n, c) => compare(c, 'float32', null));
  it('adamw with clipping active (norm ~7 > 1), float64 and float32', async () => {
    await compare({ kind: 'adamw', lr: 1e-2 }, 'float64', 1.0, 5, 1);
    await compare({ kind: 'adamw', lr: 1e-2 }, 'float32', 1.0, 5, 1);
  });
  it('sgd momentum with clipping inactive (norm < max)', async () => {
    await compare({ kind: 'sgd', lr: 0.1, momentum: 0.9 }, 'float64', 100, 4, 1);
  });

  it('is an UpdateFn for buildTrainStep (slots and scalars become inputs/outputs)', () => {
    const opt = graphOptimizer({ kind: 'adamw', lr: 1e-3 });
    const step = buildTrainStep({
      params: { w: { dtype: 'float32', shape: [2, 2] } },
      inputs: { x: { dtype: 'float32', shape: [1, 2] } },
      buildLoss: (g, p, i) => g.reduceSum(g.matmul(i['x'] as Tensor, p['w'] as Tensor), undefined, false),
      optimizer: opt.update,
    });
    expect(step.graph.inputs.map((t) => t.name)).toEqual(['w', 'x', 'm.w', 'v.w', 'opt.decay', 'opt.bc2_sqrt', 'opt.step_size']);
    expect(step.graph.outputs.map((t) => t.name)).toEqual(['loss', 'w.grad', 'm.w.new', 'v.w.new', 'w.new']);
  });

  it('global norm: one ReduceSumSquare per gradient, against float64', async () => {
    const g = new Graph('norm');
    const shapes: Record<string, number[]> = { big: [2049, 2048], a: [3, 4], b: [5] };
    const grads = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, g.input(n, 'float32', s)]));
    const clipped = clipByGlobalNormGraph(g, grads, 1);
    g.output(clipped.norm, 'norm');
    g.output(clipped.grads.a as Tensor, 'a.clipped');
    g.prune();
    expect(g.nodes.filter((n) => n.op === 'ReduceSumSquare').map((n) => g.value(n.inputs[0]!).shape)).toEqual([[2049, 2048], [3, 4], [5]]);
    await using s = await Session.create(serialize(g).model);
    const feeds: Record<string, HostTensor> = {};
    let sq = 0;
    for (const [i, [n, sh]] of Object.entries(shapes).entries()) {
      const size = sh.reduce((p, q) => p * q, 1);
      const v = Float32Array.from({ length: size }, (_, k) => Math.sin(0.37 * k + i) * (n === 'big' ? 1e-3 : 1));
      for (const x of v) sq += x * x;
      feeds[n] = { dtype: 'float32', dims: sh, data: v };
    }
    const out = await s.run(feeds);
    const norm = Math.sqrt(sq);
    const SUM4M = { rtol: 2e-5, atol: 0 }; // float32 sum of 4.2 M squares (ORT CPU) vs float64
    expect(out.norm!.data).toBeAllclose([norm], SUM4M);
    const coef = Math.min(1, 1 / (norm + 1e-6));
    expect(out['a.clipped']!.data).toBeAllclose(
      Array.from(feeds.a!.data as Float32Array, (x) => x * coef),
      SUM4M,
    );
  });

  it('rejects bad configs with one-line errors', () => {
    expect(() => graphOptimizer({ kind: 'adamw', lr: -1 })).toThrow(/optimizer\.lr.*finite and >= 0, got -1/);
    expect(() => graphOptimizer({ kind: 'adamw', lr: 1, beta2: 1 })).toThrow(/beta2.*\[0, 1\)/);
    expect(() => graphOptimizer({ kind: 'sgd', lr: 1, nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => graphOptimizer({ kind: 'lion', lr: 1 } as unknown as OptimizerConfig)).toThrow(/expected 'adamw' or 'sgd'/);
    expect(() => clipByGlobalNormGraph(new Graph(), {}, 0)).toThrow(/clipNorm.*> 0/);
  });
});
