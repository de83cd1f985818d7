import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { accumulateGrads, clipByGlobalNorm } from './grads.js';
import { adamw, optStateFromTensors, optStateToTensors, sgd, type Optimizer, type Tensors } from './optim.js';
import { lrAt } from './schedule.js';
import type { LrSchedule } from './index.js';

/** float64 vs torch float64 on the same operations: only rounding-order differences. */
const F64 = { atol: 1e-14, rtol: 1e-10 };
const EXACT = { atol: 0, rtol: 1e-15 };
const f64 = (xs: number[]) => Float64Array.from(xs);

describe('adamw (hand-computed)', () => {
  it('first step from zero state moves each weight by lr*sign(g) after decoupled decay', () => {
    const opt = adamw({ lr: 0.1, weightDecay: 0.5 });
    const params = { p: f64([1, -2]) };
    const { params: p1, state } = opt.update(params, { p: f64([0.3, -4]) }, opt.init(params));
    // m = 0.1g, v = 0.001g², m̂ = g, v̂ = g²; update = lr * g / (|g| + eps)
    const decay = 1 - 0.1 * 0.5;
    expect(p1['p']).toBeAllclose([1 * decay - (0.1 * 0.3) / (0.3 + 1e-8), -2 * decay + (0.1 * 4) / (4 + 1e-8)], EXACT);
    expect(state.step).toBe(1);
    expect(state.slots['m']?.['p']).toBeAllclose([0.1 * 0.3, -0.1 * 4], { atol: 1e-16, rtol: 1e-15 });
    expect(state.slots['v']?.['p']).toBeAllclose([0.001 * 0.09, 0.001 * 16], { atol: 0, rtol: 1e-12 });
    expect(params.p).toBeAllclose([1, -2], EXACT); // inputs untouched
  });

  it('second step uses bias correction with t = 2', () => {
    const opt = adamw({ lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    const s0 = opt.init({ p: f64([0]) });
    const a = opt.update({ p: f64([0]) }, { p: f64([1]) }, s0);
    const b = opt.update(a.params, { p: f64([3]) }, a.state);
    const m = 0.9 * 0.1 + 0.1 * 3;
    const v = 0.999 * 0.001 + 0.001 * 9;
    const p1 = -0.01 / (1 + 1e-8); // first step: m̂ = g = 1, v̂ = 1
    const expected = p1 - ((0.01 / (1 - 0.81)) * m) / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-8);
    expect(b.params['p']).toBeAllclose([expected], { atol: 0, rtol: 1e-14 });
  });

  it('rejects missing or mis-sized gradients and state', () => {
    const opt = adamw({ lr: 0.1 });
    const params = { p: f64([1, 2]) };
    expect(() => opt.update(params, {}, opt.init(params))).toThrow("no gradient for parameter 'p'");
    expect(() => opt.update(params, { p: f64([1]) }, opt.init(params))).toThrow("gradient 'p' has 1 values, parameter has 2");
    expect(() => opt.update(params, { p: f64([1, 1]), q: f64([1]) }, opt.init(params))).toThrow("gradient 'q' has no parameter");
    expect(() => opt.update(params, { p: f64([1, 1]) }, opt.init({ p: f64([1]) }))).toThrow("slot 'm.p'");
  });
});

describe('sgd (hand-computed)', () => {
  it('momentum buffer starts as the gradient; nesterov adds momentum*buf', () => {
    const params = { p: f64([1]) };
    for (const nesterov of [false, true]) {
      const opt = sgd({ lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov });
      const a = opt.update(params, { p: f64([2]) }, opt.init(params));
      const g1 = 2 + 0.1 * 1; // weight decay folded into the gradient
      const d1 = nesterov ? g1 + 0.9 * g1 : g1;
      expect(a.params['p']).toBeAllclose([1 - 0.1 * d1], EXACT);
      const b = opt.update(a.params, { p: f64([-1]) }, a.state);
      const p1 = 1 - 0.1 * d1;
      const g2 = -1 + 0.1 * p1;
      const buf2 = 0.9 * g1 + g2;
      const d2 = nesterov ? g2 + 0.9 * buf2 : buf2;
      expect(b.params['p']).toBeAllclose([p1 - 0.1 * d2], EXACT);
      expect(b.state.slots['momentum']?.['p']).toBeAllclose([buf2], EXACT);
    }
  });

  it('plain sgd keeps no state; nesterov needs momentum', () => {
    const opt = sgd({ lr: 0.5 });
    const r = opt.update({ p: f64([1, 2]) }, { p: f64([2, -2]) }, opt.init({ p: f64([1, 2]) }));
    expect(r.params['p']).toBeAllclose([0, 3], EXACT);
    expect(r.state.slots).toEqual({});
    expect(() => sgd({ lr: 1, nesterov: true })).toThrow('nesterov');
  });
});

describe('clipByGlobalNorm and accumulateGrads', () => {
  it('scales by max/(norm+1e-6) only when the norm exceeds max', () => {
    const g = { a: f64([3, 0]), b: f64([4]) }; // norm 5
    const c = clipByGlobalNorm(g, 1);
    expect(c.totalNorm).toBe(5);
    expect(c.coef).toBeAllclose(1 / (5 + 1e-6), EXACT);
    expect(c.grads['a']).toBeAllclose([3 / (5 + 1e-6), 0], EXACT);
    const d = clipByGlobalNorm(g, 10);
    expect(d.coef).toBe(1);
    expect(d.grads['b']).toBeAllclose([4], EXACT);
    expect(() => clipByGlobalNorm(g, 0)).toThrow('maxNorm');
  });

  it('averages micro-batch gradients', () => {
    const avg = accumulateGrads([{ a: f64([1, 2]) }, { a: f64([3, 6]) }, { a: f64([2, 1]) }]);
    expect(avg['a']).toBeAllclose([2, 3], EXACT);
    expect(() => accumulateGrads([])).toThrow('at least one');
    expect(() => accumulateGrads([{ a: f64([1]) }, { a: f64([1, 2]) }])).toThrow("micro-batch 1: gradient 'a'");
  });
});

describe('optimizer state as tensors', () => {
  it('round-trips through named tensors', () => {
    const opt = adamw({ lr: 0.1 });
    const params = { w: f64([1, 2]), b: f64([3]) };
    const { state } = opt.update(params, { w: f64([0.1, 0.2]), b: f64([0.3]) }, opt.init(params));
    const saved = optStateToTensors(state);
    expect(Object.keys(saved.tensors).sort()).toEqual(['optim.m.b', 'optim.m.w', 'optim.v.b', 'optim.v.w']);
    const back = optStateFromTensors(saved.step, saved.tensors, params, ['m', 'v']);
    expect(back).toEqual(state);
    expect(() => optStateFromTensors(1, {}, params, ['m'])).toThrow("optimizer tensor 'optim.m.w' is missing");
  });
});

// ---- goldens from tools/reference/optim_goldens.py (torch, float64) ----

interface GoldenRun {
  name: string;
  optimizer:
    | { kind: 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }
    | { kind: 'sgd'; lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  schedule: LrSchedule;
  steps: Array<{ lr: number; totalNorm: number; params: Record<string, number[]> }>;
}
interface Goldens {
  magic: string;
  version: number;
  maxNorm: number;
  torch: string;
  init: Record<string, number[]>;
  grads: Array<Record<string, number[]>>;
  runs: GoldenRun[];
}

const goldensPath = fileURLToPath(new URL('../test/fixtures/optim-goldens.json', import.meta.url));
const REGEN = 'regenerate with: python3 tools/reference/optim_goldens.py (torch 2.11, on the GPU machine)';

describe('torch goldens', () => {
  it('matches torch AdamW/SGD + LambdaLR + clip_grad_norm_ step by step', () => {
    expect(existsSync(goldensPath), `${goldensPath} is missing; ${REGEN}`).toBe(true);
    const g = JSON.parse(readFileSync(goldensPath, 'utf8')) as Goldens;
    expect(g.magic, `stale fixture; ${REGEN}`).toBe('latent-sft/optim-goldens');
    expect(g.version, `stale fixture; ${REGEN}`).toBe(1);
    expect(g.runs.length).toBe(5);
    for (const run of g.runs) {
      const o = run.optimizer;
      const opt: Optimizer =
        o.kind === 'adamw'
          ? adamw({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay })
          : sgd({ lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov });
      let params: Tensors = Object.fromEntries(Object.entries(g.init).map(([k, v]) => [k, f64(v)]));
      let state = opt.init(params);
      run.steps.forEach((expected, k) => {
        const lr = lrAt(k, run.schedule, o.lr);
        expect(lr, `${run.name} step ${k} lr`).toBeAllclose(expected.lr, F64);
        const grads = Object.fromEntries(Object.entries(g.grads[k]!).map(([n, v]) => [n, f64(v)]));
        const clipped = clipByGlobalNorm(grads, g.maxNorm);
        expect(clipped.totalNorm, `${run.name} step ${k} norm`).toBeAllclose(expected.totalNorm, F64);
        ({ params, state } = opt.update(params, clipped.grads, state, lr));
        for (const [name, values] of Object.entries(expected.params)) {
          expect(params[name], `${run.name} step ${k} ${name}`).toBeAllclose(values, F64);
        }
      });
    }
  });
});
