// The self-contained HTML metrics report: the Table-1 summary as an HTML table, training curves
// (step vs loss, ce, kl) as inline SVG line charts, and latent superpositions as inline SVG heat
// cells (one column per latent step, one row per rank, labelled with the token, shaded by its
// probability). No scripts, no external assets: one file that opens offline.
import { inputError } from '@latent-sft/core';
import { toRunResults, type EvalSummary } from './report.js';
import { DATASET_LABELS, formatStd, formatValue, summarizeRuns, type Stat, type Table1 } from './table.js';

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A token made visible: leading/trailing spaces as ␣, newlines as ⏎, tabs as ⇥. */
export function visibleToken(t: string): string {
  return t
    .replace(/\n/g, '⏎')
    .replace(/\t/g, '⇥')
    .replace(/^ +| +$/g, (m) => '␣'.repeat(m.length));
}

/** About `count` round tick values covering [min, max] (1, 2, 5 × 10^k steps). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`niceTicks: bounds must be finite, got [${min}, ${max}]`);
  if (max < min) throw new Error(`niceTicks: max ${max} < min ${min}`);
  if (max === min) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) as number;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** Series colours (colour-blind-safe Okabe–Ito). */
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export interface LineSeries {
  label: string;
  /** [x, y] points; non-finite y values are left out. */
  points: ReadonlyArray<readonly [number, number]>;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  width?: number;
  height?: number;
}

/** An inline SVG line chart (one polyline per series, axes with round ticks, a legend). */
export function lineChartSvg(opts: LineChartOptions): string {
  const W = opts.width ?? 560;
  const H = opts.height ?? 300;
  const m = { l: 64, r: 16, t: 28, b: 44 };
  const series = opts.series
    .map((s) => ({ label: s.label, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) throw inputError({ field: opts.title }, 'no finite points to plot');
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.max(1e-6, Math.abs(y0) * 0.05), y1 + Math.max(1e-6, Math.abs(y1) * 0.05)];
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(2);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(opts.title)}">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" class="title">${escapeXml(opts.title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  ];
  for (const t of niceTicks(x0, x1, 6)) {
    parts.push(
      `<line x1="${f(sx(t))}" y1="${m.t + ph}" x2="${f(sx(t))}" y2="${m.t + ph + 4}" stroke="#555"/>`,
      `<text x="${f(sx(t))}" y="${m.t + ph + 16}" text-anchor="middle" class="tick">${tickLabel(t)}</text>`,
    );
  }
  for (const t of niceTicks(y0, y1, 5)) {
    parts.push(
      `<line x1="${m.l}" y1="${f(sy(t))}" x2="${m.l + pw}" y2="${f(sy(t))}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${f(sy(t) + 4)}" text-anchor="end" class="tick">${tickLabel(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle" class="axis">${escapeXml(opts.xLabel)}</text>`,
    `<text x="14" y="${m.t + ph / 2}" text-anchor="middle" class="axis" transform="rotate(-90 14 ${m.t + ph / 2})">${escapeXml(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const pts = s.points.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ');
    parts.push(`<polyline class="series" fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"><title>${escapeXml(s.label)}</title></polyline>`);
    if (s.points.length === 1) parts.push(`<circle cx="${f(sx(s.points[0]![0]))}" cy="${f(sy(s.points[0]![1]))}" r="3" fill="${color}"/>`);
    parts.push(
      `<rect x="${m.l + 8}" y="${m.t + 8 + i * 16}" width="12" height="3" fill="${color}"/>`,
      `<text x="${m.l + 24}" y="${m.t + 13 + i * 16}" class="legend">${escapeXml(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** One latent step's superposition for the picture. */
export interface SuperpositionStep {
  tokens: readonly string[];
  probs: readonly number[];
}

export interface SuperpositionOptions {
  title: string;
  steps: readonly SuperpositionStep[];
  /** Columns drawn (default 24; the rest are summarised in the caption). */
  maxSteps?: number;
  /** Ranks drawn per step (default 10). */
  maxRanks?: number;
}

/**
 * Heat cells of latent superpositions: column t = latent step t, row j = the step's j-th most probable
 * token; the cell is shaded by its probability and labelled with the token; a bar under each column
 * shows the mass of the top-1 token.
 */
export function superpositionSvg(opts: SuperpositionOptions): string {
  const maxSteps = opts.maxSteps ?? 24;
  const maxRanks = opts.maxRanks ?? 10;
  const steps = opts.steps.slice(0, maxSteps);
  steps.forEach((s, t) => {
    if (s.tokens.length !== s.probs.length) throw inputError({ field: `steps[${t}]` }, `${s.tokens.length} tokens but ${s.probs.length} probabilities`);
  });
  const ranks = Math.min(maxRanks, Math.max(1, ...steps.map((s) => s.tokens.length)));
  const cw = 58;
  const ch = 18;
  const m = { l: 34, t: 30, b: 40 };
  const W = m.l + Math.max(1, steps.length) * cw + 8;
  const H = m.t + ranks * ch + m.b;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="superposition" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(opts.title)}">`,
    `<text x="4" y="16" class="title">${escapeXml(opts.title)}${opts.steps.length > steps.length ? ` (first ${steps.length} of ${opts.steps.length} steps)` : ''}</text>`,
  ];
  for (let j = 0; j < ranks; j++) parts.push(`<text x="${m.l - 4}" y="${m.t + j * ch + 13}" text-anchor="end" class="tick">${j + 1}</text>`);
  steps.forEach((s, t) => {
    const x = m.l + t * cw;
    parts.push(`<text x="${x + cw / 2}" y="${m.t - 4}" text-anchor="middle" class="tick">z${t + 1}</text>`);
    for (let j = 0; j < Math.min(ranks, s.tokens.length); j++) {
      const p = s.probs[j] as number;
      const tok = visibleToken(s.tokens[j] as string);
      const label = tok.length > 7 ? `${tok.slice(0, 6)}…` : tok;
      const dark = p > 0.45;
      parts.push(
        `<g class="cell"><title>${escapeXml(`step ${t + 1}, rank ${j + 1}: ${JSON.stringify(s.tokens[j])} p=${p.toFixed(4)}`)}</title>` +
          `<rect x="${x + 1}" y="${m.t + j * ch + 1}" width="${cw - 2}" height="${ch - 2}" fill="rgb(0,114,178)" fill-opacity="${Math.max(0.04, p).toFixed(3)}" data-p="${p.toFixed(4)}"/>` +
          `<text x="${x + cw / 2}" y="${m.t + j * ch + 13}" text-anchor="middle" class="tok"${dark ? ' fill="#fff"' : ''}>${escapeXml(label)}</text></g>`,
      );
    }
    const top = (s.probs[0] ?? 0) as number;
    const by = m.t + ranks * ch + 6;
    parts.push(
      `<rect x="${x + 1}" y="${by}" width="${((cw - 2) * top).toFixed(2)}" height="8" fill="#D55E00"><title>top-1 mass ${top.toFixed(4)}</title></rect>`,
      `<rect x="${x + 1}" y="${by}" width="${cw - 2}" height="8" fill="none" stroke="#ccc"/>`,
    );
  });
  parts.push(`<text x="4" y="${H - 6}" class="tick">rows: rank within the step's top-k; shade = probability; orange bar = top-1 mass</text>`, '</svg>');
  return parts.join('\n');
}

function statHtml(s: Stat, bold: boolean): string {
  const v = bold ? `<b>${formatValue(s.mean)}</b>` : formatValue(s.mean);
  return s.std === null ? v : `${v}<span class="std">±${formatStd(s.std)}</span>`;
}

/** Table 1 as an HTML table (same numbers and bolding as renderTable1Markdown). */
export function table1Html(table: Table1, labels: Readonly<Record<string, string>> = DATASET_LABELS): string {
  const best = (xs: Array<number | null>) => Math.max(...xs.map((x) => x ?? -Infinity));
  const many = table.rows.length > 1;
  const bestPass = table.datasets.map((_, j) => best(table.rows.map((r) => r.cells[j]?.pass1.mean ?? null)));
  const bestAvg = best(table.rows.map((r) => r.avgPass1));
  const bestRatio = best(table.rows.map((r) => r.ratio));
  const head1 =
    `<tr><th rowspan="2">Method</th>${table.datasets.map((d) => `<th colspan="2">${escapeXml(labels[d] ?? d)}</th>`).join('')}` +
    '<th rowspan="2">Avg P@1</th><th rowspan="2">Avg #L</th><th rowspan="2">P@1/#L</th></tr>';
  const head2 = `<tr>${table.datasets.map(() => '<th>P@1</th><th>#L</th>').join('')}</tr>`;
  const mark = (x: number | null, top: number) => (x === null ? '–' : many && x === top ? `<b>${formatValue(x)}</b>` : formatValue(x));
  const body = table.rows
    .map((r) => {
      const cells = r.cells
        .map((c, j) =>
          c === null ? '<td>–</td><td>–</td>' : `<td>${statHtml(c.pass1, many && c.pass1.mean === bestPass[j])}</td><td>${statHtml(c.latents, false)}</td>`,
        )
        .join('');
      return (
        `<tr><th class="method">${escapeXml(r.method)}</th>${cells}<td>${mark(r.avgPass1, bestAvg)}</td>` +
        `<td>${r.avgLatents === null ? '–' : formatValue(r.avgLatents)}</td><td>${mark(r.ratio, bestRatio)}</td></tr>`
      );
    })
    .join('\n');
  return `<table class="table1">\n<thead>${head1}${head2}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** A training metrics file for the curves: its label and records (`step` plus numeric fields). */
export interface MetricsCurves {
  label: string;
  records: ReadonlyArray<{ step: number; [key: string]: unknown }>;
}

/** A superposition picture of one problem. */
export interface SuperpositionExample {
  title: string;
  /** The problem text and the model's answer text, shown under the picture. */
  problem?: string;
  output?: string;
  steps: readonly SuperpositionStep[];
}

export interface ReportInput {
  title: string;
  summaries: readonly EvalSummary[];
  curves?: readonly MetricsCurves[];
  /** Metric keys charted against step, one chart each where present (default loss, ce, kl). */
  curveKeys?: readonly string[];
  superpositions?: readonly SuperpositionExample[];
  /** Extra lines for the notes section. */
  notes?: readonly string[];
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th.method{text-align:left}thead th{background:#f3f3f3;text-align:center}.std{color:#666;font-size:12px}
svg text{font-family:system-ui,sans-serif}svg .title{font-size:13px;font-weight:600}svg .tick{font-size:10px;fill:#444}
svg .axis{font-size:11px}svg .legend{font-size:11px}svg .tok{font-size:10px;font-family:ui-monospace,monospace}
.charts{display:flex;flex-wrap:wrap;gap:12px}.example{margin:12px 0;overflow-x:auto}
pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;font-size:12px;max-height:8em;overflow:auto}`;

/** The report as one self-contained HTML document. */
export function renderReportHtml(input: ReportInput): string {
  if (input.summaries.length === 0) throw inputError({ field: 'runs' }, 'no run summaries to report');
  const datasets = [...new Set(input.summaries.flatMap((s) => s.datasets))];
  const table = summarizeRuns(
    input.summaries.flatMap((s) => toRunResults(s.runs)),
    { datasets },
  );
  const html: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeXml(input.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeXml(input.title)}</h1>`,
    '<h2>Table 1</h2>',
    '<p>Pass@1 (%) and #L, mean±std over seeds (sample std); Avg over datasets; P@1/#L = Avg P@1 / Avg #L.</p>',
    table1Html(table),
  ];
  for (const s of input.summaries) {
    const ks = [...new Set(s.runs.flatMap((r) => Object.keys(r.ecr)))].sort((a, b) => Number(a) - Number(b));
    html.push(
      `<h3>${escapeXml(s.method)} <small>(${escapeXml(s.mode)}, ${escapeXml(s.model)})</small></h3>`,
      '<table class="runs"><thead><tr>' +
        ['dataset', 'seed', 'correct', 'Pass@1', '#L', 'truncated', ...ks.map((k) => `ECR@${k}`)].map((h) => `<th>${escapeXml(h)}</th>`).join('') +
        '</tr></thead><tbody>',
    );
    for (const r of s.runs) {
      html.push(
        `<tr><td>${escapeXml(r.dataset)}</td><td>${r.seed}</td><td>${r.correct}/${r.scored}</td><td>${formatValue(r.accuracy * 100)}</td>` +
          `<td>${statHtml(r.latents, false)}</td><td>${r.truncated}</td>${ks.map((k) => `<td>${r.ecr[k] ? r.ecr[k].mean.toFixed(3) : '–'}</td>`).join('')}</tr>`,
      );
    }
    html.push('</tbody></table>');
  }
  const keys = input.curveKeys ?? ['loss', 'ce', 'kl'];
  const curves = input.curves ?? [];
  if (curves.length > 0) {
    html.push('<h2>Training curves</h2>', '<div class="charts">');
    let drawn = 0;
    for (const key of keys) {
      const series = curves
        .map((c) => ({
          label: c.label,
          points: c.records.filter((r) => typeof r[key] === 'number' && Number.isFinite(r[key])).map((r) => [r.step, r[key] as number] as const),
        }))
        .filter((s) => s.points.length > 0);
      if (series.length === 0) continue;
      html.push(lineChartSvg({ title: `${key} vs step`, xLabel: 'step', yLabel: key, series }));
      drawn += 1;
    }
    html.push('</div>');
    if (drawn === 0) html.push(`<p>No ${keys.join(' / ')} values in the metrics files.</p>`);
  }
  const sups = input.superpositions ?? [];
  if (sups.length > 0) {
    html.push(
      '<h2>Latent superpositions</h2>',
      '<p>Per latent step z<sub>t</sub>, the top-k tokens of the distribution whose soft embedding was fed (hover a cell for the exact probability).</p>',
    );
    for (const ex of sups) {
      html.push('<div class="example">', superpositionSvg({ title: ex.title, steps: ex.steps }));
      if (ex.problem !== undefined) html.push(`<pre>${escapeXml(ex.problem)}</pre>`);
      if (ex.output !== undefined) html.push(`<pre>${escapeXml(ex.output)}</pre>`);
      html.push('</div>');
    }
  }
  const notes = [...new Set([...input.summaries.flatMap((s) => s.notes), ...(input.notes ?? [])])];
  if (notes.length > 0) html.push('<h2>Notes</h2>', '<ul>', ...notes.map((n) => `<li>${escapeXml(n)}</li>`), '</ul>');
  html.push('</body>', '</html>');
  return `${html.join('\n')}\n`;
}
