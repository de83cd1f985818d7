// Effective global parallelism N_eff (spec §6): how many reference reasoning paths a generated latent
// chain is consistent with at once, computed as the official `parallelism.py@b392390` computes it
// (`compute_sample_parallelism_score`). Leaves out producing the inputs (encoder reference latents,
// model generation) and the unrecovered "Top-2 Score".
//
// Shape legend: T = generated latents, d = hidden size, V = vocabulary, R = reference latents of one
// path, T' = min(T, R) aligned steps, M = paths.
//
// Per path m (token ids of length L, reference latents [R,d]):
//   1. T' = min(T, R): only the FIRST T' generated latents and distributions take part; span
//      t = ids[⌊t·L/T'⌋, ⌊(t+1)·L/T'⌋) pairs with reference latent t (t < T').
//   2. D[t,j] = distance(z_t, ref_j) over [T',T'], cosine distance 1 − cos by default.
//   3. Greedy unique assignment: steps t = 0..T'-1 in order each take the closest unused segment
//      (ties → lower index), so every step gets one.
//   4. s_m = (1/T') Σ_t log(ε + Σ_{i} p_t[span_i]) — the sum runs over the span's ids as a LIST, so a
//      repeated id counts once per occurrence (torch index_select); with `topk`, only ids in the top-k of
//      p_t count (each occurrence). A step with no segment or an empty span adds log ε. ε = 1e-12.
// p_t rows are renormalised by their sum (the script's ensure_probs for probability inputs).
// π = softmax(s / T_temp) in fp64; N_eff = exp(−Σ π_m log(π_m + ε)). N_eff_naive: per path and trial
// (path-major, as the script loops), assignment t → perm[t] of a uniform random permutation of the T'
// segments; N_eff over the paths' naive scores of each trial, averaged over trials. ratio = N_eff / N_eff_naive.

import type { Rng } from '@latent-sft/core';
import { checkMatrix, shapeOf, type Matrix } from './matrix.js';
import { topKIndices } from './superposition.js';

/** Span boundaries b_t = ⌊t·L/parts⌋ for t = 0..parts: Int32Array [parts+1], b_0 = 0, b_parts = L. */
export function segmentBoundaries(L: number, parts: number): Int32Array {
  if (!Number.isInteger(L) || L < 0) throw new Error(`segmentBoundaries: L must be a non-negative integer, got ${L}`);
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`segmentBoundaries: parts must be a positive integer, got ${parts}`);
  return Int32Array.from({ length: parts + 1 }, (_, t) => Math.floor((t * L) / parts));
}

/** Which distance distanceMatrix computes (cosine is the script default). */
export type DistanceMetric = 'cosine' | 'euclidean';

/**
 * Pairwise distances a [T,d] × b [R,d] → [T,R]. Cosine distance is 1 − a·b/(|a||b|); a zero vector
 * has cosine 0 to everything (distance 1). Euclidean is |a − b|₂.
 */
export function distanceMatrix(a: Matrix, b: Matrix, metric: DistanceMetric = 'cosine'): Matrix<Float64Array> {
  const fn = 'distanceMatrix';
  checkMatrix(fn, 'a', a);
  checkMatrix(fn, 'b', b);
  if (a.cols !== b.cols) throw new Error(`${fn}: a has shape ${shapeOf(a)} but b has shape ${shapeOf(b)} (d must agree)`);
  const T = a.rows,
    R = b.rows,
    d = a.cols;
  const out = new Float64Array(T * R);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < R; j++) {
      let dot = 0,
        na = 0,
        nb = 0,
        sq = 0;
      for (let c = 0; c < d; c++) {
        const x = a.data[t * d + c] as number,
          y = b.data[j * d + c] as number;
        dot += x * y;
        na += x * x;
        nb += y * y;
        sq += (x - y) * (x - y);
      }
      out[t * R + j] = metric === 'euclidean' ? Math.sqrt(sq) : 1 - (na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0);
    }
  }
  return { data: out, rows: T, cols: R };
}

/** Greedy unique assignment over dist [T,R]: step t takes the closest unused column; -1 when none is left. */
export function greedyAssignment(dist: Matrix): Int32Array {
  checkMatrix('greedyAssignment', 'dist', dist);
  const { rows: T, cols: R } = dist;
  const used = new Uint8Array(R);
  const out = new Int32Array(T).fill(-1);
  for (let t = 0; t < T; t++) {
    let best = -1;
    for (let j = 0; j < R; j++) {
      if (!used[j] && (best < 0 || (dist.data[t * R + j] as number) < (dist.data[t * R + best] as number))) best = j;
    }
    if (best >= 0) {
      used[best] = 1;
      out[t] = best;
    }
  }
  return out;
}

/** ε of the script (inside every log and in the entropy): 1e-12. */
export const PARALLELISM_EPS = 1e-12;

/** Options of pathScore and parallelism. */
export interface PathScoreOptions {
  /** ε inside the logs (default PARALLELISM_EPS = 1e-12, the script's). */
  eps?: number;
  /** Count only tokens within the top-`topk` of p_t (spec: 100); null/undefined = all tokens. */
  topk?: number | null;
}

/** A path scorer over fixed distributions probs [T,V]; the top-`topk` sets are computed once. */
function makeScorer(fn: string, probs: Matrix, opts: PathScoreOptions): (segments: readonly ArrayLike<number>[], assignment: Int32Array) => number {
  checkMatrix(fn, 'probs', probs);
  const { rows: T, cols: V } = probs;
  const eps = opts.eps ?? PARALLELISM_EPS;
  if (!(eps >= 0)) throw new Error(`${fn}: eps must be >= 0, got ${eps}`);
  const top = opts.topk != null && opts.topk < V ? topKIndices(probs, opts.topk) : null;
  const allowed = top && Array.from({ length: T }, (_, t) => new Set(top.data.subarray(t * top.cols, (t + 1) * top.cols)));
  return (segments, assignment) => {
    if (assignment.length !== T) throw new Error(`${fn}: assignment has shape [${assignment.length}] but probs has shape ${shapeOf(probs)}`);
    let total = 0;
    for (let t = 0; t < T; t++) {
      const s = assignment[t] as number;
      if (s >= segments.length) throw new Error(`${fn}: assignment[${t}] = ${s} but there are ${segments.length} segments`);
      const seg = s < 0 ? [] : (segments[s] as ArrayLike<number>);
      let mass = 0;
      for (let j = 0; j < seg.length; j++) {
        const v = seg[j] as number;
        if (!Number.isInteger(v) || v < 0 || v >= V) throw new Error(`${fn}: segment ${s} holds ${v}, not a token id in [0, V=${V})`);
        if (!allowed || allowed[t]?.has(v)) mass += probs.data[t * V + v] as number; // every occurrence counts
      }
      total += Math.log(eps + mass); // no segment or an empty span: log ε
    }
    return total / Math.max(1, T);
  };
}

/**
 * s = (1/T) Σ_t log(ε + Σ_{i} p_t[segments[assignment[t]][i]]): every occurrence of an id counts, a step
 * with assignment -1 or an empty segment adds log ε. probs [T,V] (p_t, dense), segments = token ids of
 * each reference segment, assignment [T] (-1 = none).
 */
export function pathScore(probs: Matrix, segments: readonly ArrayLike<number>[], assignment: Int32Array, opts: PathScoreOptions = {}): number {
  return makeScorer('pathScore', probs, opts)(segments, assignment);
}

/** Posterior over paths π = softmax(s / temperature), in fp64. */
export function pathPosterior(scores: ArrayLike<number>, temperature = 1): Float64Array {
  if (scores.length === 0) throw new Error('pathPosterior: needs at least one path score');
  if (!(temperature > 0)) throw new Error(`pathPosterior: temperature must be > 0, got ${temperature}`);
  const z = Float64Array.from(scores, (s) => s / temperature);
  if (z.some((v) => !Number.isFinite(v))) throw new Error(`pathPosterior: scores must be finite, got [${Array.from(scores)}]`);
  const max = Math.max(...z);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += z[i] = Math.exp((z[i] as number) - max);
  return z.map((v) => v / sum);
}

/** N_eff = exp(−Σ π_m log(π_m + ε)) with π = softmax(s / temperature), as the script: ≈ 1 … M. */
export function nEff(pathScores: ArrayLike<number>, temperature = 1, eps = PARALLELISM_EPS): number {
  const pi = pathPosterior(pathScores, temperature);
  let h = 0;
  for (const p of pi) h -= p * Math.log(p + eps);
  return Math.exp(h);
}

/** One reference path: its CoT token ids and its encoder reference latents [R,d]. */
export interface ReferencePath {
  tokenIds: ArrayLike<number>;
  refLatents: Matrix;
}

/** Input of parallelism for one problem. */
export interface ParallelismInput {
  /** Generated latents z_1..z_T, [T,d]. */
  latents: Matrix;
  /** Their distributions p_1..p_T over the vocabulary, dense [T,V]. */
  probs: Matrix;
  /** M >= 1 reference paths (the analysis set has M >= 2 distinct ones). */
  paths: readonly ReferencePath[];
}

/** Options of parallelism. */
export interface ParallelismOptions extends PathScoreOptions {
  /** Source of the random assignments of N_eff_naive (draws trials × M permutations, trial-major). */
  rng: Rng;
  /** Posterior temperature T_temp (default 1). */
  temperature?: number;
  /** Random trials of the naive baseline (default 64). */
  trials?: number;
  /** Distance used for the assignment (default cosine). */
  metric?: DistanceMetric;
}

/** Result of parallelism. */
export interface ParallelismResult {
  /** s_m per path, [M]. */
  scores: Float64Array;
  /** π per path, [M]. */
  posterior: Float64Array;
  nEff: number;
  /** Mean N_eff over random no-repeat assignments. */
  nEffNaive: number;
  /** nEff / nEffNaive. */
  ratio: number;
}

/** The full N_eff procedure for one problem (see the file header for the steps). */
export function parallelism(input: ParallelismInput, opts: ParallelismOptions): ParallelismResult {
  const fn = 'parallelism';
  const { latents, probs, paths } = input;
  checkMatrix(fn, 'latents', latents);
  checkMatrix(fn, 'probs', probs);
  if (latents.rows !== probs.rows || latents.rows === 0) {
    throw new Error(`${fn}: latents has shape ${shapeOf(latents)} and probs has shape ${shapeOf(probs)} (T must agree and be >= 1)`);
  }
  if (paths.length === 0) throw new Error(`${fn}: needs at least one reference path`);
  const trials = opts.trials ?? 64;
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`${fn}: trials must be a positive integer, got ${trials}`);
  const T = latents.rows,
    V = probs.cols;
  const eps = opts.eps ?? PARALLELISM_EPS;
  // The script's ensure_probs: each row divided by its sum (inputs must be distributions).
  const p = new Float64Array(probs.data.length);
  for (let t = 0; t < T; t++) {
    let sum = 0;
    for (let v = 0; v < V; v++) {
      const x = probs.data[t * V + v] as number;
      if (!(x >= 0) || !Number.isFinite(x)) throw new Error(`${fn}: probs[${t},${v}] = ${x}, expected a probability`);
      sum += x;
    }
    if (Math.abs(sum - 1) >= 2e-2) throw new Error(`${fn}: probs row ${t} sums to ${sum}, expected a distribution (sum 1)`);
    for (let v = 0; v < V; v++) p[t * V + v] = (probs.data[t * V + v] as number) / sum;
  }
  const head = (m: Matrix, rows: number): Matrix => ({ data: m.data.subarray(0, rows * m.cols), rows, cols: m.cols });
  const normalized: Matrix = { data: p, rows: T, cols: V };
  const prepared = paths.map((path, m) => {
    const ref = path.refLatents;
    checkMatrix(fn, `paths[${m}].refLatents`, ref);
    if (ref.rows === 0 || ref.cols !== latents.cols) {
      throw new Error(`${fn}: paths[${m}].refLatents has shape ${shapeOf(ref)} but latents has shape ${shapeOf(latents)}`);
    }
    const parts = Math.min(T, ref.rows);
    const b = segmentBoundaries(path.tokenIds.length, parts);
    const segments = Array.from({ length: parts }, (_, t) =>
      Array.from({ length: (b[t + 1] as number) - (b[t] as number) }, (_, j) => path.tokenIds[(b[t] as number) + j] as number),
    );
    const assignment = greedyAssignment(distanceMatrix(head(latents, parts), head(ref, parts), opts.metric ?? 'cosine'));
    return { parts, segments, assignment, score: makeScorer(fn, head(normalized, parts), opts) };
  });
  const scores = Float64Array.from(prepared, (q) => q.score(q.segments, q.assignment));
  const temperature = opts.temperature ?? 1;
  const posterior = pathPosterior(scores, temperature);
  const value = nEff(scores, temperature, eps);

  // Random no-repeat assignments, drawn path-major (for each path, its `trials` permutations) as the script.
  const naive = Array.from({ length: trials }, () => new Float64Array(prepared.length));
  prepared.forEach((q, m) => {
    for (let trial = 0; trial < trials; trial++) {
      (naive[trial] as Float64Array)[m] = q.score(q.segments, Int32Array.from(opts.rng.permutation(q.parts)));
    }
  });
  const nEffNaive = naive.reduce((sum, s) => sum + nEff(s, temperature, eps), 0) / trials;
  return { scores, posterior, nEff: value, nEffNaive, ratio: value / nEffNaive };
}
