// The paper's Table-1 summary (spec §6–§7): per method, Pass@1 and #L as mean ± sample std over seeds for
// each dataset, then Avg P@1 and Avg #L (means of the per-dataset means) and the efficiency ratio
// Avg P@1 / Avg #L (53.6 / 21.4 = 2.50 for CoT-SFT), rendered as Markdown in the paper's number format.
// Pass@1 is the official rule (Latent-SFT's parser + grader); when the runs carry the lenient rule's
// accuracy too, it is shown beside it in its own column, never in place of it.
import { inputError } from '@latent-sft/core';

/** One evaluation run: a method on a dataset with one seed. `accuracy` is a fraction in [0, 1]. */
export interface RunResult {
  method: string;
  dataset: string;
  seed: number;
  accuracy: number;
  meanLatents: number;
  /** The lenient rule's accuracy (boxed → #### → last number), a fraction; shown beside Pass@1 when given. */
  lenientAccuracy?: number;
}

/** Mean and sample standard deviation (n − 1; null for a single run) over seeds. */
export interface Stat {
  mean: number;
  std: number | null;
  n: number;
}

export interface Table1Cell {
  /** Pass@1 in percent. */
  pass1: Stat;
  /** Pass@1 in percent under the lenient rule; null when any run of the cell lacks it. */
  lenient: Stat | null;
  latents: Stat;
}

export interface Table1Row {
  method: string;
  /** Per dataset (in `Table1.datasets` order); null where the method has no run. */
  cells: Array<Table1Cell | null>;
  /** Mean over datasets of the mean Pass@1 (percent); null when a dataset is missing. */
  avgPass1: number | null;
  avgLatents: number | null;
  /** avgPass1 / avgLatents; null when #L is 0 or an average is missing (rendered '–'). */
  ratio: number | null;
}

export interface Table1 {
  datasets: string[];
  rows: Table1Row[];
}

export interface SummarizeOptions {
  /** Column order (default: order of first appearance in the runs). */
  datasets?: readonly string[];
  /** The file the runs came from (one per line), named in error messages. */
  file?: string;
}

/** Mean and sample std of values (std null for one value). */
export function meanStd(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) throw new Error('meanStd of no values');
  const mean = values.reduce((s, x) => s + x, 0) / n;
  if (n === 1) return { mean, std: null, n };
  const ss = values.reduce((s, x) => s + (x - mean) * (x - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** Groups runs by method (first-appearance order) and dataset into Table-1 rows. */
export function summarizeRuns(runs: readonly RunResult[], opts: SummarizeOptions = {}): Table1 {
  const seen = new Set<string>();
  runs.forEach((r, i) => {
    // file:line when the runs came from a file, else the run's 1-based position.
    const fail = (field: string, msg: string) =>
      opts.file !== undefined ? inputError({ file: opts.file, line: i + 1, field }, msg) : inputError({ field }, `run ${i + 1}: ${msg}`);
    if (!(r.accuracy >= 0 && r.accuracy <= 1)) throw fail('accuracy', `expected a fraction in [0, 1], got ${r.accuracy}`);
    if (r.lenientAccuracy !== undefined && !(r.lenientAccuracy >= 0 && r.lenientAccuracy <= 1)) {
      throw fail('lenientAccuracy', `expected a fraction in [0, 1], got ${r.lenientAccuracy}`);
    }
    if (!(r.meanLatents >= 0)) throw fail('meanLatents', `expected >= 0, got ${r.meanLatents}`);
    const key = JSON.stringify([r.method, r.dataset, r.seed]);
    if (seen.has(key)) throw fail('seed', `duplicate run: ${r.method} on ${r.dataset} with seed ${r.seed}`);
    seen.add(key);
  });
  const datasets = opts.datasets ? [...opts.datasets] : [...new Set(runs.map((r) => r.dataset))];
  const methods = [...new Set(runs.map((r) => r.method))];
  const rows = methods.map((method): Table1Row => {
    const cells = datasets.map((d): Table1Cell | null => {
      const rs = runs.filter((r) => r.method === method && r.dataset === d);
      if (rs.length === 0) return null;
      const lenient = rs.every((r) => r.lenientAccuracy !== undefined) ? meanStd(rs.map((r) => (r.lenientAccuracy as number) * 100)) : null;
      return { pass1: meanStd(rs.map((r) => r.accuracy * 100)), lenient, latents: meanStd(rs.map((r) => r.meanLatents)) };
    });
    const complete = cells.every((c) => c !== null) && cells.length > 0;
    const avg = (f: (c: Table1Cell) => number) => (complete ? cells.reduce((s, c) => s + f(c as Table1Cell), 0) / cells.length : null);
    const avgPass1 = avg((c) => c.pass1.mean);
    const avgLatents = avg((c) => c.latents.mean);
    const ratio = avgPass1 !== null && avgLatents !== null && avgLatents > 0 ? avgPass1 / avgLatents : null;
    return { method, cells, avgPass1, avgLatents, ratio };
  });
  return { datasets, rows };
}

/** The paper's number format: three significant digits (49.4, 3.87, 0.00, 10.0). */
export function formatValue(x: number): string {
  return Math.abs(x) >= 1000 ? x.toFixed(0) : x.toPrecision(3);
}

/** A spread as in the paper: one decimal without the leading zero (±.7, ±.0, ±1.2). */
export function formatStd(x: number): string {
  const s = x.toFixed(1);
  return s.startsWith('0.') ? s.slice(1) : s;
}

function formatStat(s: Stat, bold: boolean): string {
  const v = bold ? `**${formatValue(s.mean)}**` : formatValue(s.mean);
  return s.std === null ? v : `${v}±${formatStd(s.std)}`;
}

/** Column headers of the known datasets, as in the paper. */
export const DATASET_LABELS: Readonly<Record<string, string>> = {
  'gsm8k-aug-test': 'GSM8k-Aug',
  'gsm8k-test': 'GSM8k',
  'gsm-hard': 'GSM-Hard',
  svamp: 'SVAMP',
  multiarith: 'MultiArith',
  math500: 'MATH-500',
  aime24: 'AIME24',
};

export interface RenderOptions {
  /** Header per dataset (default DATASET_LABELS, else the name). */
  labels?: Readonly<Record<string, string>>;
  /** Bold the best Pass@1 per dataset, Avg P@1 and P@1/#L (default true). */
  bold?: boolean;
}

/** Renders the summary as a Markdown table in the layout of spec §7 Table 1. */
export function renderTable1Markdown(table: Table1, opts: RenderOptions = {}): string {
  const labels = opts.labels ?? DATASET_LABELS;
  const bold = opts.bold ?? true;
  const best = (xs: Array<number | null>) => Math.max(...xs.map((x) => x ?? -Infinity));
  const bestPass = table.datasets.map((_, j) => best(table.rows.map((r) => r.cells[j]?.pass1.mean ?? null)));
  const bestAvg = best(table.rows.map((r) => r.avgPass1));
  const bestRatio = best(table.rows.map((r) => r.ratio));
  // A lenient column per dataset where any run carries the lenient rule.
  const withLenient = table.datasets.map((_, j) => table.rows.some((r) => r.cells[j]?.lenient != null));
  const header = [
    'Method',
    ...table.datasets.flatMap((d, j) => [`${labels[d] ?? d} P@1`, ...(withLenient[j] ? ['lenient'] : []), '#L']),
    'Avg P@1',
    'Avg #L',
    'P@1/#L',
  ];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of table.rows) {
    const cells = r.cells.flatMap((c, j) => {
      const lenient = withLenient[j] ? [c?.lenient ? formatStat(c.lenient, false) : '–'] : [];
      return c === null
        ? ['–', ...lenient, '–']
        : [formatStat(c.pass1, bold && table.rows.length > 1 && c.pass1.mean === bestPass[j]), ...lenient, formatStat(c.latents, false)];
    });
    const mark = (x: number | null, top: number) => {
      if (x === null) return '–';
      return bold && table.rows.length > 1 && x === top ? `**${formatValue(x)}**` : formatValue(x);
    };
    lines.push(
      `| ${[r.method, ...cells, mark(r.avgPass1, bestAvg), r.avgLatents === null ? '–' : formatValue(r.avgLatents), mark(r.ratio, bestRatio)].join(' | ')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
