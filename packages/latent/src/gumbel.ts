// Gumbel perturbation of stored top-k teacher distributions (spec §4.3, HEAD / paper v2): fresh
// noise on every read, so each epoch sees a different p~. Leaves out the inference-time variant's
// nucleus masking and "one-sided" noise (spec §5.4); pass `clamp: null` for HF inference noise (§11.9).
//
// Shape legend: m = latents, k = stored entries per latent.
// Reference: `Stage2Dataset.apply_gumbel_noise` (src/stage2/data.py@HEAD):
//   g  = -log(Exponential(1))                      standard Gumbel, one per stored entry
//   g  = clamp(noise_scale * g, -1.5, 3.0)
//   p~ = softmax((log(p + 1e-10) + g) / τ)         over the k stored entries of each latent
//   if, for ANY latent, indices[argmax p~] == latent-end id: redraw the whole sample (up to 100
//   attempts in all), else keep the last draw and report it.

import type { Rng } from '@latent-sft/core';
import { checkProbabilities, checkSameShape, type Matrix } from './matrix.js';

/** Options of gumbelPerturb. */
export interface GumbelOptions {
  /** Source of the noise; draws m·k Gumbel samples per attempt, row-major. */
  rng: Rng;
  /** noise_scale, multiplies g before the clamp (default 1; 0 returns the input distribution). */
  scale?: number;
  /** gumbel_temperature τ > 0 (default 1). */
  temperature?: number;
  /** Clamp bounds for scale·g (default [-1.5, 3]); null disables the clamp. */
  clamp?: readonly [number, number] | null;
  /** First id of `</think>`; when given, draws whose argmax is this id for any latent are redrawn. */
  latentEndId?: number;
  /** Total draws allowed, the first included (default 100, as the reference loop). */
  maxAttempts?: number;
}

/** Result of gumbelPerturb. */
export interface GumbelResult {
  /** p~ [m,k], in the same slot order as the input indices. */
  probs: Matrix<Float64Array>;
  /** Draws made after the first (0 when the first draw passed the guard). */
  redraws: number;
  /** True when every attempt had the end id as some latent's argmax; probs is then the last draw. */
  guardFailed: boolean;
}

/**
 * Perturbs teacher top-k distributions with clamped Gumbel noise (spec §4.3): probs [m,k] with their
 * vocabulary indices [m,k]. Deterministic given the Rng state; consumes m·k draws per attempt.
 */
export function gumbelPerturb(probs: Matrix, indices: Matrix<Int32Array>, opts: GumbelOptions): GumbelResult {
  const fn = 'gumbelPerturb';
  checkSameShape(fn, ['probs', probs], ['indices', indices]);
  checkProbabilities(fn, 'probs', probs);
  const scale = opts.scale ?? 1;
  const tau = opts.temperature ?? 1;
  const clamp = opts.clamp === undefined ? ([-1.5, 3] as const) : opts.clamp;
  const maxAttempts = opts.maxAttempts ?? 100;
  if (!(scale >= 0 && scale < Infinity)) throw new Error(`${fn}: scale must be finite and >= 0, got ${scale}`);
  if (!(tau > 0 && tau < Infinity)) throw new Error(`${fn}: temperature must be finite and > 0, got ${tau}`);
  if (clamp && !(clamp[0] <= clamp[1])) throw new Error(`${fn}: clamp [${clamp}] must have lo <= hi`);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`${fn}: maxAttempts must be a positive integer, got ${maxAttempts}`);
  if (opts.latentEndId !== undefined && !Number.isInteger(opts.latentEndId)) {
    throw new Error(`${fn}: latentEndId must be an integer id, got ${opts.latentEndId}`);
  }

  const { rows: m, cols: k } = probs;
  const logp = Float64Array.from(probs.data, (p) => Math.log(p + 1e-10));
  const out = new Float64Array(m * k);
  let attempt = 0;
  let hitsEnd = false;
  do {
    attempt += 1;
    hitsEnd = false;
    for (let i = 0; i < m; i++) {
      const off = i * k;
      let max = -Infinity;
      let arg = 0; // first maximal slot, as torch.argmax (softmax preserves the order)
      for (let j = 0; j < k; j++) {
        let g = scale * opts.rng.gumbel();
        if (clamp) g = Math.min(Math.max(g, clamp[0]), clamp[1]);
        const z = ((logp[off + j] as number) + g) / tau;
        out[off + j] = z;
        if (z > max) {
          max = z;
          arg = j;
        }
      }
      let sum = 0;
      for (let j = 0; j < k; j++) {
        const e = Math.exp((out[off + j] as number) - max);
        out[off + j] = e;
        sum += e;
      }
      for (let j = 0; j < k; j++) out[off + j] = (out[off + j] as number) / sum;
      if (k > 0 && indices.data[off + arg] === opts.latentEndId) hitsEnd = true;
    }
  } while (hitsEnd && attempt < maxAttempts);
  return { probs: { data: out, rows: m, cols: k }, redraws: attempt - 1, guardFailed: hitsEnd };
}
