// Table 1 over training seeds: each (row, dataset) cell is first averaged over its sampling seeds inside
// one training seed's eval run, then the per-training-seed means give mean ± sample std over training
// seeds, so the spread shows training noise (data order, init, LoRA init), not only sampling noise.
// A cell that any training seed built on a collapsed phase carries that count.
import { type EvalSummary, type Stat, formatStd, formatValue, meanStd } from '@latent-sft/eval';
import { markdownText } from './text.js';

/** One training seed's eval summary of one row. */
export interface SeedRun {
  /** The plan's row label (without the training-seed suffix). */
  method: string;
  trainingSeed: number;
  summary: EvalSummary;
  /** The run's model was built on a collapsed phase. */
  collapsed: boolean;
}

export interface SeedCell {
  dataset: string;
  /** Per training seed (in the order given): mean Pass@1 over its sampling seeds, in percent. */
  perSeed: Array<{ trainingSeed: number; pass1: number; lenient: number | null; latents: number }>;
  /** Over training seeds, percent. */
  pass1: Stat;
  /** Over training seeds, percent; null when a run lacks the lenient rule. */
  lenient: Stat | null;
  latents: Stat;
  collapsed: number;
}

export interface SeedRow {
  method: string;
  cells: SeedCell[];
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Rows (first-appearance order of methods) × datasets (first-appearance order) over training seeds. */
export function trainingSeedTable(runs: readonly SeedRun[]): SeedRow[] {
  const methods = [...new Set(runs.map((r) => r.method))];
  return methods.map((method) => {
    const mine = runs.filter((r) => r.method === method);
    const datasets = [...new Set(mine.flatMap((r) => r.summary.runs.map((x) => x.dataset)))];
    const cells = datasets.map((dataset): SeedCell => {
      const perSeed: SeedCell['perSeed'] = [];
      let collapsed = 0;
      for (const r of mine) {
        const rs = r.summary.runs.filter((x) => x.dataset === dataset);
        if (rs.length === 0) continue;
        const lenient = rs.every((x) => x.lenientAccuracy !== undefined) ? 100 * mean(rs.map((x) => x.lenientAccuracy as number)) : null;
        perSeed.push({ trainingSeed: r.trainingSeed, pass1: 100 * mean(rs.map((x) => x.accuracy)), lenient, latents: mean(rs.map((x) => x.latents.mean)) });
        if (r.collapsed) collapsed++;
      }
      const len = perSeed.map((p) => p.lenient);
      return {
        dataset,
        perSeed,
        pass1: meanStd(perSeed.map((p) => p.pass1)),
        lenient: len.every((v): v is number => v !== null) ? meanStd(len) : null,
        latents: meanStd(perSeed.map((p) => p.latents)),
        collapsed,
      };
    });
    return { method, cells };
  });
}

const stat = (s: Stat): string => (s.std === null ? formatValue(s.mean) : `${formatValue(s.mean)}±${formatStd(s.std)}`);

/** The Markdown table of trainingSeedTable: one line per row and dataset. */
export function renderTrainingSeedTable(rows: readonly SeedRow[]): string {
  const out = [
    'Pass@1 (official rule) and lenient Pass@1 (%), #L: mean ± sample std over training seeds of the per-training-seed means over sampling seeds.',
    '',
    '| method | dataset | training seeds | Pass@1 | lenient | #L | per training seed (Pass@1) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    for (const c of r.cells) {
      const flag = c.collapsed > 0 ? ` ⚠ COLLAPSED in ${c.collapsed}/${c.perSeed.length} training seeds` : '';
      const per = c.perSeed.map((p) => `${p.trainingSeed}: ${formatValue(p.pass1)}`).join(', ');
      out.push(
        `| ${markdownText(r.method)}${flag} | ${markdownText(c.dataset)} | ${c.perSeed.length} | ${stat(c.pass1)} | ${c.lenient === null ? '–' : stat(c.lenient)} | ${stat(c.latents)} | ${per} |`,
      );
    }
  }
  return out.join('\n');
}
