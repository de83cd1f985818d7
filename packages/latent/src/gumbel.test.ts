import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { gumbelPerturb } from './gumbel.js';
import { matrix } from './matrix.js';

const f64 = (rows: number, cols: number, values: number[]) => matrix(Float64Array.from(values), rows, cols);
const ids = (rows: number, cols: number, values: number[]) => matrix(Int32Array.from(values), rows, cols);
const clampG = (g: number) => Math.min(Math.max(g, -1.5), 3);

describe('gumbelPerturb', () => {
  it('follows p~ = softmax((log(p + 1e-10) + clamp(scale·g)) / τ) with the Rng draws in row-major order', () => {
    // k = 2: p~_0 = 1 / (1 + exp(((log(0.3+1e-10) + g1) - (log(0.7+1e-10) + g0)) / τ)), with g drawn
    // from a copy of the same generator state.
    const rng = Rng.fromSeed(9);
    const copy = Rng.fromState(rng.state());
    const out = gumbelPerturb(f64(1, 2, [0.7, 0.3]), ids(1, 2, [4, 5]), { rng, scale: 0.8, temperature: 2 });
    const g0 = clampG(0.8 * copy.gumbel()),
      g1 = clampG(0.8 * copy.gumbel());
    const p0 = 1 / (1 + Math.exp((Math.log(0.3 + 1e-10) + g1 - Math.log(0.7 + 1e-10) - g0) / 2));
    expect(out.probs.data).toBeAllclose([p0, 1 - p0], { atol: 1e-15 });
    expect(out.redraws).toBe(0);
    expect(rng.state()).toEqual(copy.state());
  });

  it('is reproducible for a fixed seed and differs across seeds', () => {
    const p = f64(2, 3, [0.5, 0.3, 0.2, 0.6, 0.3, 0.1]);
    const idx = ids(2, 3, [1, 2, 3, 4, 5, 6]);
    const a = gumbelPerturb(p, idx, { rng: Rng.fromSeed(5) });
    const b = gumbelPerturb(p, idx, { rng: Rng.fromSeed(5) });
    const c = gumbelPerturb(p, idx, { rng: Rng.fromSeed(6) });
    expect(Array.from(a.probs.data)).toEqual(Array.from(b.probs.data));
    expect(Array.from(a.probs.data)).not.toEqual(Array.from(c.probs.data));
    for (let i = 0; i < 2; i++) expect(a.probs.data.subarray(3 * i, 3 * i + 3).reduce((x, y) => x + y, 0)).toBeAllclose(1, { atol: 1e-12 });
  });

  it('returns the input distribution when scale = 0', () => {
    // g = 0: p~ = (p + 1e-10) / Σ(p + 1e-10), within 3e-10 of p.
    const out = gumbelPerturb(f64(1, 3, [0.6, 0.3, 0.1]), ids(1, 3, [0, 1, 2]), { rng: Rng.fromSeed(1), scale: 0 });
    expect(out.probs.data).toBeAllclose([0.6, 0.3, 0.1], { atol: 1e-9 });
  });

  it('bounds the noise by the clamp: max/min ratio of a uniform row is at most e^(3 - (-1.5))', () => {
    const rng = Rng.fromSeed(2);
    const p = f64(50, 4, new Array(200).fill(0.25));
    const idx = ids(
      50,
      4,
      Array.from({ length: 200 }, (_, i) => i % 4),
    );
    const ratio = (d: Float64Array, i: number) => Math.max(...d.subarray(4 * i, 4 * i + 4)) / Math.min(...d.subarray(4 * i, 4 * i + 4));
    const clamped = gumbelPerturb(p, idx, { rng, scale: 100 }).probs.data;
    for (let i = 0; i < 50; i++) expect(ratio(clamped, i)).toBeLessThanOrEqual(Math.exp(4.5) * (1 + 1e-12));
    const free = gumbelPerturb(p, idx, { rng, scale: 100, clamp: null }).probs.data;
    expect(Math.max(...Array.from({ length: 50 }, (_, i) => ratio(free, i)))).toBeGreaterThan(Math.exp(4.5));
  });

  it('redraws while the argmax is the latent-end id, consuming k draws per attempt', () => {
    // The end id 7 holds 0.9 of the mass, so a draw passes the guard with probability ~0.1.
    const rng = Rng.fromSeed(1);
    const copy = Rng.fromState(rng.state());
    const p = f64(1, 3, [0.9, 0.05, 0.05]);
    const out = gumbelPerturb(p, ids(1, 3, [7, 1, 2]), { rng, latentEndId: 7 });
    expect(out.redraws).toBeGreaterThan(0);
    expect(out.guardFailed).toBe(false);
    const d = out.probs.data;
    expect(Math.max(d[1] as number, d[2] as number)).toBeGreaterThan(d[0] as number);
    for (let i = 0; i < 3 * (out.redraws + 1); i++) copy.gumbel();
    expect(rng.state()).toEqual(copy.state());
    // Without the guard the first draw is kept.
    expect(gumbelPerturb(p, ids(1, 3, [7, 1, 2]), { rng: Rng.fromSeed(1) }).redraws).toBe(0);
  });

  it('keeps the last draw and reports it when every attempt hits the end id', () => {
    // p = (1, 0, 0): the end slot's log p is 0 against log 1e-10 = -23.0; clamped noise spans only 4.5.
    const p = f64(1, 3, [1, 0, 0]);
    const full = gumbelPerturb(p, ids(1, 3, [7, 1, 2]), { rng: Rng.fromSeed(3), latentEndId: 7 });
    expect([full.redraws, full.guardFailed]).toEqual([99, true]);
    const five = gumbelPerturb(p, ids(1, 3, [7, 1, 2]), { rng: Rng.fromSeed(3), latentEndId: 7, maxAttempts: 5 });
    expect([five.redraws, five.guardFailed]).toEqual([4, true]);
  });

  it('rejects bad options and inputs', () => {
    const rng = Rng.fromSeed(1);
    expect(() => gumbelPerturb(f64(1, 2, [0.5, 0.5]), ids(1, 1, [0]), { rng })).toThrow(/probs has shape \[1,2\] but indices has shape \[1,1\]/);
    expect(() => gumbelPerturb(f64(1, 1, [-0.1]), ids(1, 1, [0]), { rng })).toThrow(/probs\[0,0\] = -0.1/);
    expect(() => gumbelPerturb(f64(1, 1, [1]), ids(1, 1, [0]), { rng, temperature: 0 })).toThrow(/temperature/);
  });
});
