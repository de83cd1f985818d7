// Effective global parallelism N_eff (spec §6, `parallelism.py@b392390`): how many reference
// reasoning paths a generated latent chain is consistent with at once. Parts the spec leaves open
// are INFERRED and listed in README.md: which reference latents pair with the re-segmented spans,
// steps left without a segment, ε, and the order of random draws. Leaves out producing the inputs
// (encoder reference latents, model generation) and the unrecovered "Top-2 Score".
//
// Shape legend: T = generated latents, d = hidden size, V = vocabulary, R = reference latents of one
// path, T' = min(T, R) segments, M = paths.
//
// Per path m (token ids of length L, reference latents [R,d]):
//   1. T' = min(T, R); span t = ids[⌊t·L/T'⌋, ⌊(t+1)·L/T'⌋), paired with reference latent t (t < T').
//   2. D[t,j] = distance(z_t, ref_j), cosine distance 1 − cos by default.
//   3. Greedy unique assignment: steps t = 0..T-1 in order each take the closest unused segment
//      (ties → lower index); steps after all T' segments are used get none.
//   4. s_m = mean over assigned t of log(ε + Σ_{v ∈ set(span)} p_t[v]), optionally only v in top-`topk` of p_t.
// π = softmax(s / T_temp); N_eff = exp(H(π)). N_eff_naive: the same with assignment t → perm[t] for
// a uniformly random permutation of the T' segments, per path and trial, N_eff averaged over trials.

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
  const T = a.rows, R = b.rows, d = a.cols;
  const out = new Float64Array(T * R);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < R; j++) {
      let dot = 0, na = 0, nb = 0, sq = 0;
      for (let c = 0; c < d; c++) {
        const x = a.data[t * d + c] as number, y = b.data[j * d + c] as number;
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

/** Options of pathScore and parallelism. */
export interface PathScoreOptions {
  /** ε inside the log (default 1e-10; inferred, the script's value was not recovered). */
  eps?: number;
  /** Count only tokens within the top-`topk` of p_t (spec: 100); null/undefined = all tokens. */
  topk?: number | null;
}

/** A path scorer over fixed distributions probs [T,V]; the top-`topk` sets are computed once. */
function makeScorer(fn: string, probs: Matrix, opts: PathScoreOptions): (segments: readonly ArrayLike<number>[], assignment: Int32Array) => number {
  checkMatrix(fn, 'probs', probs);
  const { rows: T, cols: V } = probs;
  const eps = opts.eps ?? 1e-10;
  if (!(eps >= 0)) throw new Error(`${fn}: eps must be >= 0, got ${eps}`);
  const top = opts.topk != null && opts.topk < V ? topKIndices(probs, opts.topk) : null;
  const allowed = top && Array.from({ length: T }, (_, t) => new Set(top.data.subarray(t * top.cols, (t + 1) * top.cols)));
  return (segments, assignment) => {
    if (assignment.length !== T) throw new Error(`${fn}: assignment has shape [${assignment.length}] but probs has shape ${shapeOf(probs)}`);
    let total = 0, count = 0;
    for (let t = 0; t < T; t++) {
      const s = assignment[t] as number;
      if (s < 0) continue;
      const seg = segments[s];
      if (seg === undefined) throw new Error(`${fn}: assignment[${t}] = ${s} but there are ${segments.length} segments`);
      const ids = new Set<number>();
      for (let j = 0; j < seg.length; j++) {
        const v = seg[j] as number;
        if (!Number.isInteger(v) || v < 0 || v >= V) throw new Error(`${fn}: segment ${s} holds ${v}, not a token id in [0, V=${V})`);
        if (!allowed || allowed[t]?.has(v)) ids.add(v);
      }
      let mass = 0;
      for (const v of ids) mass += probs.data[t * V + v] as number;
      total += Math.log(eps + mass);
      count += 1;
    }
    if (count === 0) throw new Error(`${fn}: no step is assigned a segment (probs ${shapeOf(probs)})`);
    return total / count;
  };
}

/**
 * s = mean over steps t with assignment[t] >= 0 of log(ε + Σ_{v ∈ set(segments[assignment[t]])} p_t[v]).
 * probs [T,V] (p_t, dense), segments = token ids of each reference segment, assignment [T] (-1 = none).
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

/** N_eff = exp(H(π)) = exp(−Σ π_m log π_m) with π = softmax(s / temperature): 1 ≤ N_eff ≤ M. */
export function nEff(pathScores: ArrayLike<number>, temperature = 1): number {
  const pi = pathPosterior(pathScores, temperature);
  let h = 0;
  for (const p of pi) if (p > 0) h -= p * Math.log(p);
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
  const T = latents.rows;
  const prepared = paths.map((path, m) => {
    const ref = path.refLatents;
    checkMatrix(fn, `paths[${m}].refLatents`, ref);
    if (ref.rows === 0 || ref.cols !== latents.cols) {
      throw new Error(`${fn}: paths[${m}].refLatents has shape ${shapeOf(ref)} but latents has shape ${shapeOf(latents)}`);
    }
    const parts = Math.min(T, ref.rows);
    const b = segmentBoundaries(path.tokenIds.length, parts);
    const segments = Array.from({ length: parts }, (_, t) =>
      Array.from({ length: (b[t + 1] as number) - (b[t] as number) }, (_, j) => path.tokenIds[(b[t] as number) + j] as number));
    const firstRefs: Matrix = { data: ref.data.subarray(0, parts * ref.cols), rows: parts, cols: ref.cols };
    const assignment = greedyAssignment(distanceMatrix(latents, firstRefs, opts.metric ?? 'cosine'));
    return { parts, segments, assignment };
  });
  const score = makeScorer(fn, probs, opts);
  const scores = Float64Array.from(prepared, (p) => score(p.segments, p.assignment));
  const temperature = opts.temperature ?? 1;
  const posterior = pathPosterior(scores, temperature);
  const value = nEff(scores, temperature);

  let naiveSum = 0;
  for (let trial = 0; trial < trials; trial++) {
    const s = prepared.map((p) => {
      const perm = opts.rng.permutation(p.parts);
      const assignment = Int32Array.from({ length: T }, (_, t) => (t < p.parts ? (perm[t] as number) : -1));
      return score(p.segments, assignment);
    });
    naiveSum += nEff(s, temperature);
  }
  const nEffNaive = naiveSum / trials;
  return { scores, posterior, nEff: value, nEffNaive, ratio: value / nEffNaive };
}
