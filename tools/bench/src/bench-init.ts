// Benchmark init shared by the step benchmarks (as forward-1b.ts): normal(0, 0.02) values read at seeded
// offsets from a 4M-entry table drawn once from `rng` (100x faster than drawing every normal, and plenty
// for timing), ones for norms, zeros for LoRA B.
import type { Rng } from '@latent-sft/core';
import type { HostTensor } from '@latent-sft/runtime';

/** A float32 tensor maker; it draws from `rng` (table first, then one offset per 4096 values). */
export function tableFill(rng: Rng): (shape: number[], kind: 'normal' | 'ones' | 'zeros') => HostTensor {
  const table = new Float32Array(1 << 22);
  for (let i = 0; i < table.length; i++) table[i] = 0.02 * rng.normal();
  return (shape, kind) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (kind === 'ones') data.fill(1);
    else if (kind === 'normal')
      for (let off = 0; off < n; off += 4096) {
        const s = rng.int(table.length - 4096);
        data.set(table.subarray(s, s + Math.min(4096, n - off)), off);
      }
    return { dtype: 'float32', dims: shape, data };
  };
}
