// The eval report (`eval report`): one HTML + Markdown report over eval run folders (their summary.json and rows) and
// training metrics JSONL files (loss curves).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import {
  type EvalRow, type EvalSummary, type MetricsCurves, type SuperpositionExample, parseSummary, renderReportHtml, renderSummariesMarkdown,
  superpositionExamples,
} from '@latent-sft/eval';
import { readMetrics } from '@latent-sft/train';
import { predictionsFile } from './eval-run.js';

export interface EvalReportOptions {
  runs: string[];
  metrics: string[];
  out: string;
  title: string;
  examples: number;
}

/** Reads an eval run folder's summary.json. */
export function readEvalSummary(dir: string): EvalSummary {
  const file = join(dir, 'summary.json');
  if (!existsSync(file)) throw inputError({ file }, 'not found: not an eval run folder (run `eval run` first)');
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `invalid JSON: ${(e as Error).message}`);
  }
  return parseSummary(value, file);
}

function readRowsFile(file: string): EvalRow[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as EvalRow;
    } catch (e) {
      throw inputError({ file, line: i + 1 }, `invalid JSON: ${(e as Error).message}`);
    }
  });
}

/** Writes `out` (HTML) and the Markdown beside it (same name, .md); returns both paths. */
export function writeEvalReport(o: EvalReportOptions): { html: string; markdown: string } {
  if (o.runs.length === 0) throw inputError({ field: '--runs' }, 'name at least one eval run folder');
  if (!o.out.endsWith('.html')) throw inputError({ field: '--out' }, `expected an .html file, got '${o.out}'`);
  const summaries = o.runs.map(readEvalSummary);
  const superpositions: SuperpositionExample[] = [];
  o.runs.forEach((dir, i) => {
    const s = summaries[i] as EvalSummary;
    if (s.mode !== 'latent') return;
    const first = s.runs[0];
    if (!first) return;
    const rows = readRowsFile(join(dir, predictionsFile(first.dataset, first.seed)));
    superpositions.push(...superpositionExamples(rows, o.examples, o.runs.length > 1 ? `${s.method}: ` : ''));
  });
  const curves: MetricsCurves[] = o.metrics.map((file) => {
    if (!existsSync(file)) throw inputError({ file, field: '--metrics' }, 'not found');
    return { label: `${basename(dirname(file))}/${basename(file)}`, records: readMetrics(file) };
  });
  const html = renderReportHtml({ title: o.title, summaries, curves, superpositions });
  let md = renderSummariesMarkdown(summaries, o.title);
  if (curves.length > 0) {
    const lines = ['', '## Training metrics', '', '| file | records | first step | last step | first loss | last loss |', '|---|---|---|---|---|---|'];
    for (const c of curves) {
      const withLoss = c.records.filter((r) => typeof r.loss === 'number');
      const f = withLoss[0];
      const l = withLoss[withLoss.length - 1];
      lines.push(`| ${c.label} | ${c.records.length} | ${c.records[0]?.step ?? '–'} | ${c.records[c.records.length - 1]?.step ?? '–'} | ` +
        `${f ? (f.loss as number).toPrecision(4) : '–'} | ${l ? (l.loss as number).toPrecision(4) : '–'} |`);
    }
    md += `${lines.join('\n')}\n`;
  }
  const mdPath = o.out.replace(/\.html$/, '.md');
  writeFileAtomic(o.out, html);
  writeFileAtomic(mdPath, md);
  return { html: o.out, markdown: mdPath };
}
