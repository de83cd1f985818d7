import { describe, expect, it } from 'vitest';
import { formatStd, formatValue, meanStd, renderTable1Markdown, summarizeRuns, type RunResult } from './table.js';

const DATASETS = ['gsm8k-aug-test', 'gsm-hard', 'svamp', 'multiarith'];
// Spec §7 Table 1, CoT-SFT row: P@1 49.4 / 11.9 / 59.8 / 93.2, #L 25.6 / 34.2 / 12.1 / 13.7 (single values).
const COT_SFT: Array<[string, number, number]> = [
  ['gsm8k-aug-test', 0.494, 25.6],
  ['gsm-hard', 0.119, 34.2],
  ['svamp', 0.598, 12.1],
  ['multiarith', 0.932, 13.7],
];

describe('meanStd and number format', () => {
  it('uses the sample standard deviation', () => {
    const s = meanStd([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeAllclose(Math.sqrt(5 / 3), { rtol: 1e-12 });
    expect(meanStd([7])).toEqual({ mean: 7, std: null, n: 1 });
  });

  it('prints three significant digits and spreads without a leading zero', () => {
    expect([49.4, 3.87, 0, 6, 10.04, 9.3716].map(formatValue)).toEqual(['49.4', '3.87', '0.00', '6.00', '10.0', '9.37']);
    expect([0.7, 0.04, 1.19].map(formatStd)).toEqual(['.7', '.0', '1.2']);
  });
});

describe('summarizeRuns', () => {
  it('reproduces the CoT-SFT row: Avg P@1 53.6, Avg #L 21.4, P@1/#L 2.50', () => {
    const runs: RunResult[] = COT_SFT.map(([dataset, accuracy, meanLatents]) => ({ method: 'CoT-SFT', dataset, seed: 0, accuracy, meanLatents }));
    const t = summarizeRuns(runs, { datasets: DATASETS });
    const row = t.rows[0]!;
    expect(row.avgPass1).toBeAllclose(53.575, { rtol: 1e-12 });
    expect(row.avgLatents).toBeAllclose(21.4, { rtol: 1e-12 });
    expect(row.ratio).toBeAllclose(53.575 / 21.4, { rtol: 1e-12 });
    expect(renderTable1Markdown(t)).toBe(
      '| Method | GSM8k-Aug P@1 | #L | GSM-Hard P@1 | #L | SVAMP P@1 | #L | MultiArith P@1 | #L | Avg P@1 | Avg #L | P@1/#L |\n' +
        '|---|---|---|---|---|---|---|---|---|---|---|---|\n' +
        '| CoT-SFT | 49.4 | 25.6 | 11.9 | 34.2 | 59.8 | 12.1 | 93.2 | 13.7 | 53.6 | 21.4 | 2.50 |\n',
    );
  });

  it('aggregates seeds with mean ± sample std, bolds the best and shows – for #L = 0 or missing data', () => {
    const runs: RunResult[] = [];
    for (const [dataset, accuracy, meanLatents] of COT_SFT) {
      // Three seeds around the spec's values: mean = value, sample std = 0.7 points / 0.1 latents.
      [-1, 0, 1].forEach((d, seed) =>
        runs.push({
          method: 'CoT-SFT',
          dataset,
          seed,
          accuracy: accuracy + d * 0.007,
          meanLatents: meanLatents + d * 0.1,
        }),
      );
      runs.push({ method: 'iCoT', dataset, seed: 0, accuracy: accuracy / 2, meanLatents: 0 });
    }
    runs.push({ method: 'Partial', dataset: 'svamp', seed: 0, accuracy: 0.1, meanLatents: 3 });
    const md = renderTable1Markdown(summarizeRuns(runs, { datasets: DATASETS })).split('\n');
    expect(md[2]).toBe(
      '| CoT-SFT | **49.4**±.7 | 25.6±.1 | **11.9**±.7 | 34.2±.1 | **59.8**±.7 | 12.1±.1 | **93.2**±.7 | 13.7±.1 | **53.6** | 21.4 | **2.50** |',
    );
    expect(md[3]).toBe('| iCoT | 24.7 | 0.00 | 5.95 | 0.00 | 29.9 | 0.00 | 46.6 | 0.00 | 26.8 | 0.00 | – |');
    expect(md[4]).toBe('| Partial | – | – | – | – | 10.0 | 3.00 | – | – | – | – | – |');
  });

  it('shows the lenient rule in its own column beside the official Pass@1', () => {
    // Two seeds: official 40 % and 50 % (mean 45, std √50 = 7.07), lenient 60 % and 80 % (mean 70, std 14.1).
    const runs: RunResult[] = [
      { method: 'Latent-SFT', dataset: 'svamp', seed: 0, accuracy: 0.4, lenientAccuracy: 0.6, meanLatents: 4 },
      { method: 'Latent-SFT', dataset: 'svamp', seed: 1, accuracy: 0.5, lenientAccuracy: 0.8, meanLatents: 4 },
      { method: 'CoT-SFT', dataset: 'svamp', seed: 0, accuracy: 0.3, meanLatents: 10 },
    ];
    const t = summarizeRuns(runs);
    expect(t.rows[0]!.cells[0]!.lenient!.mean).toBeAllclose(70, { rtol: 1e-12 });
    expect(t.rows[1]!.cells[0]!.lenient).toBeNull();
    expect(renderTable1Markdown(t).split('\n').slice(0, 4)).toEqual([
      '| Method | SVAMP P@1 | lenient | #L | Avg P@1 | Avg #L | P@1/#L |',
      '|---|---|---|---|---|---|---|',
      '| Latent-SFT | **45.0**±7.1 | 70.0±14.1 | 4.00±.0 | **45.0** | 4.00 | **11.3** |',
      '| CoT-SFT | 30.0 | – | 10.0 | 30.0 | 10.0 | 3.00 |',
    ]);
    expect(() => summarizeRuns([{ ...runs[0]!, lenientAccuracy: 2 }])).toThrow("field 'lenientAccuracy': run 1: expected a fraction in [0, 1], got 2");
  });

  it('rejects duplicate runs and accuracies outside [0, 1]', () => {
    const r: RunResult = { method: 'm', dataset: 'svamp', seed: 1, accuracy: 0.5, meanLatents: 2 };
    expect(() => summarizeRuns([r, { ...r }])).toThrow("field 'seed': run 2: duplicate run: m on svamp with seed 1");
    expect(() => summarizeRuns([r, { ...r }], { file: 'runs.jsonl' })).toThrow("runs.jsonl:2: field 'seed': duplicate run");
    expect(() => summarizeRuns([{ ...r, accuracy: 55 }])).toThrow("field 'accuracy': run 1: expected a fraction in [0, 1], got 55");
  });
});
