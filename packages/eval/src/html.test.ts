// The HTML report pieces: tick values, chart coordinates, heat cells, the Table-1 HTML table (same
// numbers and bolding as the Markdown), escaping, and a whole self-contained document.
import { describe, expect, it } from 'vitest';
import { escapeXml, lineChartSvg, niceTicks, renderReportHtml, superpositionSvg, table1Html, visibleToken } from './html.js';
import { buildSummary, runStats, type EvalRow } from './report.js';
import { summarizeRuns } from './table.js';

function row(over: Partial<EvalRow>): EvalRow {
  return {
    dataset: 'gsm8k-aug-test',
    id: '0',
    index: 0,
    seed: 1,
    prompt: 'p',
    promptTokens: 1,
    output: '',
    outputIds: [],
    latents: 0,
    latentStop: null,
    endThink: null,
    latentSteps: [],
    latentEntropy: null,
    finishReason: 'stop',
    gold: '1',
    extracted: null,
    source: null,
    correct: false,
    match: 'none',
    ecr: null,
    ...over,
  };
}

describe('niceTicks', () => {
  it('steps by 1, 2 or 5 × 10^k inside the range', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(1.3, 2.71, 5)).toEqual([1.5, 2, 2.5]); // raw step 0.282 → 0.5
    expect(niceTicks(0, 1000, 4)).toEqual([0, 500, 1000]);
    expect(niceTicks(3, 3)).toEqual([3]);
    expect(() => niceTicks(2, 1)).toThrow('max 1 < min 2');
  });
});

describe('lineChartSvg', () => {
  it('maps the data range onto the plot box and skips non-finite points', () => {
    const svg = lineChartSvg({
      title: 'loss vs step',
      xLabel: 'step',
      yLabel: 'loss',
      width: 564,
      height: 300,
      series: [
        {
          label: 'a',
          points: [
            [0, 1],
            [10, 3],
            [5, Number.NaN],
          ],
        },
        { label: 'b & c', points: [[5, 2]] },
      ],
    });
    // Plot box: x 64..548 (width 484), y 28..256 (height 228); x 0→64, 10→548; y 1→256, 3→28, 2→142.
    expect(svg).toContain('points="64.00,256.00 548.00,28.00"');
    expect(svg).toContain('points="306.00,142.00"');
    expect(svg).toContain('<circle cx="306.00" cy="142.00" r="3"');
    expect(svg).toContain('>b &amp; c</text>');
    expect(svg.match(/<polyline/g)?.length).toBe(2);
    expect(() => lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 'a', points: [[1, Number.NaN]] }] })).toThrow(
      "field 't': no finite points to plot",
    );
  });
});

describe('superpositionSvg', () => {
  it('draws one cell per (step, rank) shaded by probability, with escaped visible tokens', () => {
    const svg = superpositionSvg({
      title: 'ex',
      steps: [
        { tokens: [' 4', '<', '\n'], probs: [0.7, 0.2, 0.1] },
        { tokens: ['x', 'y', 'z'], probs: [0.5, 0.3, 0.2] },
      ],
    });
    expect(svg.match(/<g class="cell">/g)?.length).toBe(6);
    expect([...svg.matchAll(/data-p="([0-9.]+)"/g)].map((m) => Number(m[1]))).toEqual([0.7, 0.2, 0.1, 0.5, 0.3, 0.2]);
    expect(svg).toContain('fill-opacity="0.700"');
    expect(svg).toContain('>␣4</text>');
    expect(svg).toContain('>&lt;</text>');
    expect(svg).toContain('>⏎</text>');
    expect(svg).toContain('<title>top-1 mass 0.7000</title>');
    expect(superpositionSvg({ title: 't', steps: Array.from({ length: 30 }, () => ({ tokens: ['a'], probs: [1] })) })).toContain('(first 24 of 30 steps)');
    expect(() => superpositionSvg({ title: 't', steps: [{ tokens: ['a'], probs: [0.5, 0.5] }] })).toThrow('1 tokens but 2 probabilities');
  });

  it('makes whitespace visible and escapes markup', () => {
    expect(visibleToken('  a b\t')).toBe('␣␣a b⇥');
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('table1Html', () => {
  it('shows the Table-1 numbers, bolds the best P@1, Avg and ratio, and marks missing cells', () => {
    const t = summarizeRuns(
      [
        { method: 'CoT-SFT', dataset: 'gsm8k-aug-test', seed: 1, accuracy: 0.494, meanLatents: 25.6 },
        { method: 'CoT-SFT', dataset: 'svamp', seed: 1, accuracy: 0.598, meanLatents: 12.1 },
        { method: 'Latent-SFT(4)', dataset: 'gsm8k-aug-test', seed: 1, accuracy: 0.44, meanLatents: 6.6 },
        { method: 'Latent-SFT(4)', dataset: 'gsm8k-aug-test', seed: 2, accuracy: 0.452, meanLatents: 6.68 },
      ],
      { datasets: ['gsm8k-aug-test', 'svamp'] },
    );
    const html = table1Html(t);
    expect(html).toContain('<th colspan="2">GSM8k-Aug</th><th colspan="2">SVAMP</th>');
    expect(html).toContain(
      '<tr><th class="method">CoT-SFT</th><td><b>49.4</b></td><td>25.6</td><td><b>59.8</b></td><td>12.1</td><td><b>54.6</b></td><td>18.9</td><td><b>2.90</b></td></tr>',
    );
    // Latent-SFT(4): 44.6 ± 0.85 over two seeds, #L 6.64 ± 0.057; no SVAMP run → '–' and no averages.
    expect(html).toContain(
      '<tr><th class="method">Latent-SFT(4)</th><td>44.6<span class="std">±.8</span></td><td>6.64<span class="std">±.1</span></td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td></tr>',
    );
  });
});

describe('renderReportHtml', () => {
  it('is one self-contained document with the table, the curves, the superpositions and the notes', () => {
    const rows = [
      row({
        id: '0',
        correct: true,
        latents: 2,
        latentStop: 'end',
        latentEntropy: 0.5,
        ecr: { '1': 1.5 },
        latentSteps: [
          { ids: [1, 2], tokens: ['a', 'b'], probs: [0.9, 0.1] },
          { ids: [3, 4], tokens: ['c', 'd'], probs: [0.6, 0.4] },
        ],
      }),
      row({ id: '1', index: 1, latents: 4, latentStop: 'max', finishReason: 'length', ecr: { '1': 0.5 } }),
    ];
    const s = buildSummary(
      {
        method: 'Latent-SFT(2)',
        mode: 'latent',
        model: '/m',
        datasets: ['gsm8k-aug-test'],
        seeds: [1],
        sampling: { kind: 'greedy' },
        extraction: 'lenient',
        notes: ['N_eff not computed <here>'],
      },
      [runStats(rows, { method: 'Latent-SFT(2)', dataset: 'gsm8k-aug-test', seed: 1 })],
    );
    const html = renderReportHtml({
      title: 'R',
      summaries: [s],
      curves: [
        {
          label: 'phase2',
          records: [
            { step: 1, loss: 3, kl: 1 },
            { step: 2, loss: 2, kl: 0.5 },
            { step: 3, lr: 1e-4 },
          ],
        },
      ],
      superpositions: [{ title: 'p0', steps: rows[0]!.latentSteps, problem: 'What is 1+1?', output: '\\boxed{2}' }],
    });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<td>50.0</td><td>3.00</td><td>16.7</td>'); // Avg P@1 50.0, Avg #L 3.00, ratio 16.7
    expect(html).toContain('<td>1/2</td><td>50.0</td><td>3.00<span class="std">±1.4</span></td><td>1</td><td>1.000</td>'); // per-run row with ECR@1
    expect(html).toContain('aria-label="loss vs step"');
    expect(html).toContain('aria-label="kl vs step"');
    expect(html).not.toContain('aria-label="ce vs step"');
    expect(html.match(/<g class="cell">/g)?.length).toBe(4);
    expect(html).toContain('<li>N_eff not computed &lt;here&gt;</li>');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    expect(() => renderReportHtml({ title: 'R', summaries: [] })).toThrow('no run summaries to report');
  });
});
