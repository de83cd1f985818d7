// Per-problem evaluation rows (what `eval run` writes as JSONL), their per-run statistics, and the
// Markdown summary: the Table-1 layout (spec §7) plus per-run details, ECR@K and notes. Pure data in,
// text out; generation and file I/O live in the app.
import { inputError } from '@latent-sft/core';
import type { MatchMethod } from './equivalence.js';
import type { AnswerSource, ExtractionMode } from './extract.js';
import { formatStd, formatValue, meanStd, renderTable1Markdown, summarizeRuns, type RunResult, type Stat, type Table1 } from './table.js';

/** How the model reasons: soft latent tokens, explicit CoT text, or the answer right after `</think>`. */
export type EvalMode = 'latent' | 'explicit' | 'no-cot';

export const EVAL_MODES: readonly EvalMode[] = ['latent', 'explicit', 'no-cot'];

/** One latent step's superposition: the top-k ids (descending), their decoded tokens and probabilities. */
export interface LatentStepRecord {
  ids: number[];
  tokens: string[];
  probs: number[];
}

/** One problem of one run (a line of `<dataset>/seed-<s>.jsonl`). */
export interface EvalRow {
  dataset: string;
  id: string;
  index: number;
  seed: number;
  /** The prompt text (prefix + `<think>`) and its length in ids. */
  prompt: string;
  promptTokens: number;
  /** Decoded generated text: the answer after the latents (latent) or CoT + `</think>` + answer (explicit, no-cot). */
  output: string;
  outputIds: number[];
  /**
   * #L: latent steps fed (latent); generated tokens before the first `</think>`, or all generated
   * tokens when none was produced (explicit, no-cot).
   */
  latents: number;
  /** Latent mode: why the latent phase ended ('end' = argmax was the `</think>` id, 'max' = cap). */
  latentStop: 'end' | 'max' | null;
  /** Explicit / no-cot: whether the output contains `</think>` (null in latent mode). */
  endThink: boolean | null;
  /** Latent mode: the top-k superposition of every latent step (empty otherwise). */
  latentSteps: LatentStepRecord[];
  /** Latent mode: mean entropy (nats) of the steps' top-k distributions; null without latent steps. */
  latentEntropy: number | null;
  finishReason: 'stop' | 'length';
  gold: string;
  extracted: string | null;
  source: AnswerSource | null;
  correct: boolean;
  match: MatchMethod;
  /** The lenient rule's verdict (judgeBoth(...).lenient.correct), reported beside `correct` (official rule). */
  lenientCorrect?: boolean;
  /**
   * N_eff of this problem's latent chain (@latent-sft/latent `parallelism`, as parallelism.py): N_eff,
   * N_eff_naive and their ratio; absent/null where not computed (needs >= 2 reference paths and their latents).
   */
  parallelism?: { nEff: number; nEffNaive: number; ratio: number } | null;
  /** ECR@K per K (keys are K), or null where not computed (no reference CoT, m = 0, or not latent mode). */
  ecr: Record<string, number> | null;
}

/** Statistics of one run (one method on one dataset with one seed). */
export interface RunStats {
  method: string;
  dataset: string;
  seed: number;
  scored: number;
  correct: number;
  /** correct / scored. */
  accuracy: number;
  /** The lenient rule's accuracy when every row carries lenientCorrect. */
  lenientAccuracy?: number;
  /** Mean and sample std of #L over the problems. */
  latents: Stat;
  /** Answers that hit the token cap. */
  truncated: number;
  /** Latent mode: rows whose latent phase hit max-latent; explicit: rows with no `</think>`. */
  unterminated: number;
  /** Mean ECR@K per K over the rows that have it, with the count of such rows. */
  ecr: Record<string, { mean: number; n: number }>;
  /** Mean of the rows' latentEntropy (nats) over rows with latent steps; null when none has any. */
  latentEntropy: number | null;
  /** Means of N_eff, N_eff_naive and N_eff/N_eff_naive over the rows that have them (absent when none has). */
  parallelism?: { nEff: number; nEffNaive: number; ratio: number; n: number };
  /** Wall time of the run's generation (ms); 0 when the rows were reused from an earlier run. */
  generateMs: number;
}

/** Statistics of the rows of one run. */
export function runStats(rows: readonly EvalRow[], meta: { method: string; dataset: string; seed: number; generateMs?: number }): RunStats {
  if (rows.length === 0) throw inputError({ field: 'rows' }, `run ${meta.method} / ${meta.dataset} / seed ${meta.seed} has no rows`);
  const correct = rows.filter((r) => r.correct).length;
  const ecrs = new Map<string, number[]>();
  for (const r of rows) {
    if (r.ecr === null) continue;
    for (const [k, v] of Object.entries(r.ecr)) {
      const list = ecrs.get(k) ?? [];
      list.push(v);
      ecrs.set(k, list);
    }
  }
  const ecr: Record<string, { mean: number; n: number }> = {};
  for (const k of [...ecrs.keys()].sort((a, b) => Number(a) - Number(b))) {
    const list = ecrs.get(k) as number[];
    ecr[k] = { mean: list.reduce((s, x) => s + x, 0) / list.length, n: list.length };
  }
  const ents = rows.flatMap((r) => (r.latentEntropy === null ? [] : [r.latentEntropy]));
  const lenient = rows.every((r) => r.lenientCorrect !== undefined) ? { lenientAccuracy: rows.filter((r) => r.lenientCorrect).length / rows.length } : {};
  const par = rows.flatMap((r) => (r.parallelism ? [r.parallelism] : []));
  const mean = (f: (x: { nEff: number; nEffNaive: number; ratio: number }) => number) => par.reduce((s, x) => s + f(x), 0) / par.length;
  const parallelism =
    par.length > 0 ? { parallelism: { nEff: mean((x) => x.nEff), nEffNaive: mean((x) => x.nEffNaive), ratio: mean((x) => x.ratio), n: par.length } } : {};
  return {
    ...lenient,
    ...parallelism,
    method: meta.method,
    dataset: meta.dataset,
    seed: meta.seed,
    scored: rows.length,
    correct,
    accuracy: correct / rows.length,
    latents: meanStd(rows.map((r) => r.latents)),
    truncated: rows.filter((r) => r.finishReason === 'length').length,
    unterminated: rows.filter((r) => r.latentStop === 'max' || r.endThink === false).length,
    ecr,
    latentEntropy: ents.length > 0 ? ents.reduce((a, b) => a + b, 0) / ents.length : null,
    generateMs: meta.generateMs ?? 0,
  };
}

/** The Table-1 inputs of run statistics (accuracy fraction, mean #L). */
export function toRunResults(stats: readonly RunStats[]): RunResult[] {
  return stats.map((s) => ({
    method: s.method,
    dataset: s.dataset,
    seed: s.seed,
    accuracy: s.accuracy,
    meanLatents: s.latents.mean,
    ...(s.lenientAccuracy !== undefined ? { lenientAccuracy: s.lenientAccuracy } : {}),
  }));
}

/** What `eval run` records in summary.json beside the per-problem JSONL files. */
export interface EvalSummary {
  method: string;
  mode: EvalMode;
  model: string;
  datasets: string[];
  seeds: number[];
  sampling: { kind: 'greedy' } | { kind: 'top-p'; temperature: number; topP: number };
  extraction: ExtractionMode;
  runs: RunStats[];
  table: Table1;
  notes: string[];
}

/** Builds the summary (Table 1 over the runs, columns in `datasets` order). */
export function buildSummary(meta: Omit<EvalSummary, 'table' | 'runs'>, runs: readonly RunStats[]): EvalSummary {
  return { ...meta, runs: [...runs], table: summarizeRuns(toRunResults(runs), { datasets: meta.datasets }) };
}

function pct(x: number): string {
  return formatValue(x * 100);
}

function statText(s: Stat): string {
  return s.std === null ? formatValue(s.mean) : `${formatValue(s.mean)}±${formatStd(s.std)}`;
}

/** The Markdown of several summaries: one Table 1 over all their runs, then each summary's details. */
export function renderSummariesMarkdown(summaries: readonly EvalSummary[], title = 'Evaluation'): string {
  if (summaries.length === 0) throw inputError({ field: 'runs' }, 'no run summaries to report');
  const datasets = [...new Set(summaries.flatMap((s) => s.datasets))];
  const table = summarizeRuns(
    summaries.flatMap((s) => toRunResults(s.runs)),
    { datasets },
  );
  const out: string[] = [
    `# ${title}`,
    '',
    'Pass@1 (%) and #L as mean±std over seeds (sample std; a single seed shows the mean only).',
    '',
    renderTable1Markdown(table),
  ];
  for (const s of summaries) {
    out.push(`## ${s.method}`, '');
    const sampling = s.sampling.kind === 'greedy' ? 'greedy' : `top-p (T = ${s.sampling.temperature}, top_p = ${s.sampling.topP})`;
    out.push(`- model: \`${s.model}\``, `- mode: ${s.mode}; sampling: ${sampling}; seeds: ${s.seeds.join(', ')}; extraction: ${s.extraction}`, '');
    const ks = [...new Set(s.runs.flatMap((r) => Object.keys(r.ecr)))].sort((a, b) => Number(a) - Number(b));
    const lenient = s.runs.some((r) => r.lenientAccuracy !== undefined);
    const neff = s.runs.some((r) => r.parallelism !== undefined);
    const header = [
      'dataset',
      'seed',
      'correct',
      'Pass@1',
      ...(lenient ? ['lenient'] : []),
      '#L',
      'truncated',
      s.mode === 'latent' ? 'hit max-latent' : 'no `</think>`',
      ...(s.mode === 'latent' ? ['mean H (nats)'] : []),
      ...ks.map((k) => `ECR@${k}`),
      ...(neff ? ['N_eff', 'N_eff/naive'] : []),
    ];
    out.push(`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`);
    for (const r of s.runs) {
      const p = r.parallelism;
      out.push(
        `| ${[
          r.dataset,
          String(r.seed),
          `${r.correct}/${r.scored}`,
          pct(r.accuracy),
          ...(lenient ? [r.lenientAccuracy === undefined ? '–' : pct(r.lenientAccuracy)] : []),
          statText(r.latents),
          String(r.truncated),
          String(r.unterminated),
          ...(s.mode === 'latent' ? [r.latentEntropy === null ? '–' : r.latentEntropy.toFixed(3)] : []),
          ...ks.map((k) => (r.ecr[k] ? `${r.ecr[k].mean.toFixed(3)} (n=${r.ecr[k].n})` : '–')),
          ...(neff ? (p ? [`${p.nEff.toFixed(3)} (n=${p.n})`, p.ratio.toFixed(3)] : ['–', '–']) : []),
        ].join(' | ')} |`,
      );
    }
    out.push('');
    if (s.notes.length > 0) out.push(...s.notes.map((n) => `- ${n}`), '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Parses a summary.json value (from `file`), checking the fields the report reads. */
export function parseSummary(value: unknown, file: string): EvalSummary {
  const fail = (field: string, msg: string) => inputError({ file, field }, msg);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError({ file }, 'expected a JSON object (an eval run summary)');
  const o = value as Record<string, unknown>;
  if (typeof o.method !== 'string' || o.method === '') throw fail('method', 'expected a non-empty string');
  if (typeof o.mode !== 'string' || !(EVAL_MODES as readonly string[]).includes(o.mode)) throw fail('mode', `expected one of ${EVAL_MODES.join(', ')}`);
  if (!Array.isArray(o.datasets) || !o.datasets.every((d) => typeof d === 'string')) throw fail('datasets', 'expected an array of dataset names');
  if (!Array.isArray(o.runs) || o.runs.length === 0) throw fail('runs', 'expected a non-empty array of run statistics');
  o.runs.forEach((r: unknown, i) => {
    const x = r as Record<string, unknown> | null;
    if (
      typeof x !== 'object' ||
      x === null ||
      typeof x.dataset !== 'string' ||
      typeof x.seed !== 'number' ||
      typeof x.accuracy !== 'number' ||
      typeof x.latents !== 'object' ||
      x.latents === null ||
      typeof (x.latents as Stat).mean !== 'number'
    ) {
      throw fail(`runs[${i}]`, 'expected {dataset, seed, accuracy, latents: {mean, std, n}, ...}');
    }
  });
  return value as EvalSummary;
}
