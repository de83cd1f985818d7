// Run statistics of evaluation rows, the summary and its Markdown, and summary.json validation.
import { describe, expect, it } from 'vitest';
import { buildSummary, parseSummary, renderSummariesMarkdown, runStats, type EvalRow } from './report.js';

function row(over: Partial<EvalRow>): EvalRow {
  return {
    dataset: 'svamp',
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

describe('runStats', () => {
  it('counts correct, truncated and unterminated rows, and averages #L, ECR and entropy over the rows that have them', () => {
    const rows = [
      row({ correct: true, latents: 3, latentStop: 'end', ecr: { '1': 1, '10': 2 }, latentEntropy: 0.2 }),
      row({ id: '1', latents: 5, latentStop: 'max', finishReason: 'length', ecr: { '1': 0.5, '10': 3 }, latentEntropy: 0.4 }),
      row({ id: '2', correct: true, latents: 4, latentStop: 'end', ecr: null }),
      row({ id: '3', latents: 0, endThink: false }),
    ];
    const s = runStats(rows, { method: 'M', dataset: 'svamp', seed: 7, generateMs: 12 });
    expect([s.scored, s.correct, s.accuracy, s.truncated, s.unterminated]).toEqual([4, 2, 0.5, 1, 2]);
    expect(s.latents.mean).toBe(3);
    expect(s.latents.std).toBeAllclose(Math.sqrt((0 + 4 + 1 + 9) / 3), { rtol: 1e-12 });
    expect(s.ecr).toEqual({ '1': { mean: 0.75, n: 2 }, '10': { mean: 2.5, n: 2 } });
    expect(Object.keys(s.ecr)).toEqual(['1', '10']);
    expect(s.latentEntropy).toBeAllclose(0.3, { rtol: 1e-12 });
    expect(() => runStats([], { method: 'M', dataset: 'svamp', seed: 1 })).toThrow('run M / svamp / seed 1 has no rows');
  });
});

describe('summary Markdown', () => {
  it('renders Table 1 over seeds and the per-run details', () => {
    const runs = [1, 2].map((seed) =>
      runStats([row({ seed, correct: true, latents: seed + 2 }), row({ seed, id: '1', correct: seed === 1, latents: 4 })], {
        method: 'Latent-SFT(4)',
        dataset: 'svamp',
        seed,
      }),
    );
    const s = buildSummary(
      {
        method: 'Latent-SFT(4)',
        mode: 'latent',
        model: '/ckpt',
        datasets: ['svamp'],
        seeds: [1, 2],
        sampling: { kind: 'top-p', temperature: 0.6, topP: 0.95 },
        extraction: 'lenient',
        notes: ['a note'],
      },
      runs,
    );
    // Pass@1 100 and 50 → 75.0 ± 35.4; #L 3.5 and 4 → 3.75 ± 0.35.
    expect(s.table.rows[0]!.cells[0]!.pass1.mean).toBe(75);
    const md = renderSummariesMarkdown([s], 'T');
    expect(md).toContain('| Latent-SFT(4) | 75.0±35.4 | 3.75±.4 | 75.0 | 3.75 | 20.0 |');
    expect(md).toContain('| svamp | 1 | 2/2 | 100 | 3.50±.7 | 0 | 0 | – |');
    expect(md).toContain('| svamp | 2 | 1/2 | 50.0 | 4.00±.0 | 0 | 0 | – |');
    expect(md).toContain('- mode: latent; sampling: top-p (T = 0.6, top_p = 0.95); seeds: 1, 2; extraction: lenient');
    expect(md).toContain('- a note');
  });

  it('carries the lenient rule and N_eff from the rows into the run statistics and the Markdown', () => {
    const rows = [
      row({ correct: true, lenientCorrect: true, latents: 2, parallelism: { nEff: 2, nEffNaive: 1.5, ratio: 4 / 3 } }),
      row({ id: '1', correct: false, lenientCorrect: true, latents: 2, parallelism: { nEff: 1, nEffNaive: 1.25, ratio: 0.8 } }),
      row({ id: '2', correct: false, lenientCorrect: false, latents: 2, parallelism: null }),
    ];
    const st = runStats(rows, { method: 'M', dataset: 'svamp', seed: 1 });
    expect(st.accuracy).toBeAllclose(1 / 3, { rtol: 1e-12 });
    expect(st.lenientAccuracy).toBeAllclose(2 / 3, { rtol: 1e-12 });
    // Means over the two rows that have N_eff: (2 + 1)/2, (1.5 + 1.25)/2, (4/3 + 0.8)/2.
    expect(st.parallelism).toEqual({ nEff: 1.5, nEffNaive: 1.375, ratio: (4 / 3 + 0.8) / 2, n: 2 });
    const s = buildSummary(
      {
        method: 'M',
        mode: 'latent',
        model: '/ckpt',
        datasets: ['svamp'],
        seeds: [1],
        sampling: { kind: 'greedy' },
        extraction: 'official',
        notes: [],
      },
      [st],
    );
    expect(s.table.rows[0]!.cells[0]!.lenient!.mean).toBeAllclose(200 / 3, { rtol: 1e-12 });
    const md = renderSummariesMarkdown([s], 'T');
    expect(md).toContain('| dataset | seed | correct | Pass@1 | lenient | #L | truncated | hit max-latent | mean H (nats) | N_eff | N_eff/naive |');
    expect(md).toContain('| svamp | 1 | 1/3 | 33.3 | 66.7 | 2.00±.0 | 0 | 0 | – | 1.500 (n=2) | 1.067 |');
    const plain = runStats([row({})], { method: 'M', dataset: 'svamp', seed: 1 });
    expect([plain.lenientAccuracy, plain.parallelism]).toEqual([undefined, undefined]);
  });

  it('validates summary.json in one line', () => {
    expect(() => parseSummary([], 's.json')).toThrow('s.json: expected a JSON object (an eval run summary)');
    expect(() => parseSummary({ method: 'M', mode: 'fast', datasets: [], runs: [] }, 's.json')).toThrow(
      "s.json: field 'mode': expected one of latent, explicit, no-cot",
    );
    expect(() => parseSummary({ method: 'M', mode: 'latent', datasets: ['svamp'], runs: [{ dataset: 'svamp' }] }, 's.json')).toThrow(
      "field 'runs[0]': expected {dataset, seed, accuracy, latents: {mean, std, n}, ...}",
    );
  });
});
