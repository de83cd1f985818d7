// Per-phase summaries (<out>/summary.json) and the results table of a pipeline run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '@latent-sft/core';
import type { MetricsRecord } from '@latent-sft/train';
import { LAYOUT } from './run-dir.js';

/** First and last values of a run's metrics. */
export interface MetricSummary {
  steps: number;
  first: Record<string, number>;
  last: Record<string, number>;
}

/** What every app writes as <out>/summary.json. */
export interface PhaseSummary {
  app: string;
  out: string;
  /** Training steps (0 for merge-lora; examples for cache-latents). */
  steps: number;
  first: Record<string, number>;
  last: Record<string, number>;
  wallSeconds: number;
  /** Extra facts (cache: examples, chunks, mean m; merge: tensors merged). */
  notes?: Record<string, number | string>;
}

const KEYS = ['loss', 'ce', 'kl'];

/** First/last loss, ce and kl of metrics records. */
export function summarizeMetrics(records: readonly MetricsRecord[]): MetricSummary {
  const pickKeys = (r: MetricsRecord | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of KEYS) if (r !== undefined && typeof r[k] === 'number') out[k] = r[k] as number;
    return out;
  };
  return { steps: records.length === 0 ? 0 : (records[records.length - 1] as MetricsRecord).step, first: pickKeys(records[0]), last: pickKeys(records[records.length - 1]) };
}

/** Writes <out>/summary.json atomically. */
export function writeSummary(s: PhaseSummary): void {
  writeJsonAtomic(join(s.out, LAYOUT.summary), s);
}

/** Reads <dir>/summary.json, or null when the phase has not finished. */
export function readSummary(dir: string): PhaseSummary | null {
  const p = join(dir, LAYOUT.summary);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as PhaseSummary) : null;
}

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4));

/** A fixed-width results table: phase, steps, first/last loss, first/last KL, wall time. */
export function formatResultsTable(rows: ReadonlyArray<{ phase: string; summary: PhaseSummary | null }>): string {
  const header = ['phase', 'steps', 'loss first', 'loss last', 'kl first', 'kl last', 'wall s'];
  const body = rows.map(({ phase, summary: s }) => (s === null
    ? [phase, 'not run', '', '', '', '', '']
    : [phase, String(s.steps), fmt(s.first.loss), fmt(s.last.loss), fmt(s.first.kl), fmt(s.last.kl), s.wallSeconds.toFixed(1)]));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
