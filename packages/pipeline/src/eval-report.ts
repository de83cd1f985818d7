// The eval report (`eval report`): one HTML + Markdown report over eval run folders (their summary.json and rows) and
// training metrics JSONL files (loss curves).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import {
  type EvalRow,
  type EvalSummary,
  type MetricsCurves,
  type SuperpositionExample,
  parseSummary,
  renderReportHtml,
  renderSummariesMarkdown,
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
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as EvalRow;
      } catch (e) {
        throw inputError({ file, line: i + 1 }, `invalid JSON: ${(e as Error).message}`);
      }
    });
}

/** The first line of every Markdown report: an existing .md without it is not ours to replace. */
export const REPORT_MD_MARK = '<!-- written by `eval report` (replaced by the next report to the same --out) -->';

/**
 * A --metrics entry as files: a JSONL file itself, or a pipeline run folder (e.g. runs/tiny): the
 * metrics.jsonl of each of its phase folders, in the order they were written (one curve per phase).
 */
export function metricsFiles(path: string): string[] {
  if (!existsSync(path)) throw inputError({ file: path, field: '--metrics' }, 'not found');
  if (!statSync(path).isDirectory()) return [path];
  const files = readdirSync(path)
    .map((d) => join(path, d, 'metrics.jsonl'))
    .filter((f) => existsSync(f));
  if (files.length === 0) throw inputError({ file: path, field: '--metrics' }, 'a folder without <phase>/metrics.jsonl files');
  return files.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs || a.localeCompare(b));
}

/** Writes `out` (HTML) and the Markdown beside it (same name, .md); returns both paths. */
export function writeEvalReport(o: EvalReportOptions): { html: string; markdown: string } {
  if (o.runs.length === 0) throw inputError({ field: '--runs' }, 'name at least one eval run folder');
  if (!o.out.endsWith('.html')) throw inputError({ field: '--out' }, `expected an .html file, got '${o.out}'`);
  const mdPath = o.out.replace(/\.html$/, '.md');
  if (existsSync(o.out) && statSync(o.out).isDirectory()) throw inputError({ field: '--out' }, `${o.out} is a folder, expected an .html file`);
  if (existsSync(mdPath) && !readFileSync(mdPath, 'utf8').startsWith(REPORT_MD_MARK)) {
    throw inputError({ field: '--out' }, `${mdPath} exists and was not written by eval report; choose another --out; nothing was written`);
  }
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
  const curves: MetricsCurves[] = o.metrics
    .flatMap(metricsFiles)
    .map((file) => ({ label: `${basename(dirname(file))}/${basename(file)}`, records: readMetrics(file) }));
  const html = renderReportHtml({ title: o.title, summaries, curves, superpositions });
  let md = `${REPORT_MD_MARK}\n${renderSummariesMarkdown(summaries, o.title)}`;
  if (curves.length > 0) {
    const lines = ['', '## Training metrics', '', '| file | records | first step | last step | first loss | last loss |', '|---|---|---|---|---|---|'];
    for (const c of curves) {
      const withLoss = c.records.filter((r) => typeof r.loss === 'number');
      const f = withLoss[0];
      const l = withLoss[withLoss.length - 1];
      lines.push(
        `| ${c.label} | ${c.records.length} | ${c.records[0]?.step ?? '–'} | ${c.records[c.records.length - 1]?.step ?? '–'} | ` +
          `${f ? (f.loss as number).toPrecision(4) : '–'} | ${l ? (l.loss as number).toPrecision(4) : '–'} |`,
      );
    }
    md += `${lines.join('\n')}\n`;
  }
  writeFileAtomic(o.out, html);
  writeFileAtomic(mdPath, md);
  return { html: o.out, markdown: mdPath };
}
