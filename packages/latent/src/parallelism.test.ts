import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { matrix } from './matrix.js';
import { distanceMatrix, greedyAssignment, nEff, parallelism, pathPosterior, pathScore, segmentBoundaries } from './parallelism.js';

const f64 = (rows: number, cols: number, values: number[]) => matrix(Float64Array.from(values), rows, cols);

describe('segmentBoundaries', () => {
  it("is ⌊t·L/T'⌋", () => {
    // L=10, T'=3: 0, ⌊10/3⌋ = 3, ⌊20/3⌋ = 6, 10. L=2, T'=3: 0, 0, 1, 2 (an empty first span).
    expect(Array.from(segmentBoundaries(10, 3))).toEqual([0, 3, 6, 10]);
    expect(Array.from(segmentBoundaries(2, 3))).toEqual([0, 0, 1, 2]);
    expect(() => segmentBoundaries(4, 0)).toThrow(/parts must be a positive integer/);
  });
});

describe('distanceMatrix', () => {
  it('computes cosine and euclidean distances', () => {
    // a = (1,0), (1,1); b = (0,2), (3,0). cos: (0, 1; 1/√2, 1/√2) -> 1 - cos.
    // euclid: |(1,-2)| = √5, |(-2,0)| = 2, |(1,-1)| = √2, |(-2,1)| = √5.
    const a = f64(2, 2, [1, 0, 1, 1]),
      b = f64(2, 2, [0, 2, 3, 0]);
    expect(distanceMatrix(a, b).data).toBeAllclose([1, 0, 1 - Math.SQRT1_2, 1 - Math.SQRT1_2], { atol: 1e-15 });
    expect(distanceMatrix(a, b, 'euclidean').data).toBeAllclose([Math.sqrt(5), 2, Math.SQRT2, Math.sqrt(5)], { atol: 1e-15 });
    expect(distanceMatrix(f64(1, 2, [0, 0]), b).data).toBeAllclose([1, 1], { atol: 0 }); // zero vector
    expect(() => distanceMatrix(a, f64(1, 3, [1, 2, 3]))).toThrow(/a has shape \[2,2\] but b has shape \[1,3\]/);
  });
});

describe('greedyAssignment', () => {
  it('gives each step in order its closest unused segment', () => {
    // t0 takes column 0 (0.1); t1's best (0.05, column 0) is used, so it takes column 1 (0.5).
    expect(Array.from(greedyAssignment(f64(2, 3, [0.1, 0.2, 0.9, 0.05, 0.5, 0.6])))).toEqual([0, 1]);
    // More steps than segments: the third step gets none; equal distances go to the lower column.
    expect(Array.from(greedyAssignment(f64(3, 2, [0.3, 0.3, 0.1, 0.2, 0, 0])))).toEqual([0, 1, -1]);
  });
});

describe('pathScore', () => {
  // p0 = (0.5, 0.3, 0.2, 0), p1 = (0.1, 0.1, 0.1, 0.7); segments {0,1} and {3,3}.
  const probs = f64(2, 4, [0.5, 0.3, 0.2, 0, 0.1, 0.1, 0.1, 0.7]);
  const segments = [
    [0, 1],
    [3, 3],
  ];

  it('averages log(ε + segment mass) over all steps, counting every occurrence of an id (as parallelism.py)', () => {
    // masses 0.8 and 0.7 + 0.7 = 1.4 (index_select keeps the repeat): (ln 0.8 + ln 1.4)/2 = 0.05666434.
    expect(pathScore(probs, segments, Int32Array.from([0, 1]), { eps: 0 })).toBeAllclose(0.05666434265350159, { atol: 1e-15 });
    // An unassigned step adds log ε and still counts in the mean: (ln 0.8 + ln 1e-12)/2 = -13.92708233.
    expect(pathScore(probs, segments, Int32Array.from([0, -1]))).toBeAllclose(-13.927082333621378, { atol: 1e-13 });
  });

  it('restricts the mass to the top-k tokens of p_t', () => {
    // top-1 of p0 = {0}: mass 0.5; top-1 of p1 = {3}: mass 0.7 twice -> (ln 0.5 + ln 1.4)/2 = -0.17833747.
    expect(pathScore(probs, segments, Int32Array.from([0, 1]), { eps: 0, topk: 1 })).toBeAllclose(-0.1783374719693662, { atol: 1e-15 });
  });
});

describe('nEff / pathPosterior', () => {
  it('is the number of paths when scores are equal', () => {
    expect(nEff([-1.3, -1.3], 1, 0)).toBeAllclose(2, { atol: 1e-15 });
    expect(nEff([0, 0, 0], 1, 0)).toBeAllclose(3, { atol: 1e-15 });
    // The script's entropy uses log(π + ε), ε = 1e-12: exp(−ln(0.5 + 1e-12)) = 1/(0.5 + 1e-12).
    expect(nEff([-1.3, -1.3])).toBeAllclose(1.999999999996, { atol: 1e-15 });
  });

  it('is ~1 for one dominant path', () => {
    // π = (1, e^-50)/(1 + e^-50): H ≈ 51·e^-50 ≈ 1e-20, N_eff = 1 to double precision.
    expect(nEff([0, -50], 1, 0)).toBeAllclose(1, { atol: 1e-15 });
  });

  it('matches a hand-computed posterior perplexity, with the temperature dividing the scores', () => {
    // s = (0, ln 3): π = (1/4, 3/4); H = 0.25 ln 4 + 0.75 ln(4/3) = 0.34657359 + 0.21576155 = 0.56233514;
    // N_eff = e^0.56233514 = 1.75476535. Temperature 2 on (0, 2 ln 3) gives the same π.
    expect(pathPosterior([0, Math.log(3)])).toBeAllclose([0.25, 0.75], { atol: 1e-15 });
    expect(nEff([0, Math.log(3)], 1, 0)).toBeAllclose(1.7547653506033232, { atol: 1e-14 });
    expect(nEff([0, 2 * Math.log(3)], 2, 0)).toBeAllclose(1.7547653506033232, { atol: 1e-14 });
    expect(() => nEff([])).toThrow(/at least one path/);
  });
});

describe('parallelism', () => {
  // T = 2 generated latents z = e0, e1 with p0 = (0.7, 0.1, 0.1, 0.1), p1 = (0.1, 0.7, 0.1, 0.1).
  const latents = f64(2, 2, [1, 0, 0, 1]);
  const probs = f64(2, 4, [0.7, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1]);
  // Path A: tokens 0 1, ref latents e0, e1 -> spans {0}, {1}; z0 -> span 0, z1 -> span 1; s = ln 0.7.
  const A = { tokenIds: [0, 1], refLatents: f64(2, 2, [1, 0, 0, 1]) };
  // Path B: tokens 1 0, ref latents e1, e0 -> spans {1}, {0}; greedy swaps: z0 -> span 1 = {0}, z1 -> span 0 = {1};
  // s = ln 0.7.
  const B = { tokenIds: [1, 0], refLatents: f64(2, 2, [0, 1, 1, 0]) };
  // Path C: tokens 2 3 2 with 3 ref latents: T' = min(2,3) = 2, boundaries 0, ⌊3/2⌋ = 1, 3 -> spans {2}, {3,2};
  // the first two ref latents e0, e1 pair z0 -> {2} (mass 0.1), z1 -> {3,2} (mass 0.2); s = (ln 0.1 + ln 0.2)/2.
  const C = { tokenIds: [2, 3, 2], refLatents: f64(3, 2, [1, 0, 0, 1, 1, 1]) };

  it('gives N_eff = 2 for two equally consistent paths', () => {
    const r = parallelism({ latents, probs, paths: [A, B] }, { rng: Rng.fromSeed(1), eps: 0 });
    expect(r.scores).toBeAllclose([Math.log(0.7), Math.log(0.7)], { atol: 1e-15 });
    expect(r.nEff).toBeAllclose(2, { atol: 1e-14 });
  });

  it("uses only the first T' = min(T, R) latents and counts a repeated id per occurrence", () => {
    // Path D: tokens 3 3 with one reference latent: T' = 1, span {3,3} paired with z0 only;
    // s = ln(p0[3] + p0[3]) = ln 0.2 (a set would give ln 0.1, and z1 would add nothing or log ε).
    const D = { tokenIds: [3, 3], refLatents: f64(1, 2, [1, 0]) };
    const r = parallelism({ latents, probs, paths: [A, D] }, { rng: Rng.fromSeed(1), eps: 0 });
    expect(r.scores).toBeAllclose([Math.log(0.7), Math.log(0.2)], { atol: 1e-15 });
    // π = (0.7, 0.2)/0.9: N_eff = exp(−(7/9) ln(7/9) − (2/9) ln(2/9)) = 1.69926…
    const pi = [7 / 9, 2 / 9];
    expect(r.nEff).toBeAllclose(Math.exp(-pi.reduce((h, x) => h + x * Math.log(x), 0)), { atol: 1e-14 });
  });

  it('renormalises each probability row by its sum and rejects rows that are not distributions', () => {
    const scaled = f64(2, 4, [0.7, 0.1, 0.1, 0.1].map((x) => x * 1.01).concat([0.1, 0.7, 0.1, 0.1]));
    const r = parallelism({ latents, probs: scaled, paths: [A, B] }, { rng: Rng.fromSeed(1), eps: 0 });
    expect(r.scores).toBeAllclose([Math.log(0.7), Math.log(0.7)], { atol: 1e-15 });
    expect(r.nEff).toBeAllclose(2, { atol: 1e-14 });
    const half = f64(2, 4, [0.35, 0.05, 0.05, 0.05, 0.1, 0.7, 0.1, 0.1]);
    expect(() => parallelism({ latents, probs: half, paths: [A] }, { rng: Rng.fromSeed(1) })).toThrow(/probs row 0 sums to 0.4999.*expected a distribution/);
  });

  it('gives N_eff = 2 for two identical paths and ~1 for one dominant path', () => {
    expect(parallelism({ latents, probs, paths: [A, A] }, { rng: Rng.fromSeed(1) }).nEff).toBeAllclose(1.999999999996, { atol: 1e-14 });
    // One-hot p0 = e0, p1 = e1: A has mass 1 at both steps, s_A = ln(1 + ε); path E (tokens 2 3) has
    // mass 0, s_E = ln ε with ε = 1e-12. π = softmax(s); N_eff = exp(−Σ π ln(π + ε)) = 1.000000000026938.
    const oneHot = f64(2, 4, [1, 0, 0, 0, 0, 1, 0, 0]);
    const E = { tokenIds: [2, 3], refLatents: f64(2, 2, [1, 0, 0, 1]) };
    const r = parallelism({ latents, probs: oneHot, paths: [A, E] }, { rng: Rng.fromSeed(1) });
    expect(r.scores).toBeAllclose([1.000088900581841e-12, -27.631021115928547], { atol: 1e-14 });
    expect(r.nEff).toBeAllclose(1.000000000026938, { atol: 1e-14 });
  });

  it('matches the hand-worked N_eff with re-segmentation', () => {
    // exp(s) = 0.7 and √0.02 = 0.14142136: π = (0.83192564, 0.16807436),
    // H = 0.83192564·0.18401 + 0.16807436·1.78336 = 0.45282; N_eff = e^0.45282 = 1.57274057.
    const r = parallelism({ latents, probs, paths: [A, C] }, { rng: Rng.fromSeed(1), eps: 0 });
    expect(r.scores).toBeAllclose([Math.log(0.7), -1.9560115027140728], { atol: 1e-15 });
    expect(r.posterior).toBeAllclose([0.8319256396465604, 0.1680743603534397], { atol: 1e-14 });
    expect(r.nEff).toBeAllclose(1.5727405748803378, { atol: 1e-13 });
    expect(r.ratio).toBeAllclose(r.nEff / r.nEffNaive, { atol: 0 });
  });

  it('averages the naive N_eff over random no-repeat assignments', () => {
    // For A and B each trial assigns every path the identity (s = ln 0.7) or the swap (s = ln 0.1).
    // Equal choices give N_eff = 2; mixed give π = (7/8, 1/8), N_eff = exp(H) = 1.45756926. So
    // nEffNaive = 2f + 1.45756926(1 - f) for f = (#equal trials)/64, a multiple of 1/64.
    const r = parallelism({ latents, probs, paths: [A, B] }, { rng: Rng.fromSeed(7), eps: 0 });
    const f = (r.nEffNaive - 1.4575692649810903) / (2 - 1.4575692649810903);
    expect(f * 64).toBeAllclose(Math.round(f * 64), { atol: 1e-9 });
    expect(f).toBeGreaterThan(0.2); // 64 fair coin flips: P(f <= 0.2) < 1e-6
    expect(f).toBeLessThan(0.8);
    const again = parallelism({ latents, probs, paths: [A, B] }, { rng: Rng.fromSeed(7), eps: 0 });
    expect(again.nEffNaive).toBe(r.nEffNaive);
  });

  it('checks the inputs', () => {
    const rng = Rng.fromSeed(1);
    expect(() => parallelism({ latents, probs: f64(3, 4, new Array(12).fill(0.25)), paths: [A] }, { rng })).toThrow(
      /latents has shape \[2,2\] and probs has shape \[3,4\]/,
    );
    expect(() => parallelism({ latents, probs, paths: [{ tokenIds: [0], refLatents: f64(1, 3, [1, 2, 3]) }] }, { rng })).toThrow(
      /paths\[0\]\.refLatents has shape \[1,3\] but latents has shape \[2,2\]/,
    );
    expect(() => parallelism({ latents, probs, paths: [{ tokenIds: [9], refLatents: f64(1, 2, [1, 0]) }] }, { rng })).toThrow(
      /segment 0 holds 9, not a token id in \[0, V=4\)/,
    );
  });
});
