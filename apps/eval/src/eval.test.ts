// `eval run` / `eval report` end to end on the ORT CPU with a random-init tiny Llama whose vocabulary is
// the real Llama-3.2 tokenizer's (128256 ids, hidden 32, 1 layer) saved beside that tokenizer. Rows are
// checked against the eval package's extraction and equivalence, the tokenizer's prompt encoding and an
// independent ECR count; per-seed determinism, batch-size independence, reuse/overwrite rules and the
// report's table values and SVG elements are checked too.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@latent-sft/core';
import { loadDataset } from '@latent-sft/data';
import {
  type EvalRow,
  type EvalSummary,
  TokenText,
  buildRow,
  datasetAnswerKind,
  explicitReasoningLength,
  extractAnswer,
  findSubsequence,
  formatValue,
  isEquivalent,
} from '@latent-sft/eval';
import { writeLatentSpec } from '@latent-sft/latent';
import { promptIds } from '@latent-sft/pipeline';
import { THINK, type Tokenizer, encodeExample, latentMarkerIds } from '@latent-sft/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIntList, runCli } from './cli.js';
import { writeTinyLlama } from './tiny-model.testing.js';

const SLOW = 240_000;
let model: string;
let tok: Tokenizer;
const root = mkdtempSync(join(tmpdir(), 'eval-app-'));

/** A logger that keeps the messages (to see which runs were reused). */
function recordingLogger(): Logger & { messages: string[] } {
  const messages: string[] = [];
  const l = {
    messages,
    info: (_o: object, m?: string) => {
      if (m) messages.push(m);
    },
    warn: (_o: object, m?: string) => {
      if (m) messages.push(m);
    },
    error: (_o: object, m?: string) => {
      if (m) messages.push(m);
    },
    debug: () => {},
    child: () => l,
  };
  return l;
}

async function cli(argv: string[], logger: Logger = recordingLogger()): Promise<string> {
  let out = '';
  await runCli(
    argv,
    (t) => {
      out += t;
    },
    logger,
  );
  return out;
}

function rows(out: string, dataset: string, seed: number): EvalRow[] {
  return readFileSync(join(out, 'predictions', `${dataset}.seed-${seed}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EvalRow);
}

function summary(out: string): EvalSummary {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as EvalSummary;
}

const common = (out: string, limit = 5) => [
  'run',
  '--model',
  model,
  '--datasets',
  'gsm8k-aug-test',
  '--limit',
  String(limit),
  '--max-new-tokens',
  '6',
  '--out',
  out,
];

beforeAll(async () => {
  model = join(root, 'tiny-llama-128k');
  tok = await writeTinyLlama(model);
}, SLOW);

describe('eval run (latent)', () => {
  const out = join(root, 'latent');
  let rs: EvalRow[][];

  it(
    'writes 5 rows per seed whose answers, verdicts, prompts, superpositions and ECR are consistent',
    async () => {
      const printed = JSON.parse(
        await cli([...common(out), '--mode', 'latent', '--seeds', '1,2', '--max-latent', '4', '--batch-size', '3', '--method-name', 'Latent-SFT(4)']),
      ) as { runs: unknown[] };
      expect(printed.runs.length).toBe(2);
      for (const f of ['phase.json', 'config.json', 'summary.json', 'summary.md', 'report.html']) expect(existsSync(join(out, f))).toBe(true);
      const problems = loadDataset('gsm8k-aug-test').problems.slice(0, 5);
      rs = [rows(out, 'gsm8k-aug-test', 1), rows(out, 'gsm8k-aug-test', 2)];
      const endThink = latentMarkerIds(tok).endThink;
      for (const [s, seedRows] of rs.entries()) {
        expect(seedRows.map((r) => r.id)).toEqual(['0', '1', '2', '3', '4']);
        seedRows.forEach((r, i) => {
          const p = problems[i]!;
          expect(r.seed).toBe(s + 1);
          expect(r.gold).toBe(p.answer);
          // The prompt is the training sequence's prefix + <think> (the collators' head).
          const enc = encodeExample(tok, { problem: p.problem, cot: p.cot ?? '', answer: 'x' });
          expect(tok.encode(r.prompt.slice(0, -THINK.length)).concat(tok.encode(THINK))).toEqual(enc.ids.slice(0, enc.spans.think[1]));
          expect(r.promptTokens).toBe(enc.spans.think[1]);
          expect(r.output).toBe(tok.decode(r.outputIds));
          expect(r.outputIds.length).toBeLessThanOrEqual(6);
          expect(r.finishReason === 'length').toBe(r.outputIds.length === 6);
          // Correctness comes from the eval package's extraction and equivalence.
          expect(r.extracted).toBe(extractAnswer(r.output).answer);
          expect(r.correct).toBe(isEquivalent(r.extracted, r.gold, datasetAnswerKind('gsm8k-aug-test')));
          // #L = latent steps, each a top-10 superposition with decoded tokens and descending probabilities.
          expect(r.latents).toBe(r.latentSteps.length);
          expect(r.latents).toBeLessThanOrEqual(4);
          expect(r.latentStop).toBe(r.latents === 4 ? 'max' : 'end');
          for (const st of r.latentSteps) {
            expect(st.ids.length).toBe(10);
            expect(st.tokens).toEqual(st.ids.map((id) => tok.decode([id])));
            expect(st.probs.reduce((a, b) => a + b, 0)).toBeAllclose(1, { atol: 1e-5 });
            for (let j = 1; j < 10; j++) expect(st.probs[j]!).toBeLessThanOrEqual(st.probs[j - 1]!);
            expect(st.ids[0]).not.toBe(endThink[0]); // an argmax equal to the latent-end id ends the phase instead
          }
          // Entropy of the recorded top-10 distributions, recomputed here.
          const h = r.latentSteps.map((st) => -st.probs.reduce((a, q) => a + (q > 0 ? q * Math.log(q) : 0), 0));
          expect(r.latentEntropy).toBeAllclose(h.reduce((a, b) => a + b, 0) / h.length, { rtol: 1e-9 });
          // ECR@K: reference-CoT tokens (the equation CoT) inside the union of the latents' top-K ids, over #L.
          const ref = tok.encode(p.cot as string);
          for (const k of [1, 5, 10]) {
            const union = new Set(r.latentSteps.flatMap((st) => st.ids.slice(0, k)));
            expect(r.ecr![String(k)]).toBeAllclose(ref.filter((id) => union.has(id)).length / r.latents, { rtol: 1e-12 });
          }
        });
      }
      // Summary: per-run counts and the Table-1 cell (mean ± std over the two seeds).
      const s = summary(out);
      expect(s.method).toBe('Latent-SFT(4)');
      expect(s.runs.map((r) => [r.dataset, r.seed, r.scored])).toEqual([
        ['gsm8k-aug-test', 1, 5],
        ['gsm8k-aug-test', 2, 5],
      ]);
      const acc = rs.map((seedRows) => seedRows.filter((r) => r.correct).length / 5);
      const meanL = rs.map((seedRows) => seedRows.reduce((a, r) => a + r.latents, 0) / 5);
      expect(s.runs.map((r) => r.correct)).toEqual(rs.map((seedRows) => seedRows.filter((r) => r.correct).length));
      expect(s.runs.map((r) => r.accuracy)).toEqual(acc);
      expect(s.runs.map((r) => r.latents.mean)).toEqual(meanL);
      const cell = s.table.rows[0]!.cells[0]!;
      expect(cell.pass1.mean).toBeAllclose((acc[0]! + acc[1]!) * 50, { rtol: 1e-12 });
      expect(cell.latents.mean).toBeAllclose((meanL[0]! + meanL[1]!) / 2, { rtol: 1e-12 });
      expect(cell.latents.std).toBeAllclose(Math.abs(meanL[0]! - meanL[1]!) / Math.SQRT2, { atol: 1e-12 });
      const md = readFileSync(join(out, 'summary.md'), 'utf8');
      expect(md).toContain('| Method | GSM8k-Aug P@1 | lenient | #L | Avg P@1 | Avg #L | P@1/#L |');
      expect(md).toContain(`| Latent-SFT(4) | ${formatValue(cell.pass1.mean)}±`);
      expect(md).toContain('N_eff (effective global parallelism) not computed');
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toContain('<th class="method">Latent-SFT(4)</th>');
      expect(html.match(/<svg [^>]*class="superposition"/g)?.length).toBe(4);
    },
    SLOW,
  );

  it(
    'is deterministic per seed and independent of the batch size; seeds differ',
    async () => {
      const again = join(root, 'latent-again');
      await cli([...common(again), '--mode', 'latent', '--seeds', '2', '--max-latent', '4', '--batch-size', '3', '--method-name', 'Latent-SFT(4)']);
      expect(rows(again, 'gsm8k-aug-test', 2)).toEqual(rs[1]);
      // Another batch size: the same tokens and answers; probabilities up to fp32 batching noise of ORT's matmuls.
      const other = join(root, 'latent-batch2');
      await cli([...common(other), '--mode', 'latent', '--seeds', '2', '--max-latent', '4', '--batch-size', '2', '--method-name', 'Latent-SFT(4)']);
      const b2 = rows(other, 'gsm8k-aug-test', 2);
      const strip = (r: EvalRow) => ({ ...r, latentEntropy: null, latentSteps: r.latentSteps.map((st) => ({ ...st, probs: [] })) });
      expect(b2.map(strip)).toEqual(rs[1]!.map(strip));
      expect(b2.flatMap((r) => r.latentSteps.flatMap((st) => st.probs))).toBeAllclose(
        rs[1]!.flatMap((r) => r.latentSteps.flatMap((st) => st.probs)),
        { atol: 1e-6 },
      );
      // The latent phase is argmax-driven (same for both seeds); the sampled answers are not.
      expect(rs[0]!.map((r) => r.latentSteps)).toEqual(rs[1]!.map((r) => r.latentSteps));
      expect(rs[0]!.map((r) => r.outputIds)).not.toEqual(rs[1]!.map((r) => r.outputIds));
    },
    SLOW,
  );

  it(
    'reuses the rows of the same run, refuses a different one without --force, and replaces it with --force',
    async () => {
      const file1 = join(out, 'predictions', 'gsm8k-aug-test.seed-1.jsonl');
      const before = statSync(join(out, 'predictions', 'gsm8k-aug-test.seed-2.jsonl')).mtimeMs;
      // A stale verdict in a stored row (as left by an older checker) is judged again on reuse.
      const good = rows(out, 'gsm8k-aug-test', 1);
      writeFileSync(file1, good.map((r, i) => `${JSON.stringify(i === 0 ? { ...r, correct: !r.correct, lenientCorrect: !r.lenientCorrect } : r)}\n`).join(''));
      const log = recordingLogger();
      await cli([...common(out), '--mode', 'latent', '--seeds', '1,2', '--max-latent', '4', '--batch-size', '3', '--method-name', 'Latent-SFT(4)'], log);
      expect(log.messages.filter((m) => m === 'reusing the generations of the same run (re-scored)').length).toBe(2);
      expect(rows(out, 'gsm8k-aug-test', 1)).toEqual(good);
      expect(statSync(join(out, 'predictions', 'gsm8k-aug-test.seed-2.jsonl')).mtimeMs).toBe(before);
      const other = [...common(out), '--mode', 'latent', '--seeds', '1', '--max-latent', '2', '--method-name', 'Latent-SFT(4)'];
      await expect(cli(other)).rejects.toThrow(
        /holds a different eval run \(config [0-9a-f]{12} ≠ [0-9a-f]{12}\); choose another output dir or pass --force to replace it/,
      );
      const stray = join(root, 'stray');
      mkdirSync(stray);
      writeFileSync(join(stray, 'notes.txt'), 'x');
      await expect(cli([...common(stray), '--seeds', '1'])).rejects.toThrow('not empty and holds no phase run (notes.txt)');
      await cli([...common(out, 2), '--mode', 'latent', '--seeds', '1', '--max-latent', '2', '--method-name', 'Latent-SFT(4)', '--force']);
      const s = summary(out);
      expect(s.runs.map((r) => [r.seed, r.scored])).toEqual([[1, 2]]);
      expect(existsSync(join(out, 'predictions', 'gsm8k-aug-test.seed-2.jsonl'))).toBe(false);
      expect(Math.max(...rows(out, 'gsm8k-aug-test', 1).map((r) => r.latents))).toBeLessThanOrEqual(2);
    },
    SLOW,
  );
});

describe('eval run (latent) follows the latent spec of the model folder', () => {
  it(
    'takes top-k from latent.json, refuses a --latent-top-k that differs, and reads the legacy {kind, r} form',
    async () => {
      const spec = join(root, 'spec-model');
      cpSync(model, spec, { recursive: true });
      writeLatentSpec(spec, { kind: 'soft-topk', compressionRate: 4, topK: 3, ltim: true, ltsum: true });
      const args = [
        'run',
        '--model',
        spec,
        '--datasets',
        'gsm8k-aug-test',
        '--limit',
        '2',
        '--max-new-tokens',
        '2',
        '--max-latent',
        '2',
        '--seeds',
        '1',
        '--greedy',
      ];
      await cli([...args, '--ecr-k', '1,3', '--out', join(root, 'spec-eval')]);
      const rr = rows(join(root, 'spec-eval'), 'gsm8k-aug-test', 1);
      expect(rr.flatMap((r) => r.latentSteps).every((st) => st.ids.length === 3)).toBe(true);
      expect(rr.some((r) => r.latentSteps.length > 0)).toBe(true);
      expect(summary(join(root, 'spec-eval')).notes[0]).toBe(
        'Latent kind: soft-topk (latent.json; compression rate 4, top-k 3): each latent step feeds the top-k soft embedding of its logits.',
      );
      await expect(cli([...args, '--ecr-k', '1', '--latent-top-k', '5', '--out', join(root, 'spec-x')])).rejects.toThrow(
        `latent spec mismatch: eval run --latent-top-k sets topK = 5 but ${join(spec, 'latent.json')} records 3; drop the field to use the recorded value`,
      );
      await expect(cli([...args, '--out', join(root, 'spec-y')])).rejects.toThrow('K = 5 exceeds the latent top-k 3');
      expect(existsSync(join(root, 'spec-x')) || existsSync(join(root, 'spec-y'))).toBe(false);
      writeFileSync(join(spec, 'latent.json'), JSON.stringify({ kind: 'soft', r: 4 }));
      await cli([...args, '--ecr-k', '1', '--out', join(root, 'spec-legacy')]);
      expect(summary(join(root, 'spec-legacy')).notes[0]).toMatch(
        /^Latent kind: soft-topk \(latent.json, legacy \{kind, r\} form: top-k 10, LTIM and LTSuM assumed; compression rate 4, top-k 10\)/,
      );
    },
    SLOW,
  );
});

describe('eval run (explicit) and eval report', () => {
  const out = join(root, 'explicit');

  it(
    'counts #L up to </think> (or the whole output), judges with the eval checker, and reports both runs',
    async () => {
      await cli([...common(out), '--mode', 'explicit', '--seeds', '1,2', '--max-latent', '4', '--method-name', 'CoT-SFT']);
      for (const seed of [1, 2]) {
        const rr = rows(out, 'gsm8k-aug-test', seed);
        expect(rr.length).toBe(5);
        for (const r of rr) {
          expect(r.latentSteps).toEqual([]);
          expect(r.ecr).toBeNull();
          expect(r.outputIds.length).toBeLessThanOrEqual(4 + 6); // CoT + answer share max-latent + max-new-tokens
          const at = findSubsequence(r.outputIds, latentMarkerIds(tok).endThink);
          expect(r.latents).toBe(at >= 0 ? at : r.endThink ? r.latents : r.outputIds.length);
          expect(r.correct).toBe(isEquivalent(extractAnswer(r.output).answer, r.gold, 'numeric'));
        }
      }
      const metrics = join(root, 'train', 'metrics.jsonl');
      mkdirSync(join(root, 'train'));
      writeFileSync(
        metrics,
        [
          { step: 1, epoch: 0, loss: 2.5, ce: 2.0, kl: 0.5 },
          { step: 2, epoch: 0, loss: 2.0, ce: 1.7, kl: 0.3 },
          { step: 3, epoch: 0, loss: 1.5, ce: 1.3, kl: 0.2 },
        ]
          .map((r) => `${JSON.stringify(r)}\n`)
          .join(''),
      );
      const html = join(root, 'report', 'report.html');
      const printed = JSON.parse(
        await cli(['report', '--runs', `${join(root, 'latent-again')},${out}`, '--metrics', metrics, '--out', html, '--examples', '2']),
      );
      expect(printed).toEqual({ html, markdown: join(root, 'report', 'report.md') });
      const text = readFileSync(html, 'utf8');
      const latent = summary(join(root, 'latent-again'));
      const cot = summary(out);
      // Table values of both methods (one column: GSM8k-Aug).
      for (const s of [latent, cot]) {
        const row = s.table.rows[0]!;
        expect(text).toContain(`<th class="method">${s.method}</th>`);
        expect(text).toContain(`<td>${formatValue(row.avgLatents!)}</td>`);
      }
      const cotL = cot.table.rows[0]!.cells[0]!.latents;
      expect(text).toContain(`${formatValue(cotL.mean)}<span class="std">±`);
      // Curves: loss, ce, kl (one polyline each) with the metric points; 2 superposition pictures; no scripts or remote assets.
      expect(text.match(/<polyline class="series"/g)?.length).toBe(3);
      expect(text).toContain('aria-label="kl vs step"');
      expect(text.match(/<svg [^>]*class="superposition"/g)?.length).toBe(2);
      expect(text.match(/<g class="cell">/g)?.length).toBe(
        rows(join(root, 'latent-again'), 'gsm8k-aug-test', 2)
          .slice(0, 2)
          .reduce((a, r) => a + r.latentSteps.length * 10, 0),
      );
      expect(text).not.toMatch(/<script|<link|src="http|href="http/);
      const md = readFileSync(join(root, 'report', 'report.md'), 'utf8');
      expect(md).toContain('| Method | GSM8k-Aug P@1 | lenient | #L | Avg P@1 | Avg #L | P@1/#L |');
      expect(md).toContain('| Latent-SFT(4) |');
      expect(md).toContain('| CoT-SFT |');
      expect(md).toContain('| train/metrics.jsonl | 3 | 1 | 3 | 2.500 | 1.500 |');
    },
    SLOW,
  );
});

describe('buildRow', () => {
  it('judges a right and a wrong answer, and counts ECR from the reference CoT', () => {
    const [p0] = loadDataset('gsm8k-aug-test').problems; // gold 18, CoT <<16-3-4=9>> <<9*2=18>>
    const text = new TokenText(tok);
    const ctx = { tok, text, mode: 'latent' as const, seed: 1, endThinkIds: latentMarkerIds(tok).endThink, ecrK: [1, 2], extraction: 'lenient' as const };
    const cot = tok.encode(p0!.cot!);
    const steps = [
      { ids: [cot[0]!, 7], probs: [0.75, 0.25] },
      { ids: [8, cot[1]!], probs: [0.5, 0.5] },
    ];
    const result = (answer: string) => ({
      latentCount: 2,
      latentTopK: steps,
      latentStop: 'end' as const,
      outputIds: tok.encode(answer),
      finishReason: 'stop' as const,
      stopId: 128009,
    });
    const right = buildRow(ctx, p0!, promptIds(tok, p0!), result('The answer is \\boxed{18}.'));
    expect([right.extracted, right.source, right.correct, right.match]).toEqual(['18', 'boxed', true, 'number']);
    const wrong = buildRow(ctx, p0!, promptIds(tok, p0!), result('The answer is \\boxed{17}.'));
    expect([wrong.extracted, wrong.correct]).toEqual(['17', false]);
    // Top-1 union {cot[0], 8}; top-2 union adds 7 and cot[1]: covered reference positions / #L.
    const count = (ids: number[]) => cot.filter((id) => ids.includes(id)).length;
    expect(right.ecr).toEqual({ '1': count([cot[0]!, 8]) / 2, '2': count([cot[0]!, 7, 8, cot[1]!]) / 2 });
    expect(right.ecr!['2']!).toBeGreaterThan(right.ecr!['1']!);
    expect(right.latentEntropy).toBeAllclose((-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)) + Math.log(2)) / 2, { rtol: 1e-12 });
  });
});

describe('explicit #L and parsing helpers', () => {
  it('counts the tokens before </think>, as trained ids or merged into another piece', () => {
    const text = new TokenText(tok);
    const end = latentMarkerIds(tok).endThink;
    expect(end).toEqual([524, 27963, 29]);
    const ids = [...tok.encode('a b c'), ...end, ...tok.encode(' 42')];
    expect(explicitReasoningLength(ids, end, text)).toEqual({ latents: 3, endThink: true });
    // '5.</think>' in one string is [20, 4005 ('.</'), 27963, 29]: the marker starts inside token 1.
    const merged = tok.encode('5.</think> 7');
    expect(merged.slice(0, 4)).toEqual([20, 4005, 27963, 29]);
    expect(explicitReasoningLength(merged, end, text)).toEqual({ latents: 1, endThink: true });
    const none = tok.encode('no marker here');
    expect(explicitReasoningLength(none, end, text)).toEqual({ latents: none.length, endThink: false });
    expect(text.text([9906, 128300, 1917])).toBe('Hello⟨128300⟩ world');
  });

  it('rejects bad lists and flags in one line', async () => {
    expect(parseIntList('1, 2,3', '--seeds', 0)).toEqual([1, 2, 3]);
    expect(() => parseIntList('1,x', '--seeds', 0)).toThrow(`field '--seeds': 'x' is not an integer >= 0`);
    expect(() => parseIntList('1,1', '--seeds', 0)).toThrow('1 is listed twice');
    const out = join(root, 'never');
    await expect(cli([...common(out), '--greedy', '--temperature', '0.5'])).rejects.toThrow('give either --greedy or --temperature/--top-p, not both');
    await expect(cli(['run', '--model', model, '--datasets', 'gsm9k', '--out', out])).rejects.toThrow(`unknown dataset 'gsm9k'`);
    await expect(cli([...common(out), '--ecr-k', '20'])).rejects.toThrow('K = 20 exceeds the latent top-k 10 (only the top-10 of each latent is recorded)');
    await expect(cli([...common(out), '--bogus', '1'])).rejects.toThrow(/bogus/);
    await expect(cli(['report', '--runs', join(root, 'nope'), '--out', join(root, 'r.html')])).rejects.toThrow(
      'summary.json: not found: not an eval run folder',
    );
    const e: unknown = await cli(['run', '--out', out]).then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as Error).message).not.toContain('\n');
    expect(existsSync(out)).toBe(false);
  });
});
