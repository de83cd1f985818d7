// Gradient utilities in float64: global-norm clipping as torch.nn.utils.clip_grad_norm_ and the mean
// of micro-batch gradients (gradient accumulation). Pure: inputs are never modified.
import type { Tensors } from './optim.js';

/**
 * Clips by global L2 norm as torch.nn.utils.clip_grad_norm_(norm_type=2): total = ||(||g_i||)_i||,
 * coef = min(1, maxNorm / (total + 1e-6)), every gradient scaled by coef (also when coef is 1).
 */
export function clipByGlobalNorm(grads: Tensors, maxNorm: number): { grads: Record<string, Float64Array>; totalNorm: number; coef: number } {
  if (!(maxNorm > 0)) throw new Error(`maxNorm must be > 0, got ${maxNorm}`);
  let sumSq = 0;
  for (const g of Object.values(grads)) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += (g[i] as number) * (g[i] as number);
    sumSq += s; // = ||g_i||^2; torch stacks the per-tensor norms and takes their norm
  }
  const totalNorm = Math.sqrt(sumSq);
  const coef = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const out: Record<string, Float64Array> = {};
  for (const [name, g] of Object.entries(grads)) out[name] = g.map((x) => x * coef);
  return { grads: out, totalNorm, coef };
}

/** The mean of micro-batch gradients (all with the same names and sizes), as accumulation over k micro-batches of a mean loss. */
export function accumulateGrads(micro: readonly Tensors[]): Record<string, Float64Array> {
  const first = micro[0];
  if (!first) throw new Error('accumulateGrads needs at least one micro-batch');
  const out: Record<string, Float64Array> = {};
  for (const [name, g] of Object.entries(first)) out[name] = new Float64Array(g.length);
  micro.forEach((m, k) => {
    const names = Object.keys(m);
    if (names.length !== Object.keys(first).length) throw new Error(`micro-batch ${k} has gradients [${names}], micro-batch 0 has [${Object.keys(first)}]`);
    for (const [name, g] of Object.entries(m)) {
      const acc = out[name];
      if (!acc || acc.length !== g.length) throw new Error(`micro-batch ${k}: gradient '${name}' does not match micro-batch 0`);
      for (let i = 0; i < g.length; i++) acc[i] = (acc[i] as number) + (g[i] as number);
    }
  });
  for (const acc of Object.values(out)) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) / micro.length;
  return out;
}
