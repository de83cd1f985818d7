// Table 1 over training seeds: per-training-seed means over sampling seeds, then mean ± sample std over
// training seeds, against values worked by hand; the lenient column only where every run has it; the
// collapse count; the rendered line.
import { type EvalSummary, type RunStats, buildSummary } from '@latent-sft/eval';
import { describe, expect, it } from 'vitest';
import { renderTrainingSeedTable, trainingSeedTable } from './seeds.js';

/** Exact decimal arithmetic in float64: a few ulps. */
const EXACT = { rtol: 1e-12, atol: 1e-12 };

function run(dataset: string, seed: number, accuracy: number, latents: number, lenient?: number): RunStats {
  return {
    method: 'm',
    dataset,
    seed,
    scored: 100,
    correct: Math.round(accuracy * 100),
    accuracy,
    ...(lenient !== undefined ? { lenientAccuracy: lenient } : {}),
    latents: { mean: latents, std: null, n: 100 },
    truncated: 0,
    unterminated: 0,
    ecr: {},
    latentEntropy: null,
    generateMs: 0,
  };
}

function summary(runs: RunStats[]): EvalSummary {
  return buildSummary(
    {
      method: 'm',
      mode: 'latent',
      model: '/x',
      datasets: [...new Set(runs.map((r) => r.dataset))],
      seeds: [...new Set(runs.map((r) => r.seed))],
      sampling: { kind: 'top-p', temperature: 0.6, topP: 0.95 },
      extraction: 'official',
      notes: [],
    },
    runs,
  );
}

describe('trainingSeedTable', () => {
  // Training seeds 1, 2, 3 of one row, two sampling seeds each: Pass@1 means 60, 80, 80 (%).
  const rows = trainingSeedTable([
    { method: 'Latent-SFT(4)', trainingSeed: 1, collapsed: false, summary: summary([run('mult', 1, 0.5, 10, 0.55), run('mult', 2, 0.7, 12, 0.75)]) },
    { method: 'Latent-SFT(4)', trainingSeed: 2, collapsed: true, summary: summary([run('mult', 1, 0.8, 9, 0.8), run('mult', 2, 0.8, 9, 0.9)]) },
    { method: 'Latent-SFT(4)', trainingSeed: 3, collapsed: false, summary: summary([run('mult', 1, 0.9, 8, 0.9), run('mult', 2, 0.7, 8)]) },
    { method: 'CoT-SFT', trainingSeed: 1, collapsed: false, summary: summary([run('mult', 1, 1, 40, 1)]) },
  ]);

  it('averages over sampling seeds inside each training seed, then over training seeds (sample std)', () => {
    expect(rows.map((r) => r.method)).toEqual(['Latent-SFT(4)', 'CoT-SFT']);
    const c = rows[0]!.cells[0]!;
    expect(c.dataset).toBe('mult');
    expect(c.perSeed.map((p) => p.trainingSeed)).toEqual([1, 2, 3]);
    expect(c.perSeed.map((p) => p.pass1)).toBeAllclose([60, 80, 80], EXACT);
    expect(c.perSeed.map((p) => p.latents)).toBeAllclose([11, 9, 8], EXACT);
    // mean 220/3; deviations -40/3, 20/3, 20/3 → sum of squares 2400/9, / (n - 1) = 1200/9
    expect([c.pass1.mean, c.pass1.std as number]).toBeAllclose([220 / 3, Math.sqrt(1200 / 9)], EXACT);
    expect(c.pass1.n).toBe(3);
    // #L 11, 9, 8: mean 28/3, squares (5/3)² + (1/3)² + (4/3)² = 42/9, / 2
    expect([c.latents.mean, c.latents.std as number]).toBeAllclose([28 / 3, Math.sqrt(21 / 9)], EXACT);
    expect(c.collapsed).toBe(1);
  });

  it('gives no lenient statistic when a run lacks it, and a single training seed has no std', () => {
    const lenient = rows[0]!.cells[0]!.perSeed.map((p) => p.lenient);
    expect(lenient[2]).toBeNull();
    expect(lenient.slice(0, 2) as number[]).toBeAllclose([65, 85], EXACT);
    expect(rows[0]!.cells[0]!.lenient).toBeNull();
    expect(rows[1]!.cells[0]!.pass1).toEqual({ mean: 100, std: null, n: 1 });
    expect(rows[1]!.cells[0]!.lenient).toEqual({ mean: 100, std: null, n: 1 });
  });

  it('renders one line per row and dataset, collapsed seeds flagged', () => {
    const md = renderTrainingSeedTable(rows).split('\n');
    expect(md).toContain('| Latent-SFT(4) ⚠ COLLAPSED in 1/3 training seeds | mult | 3 | 73.3±11.5 | – | 9.33±1.5 | 1: 60.0, 2: 80.0, 3: 80.0 |');
    expect(md).toContain('| CoT-SFT | mult | 1 | 100 | 100 | 40.0 | 1: 100 |');
  });
});
