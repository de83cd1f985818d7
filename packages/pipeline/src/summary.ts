// Per-phase summaries (<out>/summary.json) and the results table of a pipeline run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, writeJsonAtomic } from '@latent-sft/core';
import { type CollapseVerdict, type MetricsRecord, detectCollapse } from '@latent-sft/train';
import { secondsSince } from './context.js';
import { LAYOUT } from './run-dir.js';

/** Loss, ce and kl averaged over the first and the last `window` steps of a run (single batches are noisy). */
export interface MetricSummary {
  steps: number;
  /** Steps averaged at each end: max(1, min(5, floor(steps / 4))). */
  window: number;
  first: Record<string, number>;
  last: Record<string, number>;
  /** The collapse rule over the records (@latent-sft/train detectCollapse; docs/pipeline.md). */
  collapse: CollapseVerdict;
}

/** What every app writes as <out>/summary.json. */
export interface PhaseSummary {
  app: string;
  out: string;
  /** Training steps (0 for merge-lora; examples for cache-latents). */
  steps: number;
  /** Steps averaged into first/last (absent: single values). */
  window?: number;
  first: Record<string, number>;
  last: Record<string, number>;
  wallSeconds: number;
  /** Training phases: the collapse verdict; a collapsed phase is flagged in every table, never a plain result. */
  collapse?: CollapseVerdict;
  /** Extra facts (cache: examples, chunks, mean m; merge: tensors merged). */
  notes?: Record<string, number | string>;
  /** Best-checkpoint selection (`select` of the phase-1 apps): the scores and the checkpoint that became the output. */
  selection?: SelectionSummary;
}

/** The held-out scores of every evaluated checkpoint and the one chosen (<out>/selection.jsonl holds the same records). */
export interface SelectionSummary {
  /** The config's select.metric (e.g. gold-cot-exact). */
  select: string;
  /** The recorded metric the choice maximises or minimises (exact, ce). */
  metric: string;
  mode: 'min' | 'max';
  /** Held-out examples per evaluation. */
  examples: number;
  /** The chosen checkpoint (earliest on ties), whose trainable tensors are the phase's output. */
  bestStep: number;
  bestScore: number;
  /** One record per evaluated checkpoint: step and every evaluation metric. */
  scores: Array<Record<string, number>>;
}

const KEYS = ['loss', 'ce', 'kl'];

/** Mean loss, ce and kl over the first and last window of metrics records. */
export function summarizeMetrics(records: readonly MetricsRecord[]): MetricSummary {
  const window = Math.max(1, Math.min(5, Math.floor(records.length / 4)));
  const mean = (rs: readonly MetricsRecord[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of KEYS) {
      const vs = rs.map((r) => r[k]).filter((v): v is number => typeof v === 'number');
      if (vs.length > 0) out[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
    }
    return out;
  };
  return {
    steps: records.length === 0 ? 0 : (records[records.length - 1] as MetricsRecord).step,
    window,
    first: mean(records.slice(0, window)),
    last: mean(records.slice(-window)),
    collapse: detectCollapse(records),
  };
}

/** Writes <out>/summary.json atomically. */
export function writeSummary(s: PhaseSummary): void {
  writeJsonAtomic(join(s.out, LAYOUT.summary), s);
}

/**
 * The end of a training phase: its summary (steps, the first/last windows, the collapse verdict, wall
 * time since `t0`, optional notes and extra first/last metrics), written (unless `write` is false: a
 * data-parallel rank other than 0) and logged; returned.
 */
export function finishTraining(
  app: string,
  out: string,
  metrics: MetricSummary,
  o: {
    t0: number;
    logger: Logger;
    notes?: Record<string, number | string>;
    first?: Record<string, number>;
    last?: Record<string, number>;
    selection?: SelectionSummary;
    write?: boolean;
  },
): PhaseSummary {
  const summary: PhaseSummary = {
    app,
    out,
    steps: metrics.steps,
    window: metrics.window,
    first: { ...metrics.first, ...o.first },
    last: { ...metrics.last, ...o.last },
    collapse: metrics.collapse,
    wallSeconds: secondsSince(o.t0),
    ...(o.notes !== undefined ? { notes: o.notes } : {}),
    ...(o.selection !== undefined ? { selection: o.selection } : {}),
  };
  if (o.write !== false) writeSummary(summary);
  o.logger.info({ ...summary }, 'done');
  return summary;
}

/** Reads <dir>/summary.json, or null when the phase has not finished. */
export function readSummary(dir: string): PhaseSummary | null {
  const p = join(dir, LAYOUT.summary);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as PhaseSummary) : null;
}

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4));

/** A fixed-width results table: phase, steps, first/last loss, first/last KL, wall time. */
export function formatResultsTable(rows: ReadonlyArray<{ phase: string; summary: PhaseSummary | null }>): string {
  const header = ['phase', 'steps', 'loss first', 'loss last', 'kl first', 'kl last', 'wall s', 'verdict'];
  const body = rows.map(({ phase, summary: s }) =>
    s === null
      ? [phase, 'not run', '', '', '', '', '', '']
      : [
          phase,
          String(s.steps),
          fmt(s.first.loss),
          fmt(s.last.loss),
          fmt(s.first.kl),
          fmt(s.last.kl),
          s.wallSeconds.toFixed(1),
          s.collapse?.collapsed ? `COLLAPSED: ${s.collapse.message}` : '',
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
