// --datasets with the generated multiplication test sets: parsing, loading, and `eval run` end to end on
// the ORT CPU over multiplication-2x2 with the same random-init tiny Llama (real Llama-3.2 tokenizer)
// as eval.test.ts.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@latent-sft/core';
import { multiplicationCot, multiplicationSplit, multiplicationTestSet } from '@latent-sft/data';
import { type EvalRow, type EvalSummary, datasetAnswerKind, extractAnswer, isEquivalent, loadEvalDataset, parseEvalDataset } from '@latent-sft/eval';
import type { Tokenizer } from '@latent-sft/tokenizer';
import { oneLineError } from '@latent-sft/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { writeTinyLlama } from './tiny-model.testing.js';
import { parseDatasets } from './cli.js';

const SLOW = 240_000;

const message = oneLineError;

describe('parseDatasets with multiplication test sets', () => {
  it('accepts multiplication-<A>x<B> next to the file-backed names', () => {
    expect(parseDatasets('multiplication-3x3')).toEqual(['multiplication-3x3']);
    expect(parseDatasets('gsm8k-aug-test, multiplication-2x5,svamp')).toEqual(['gsm8k-aug-test', 'multiplication-2x5', 'svamp']);
    expect(parseEvalDataset('multiplication-12x1')).toBe('multiplication-12x1');
  });

  it('rejects malformed names, zero or too many digits, and duplicates in one line', () => {
    const syntax = 'expected multiplication-<A>x<B> with digit counts A, B in [1, 1000] (e.g. multiplication-3x3)';
    expect(message(() => parseDatasets('multiplication-0x3'))).toBe(`field '--datasets': bad dataset 'multiplication-0x3'; ${syntax}`);
    expect(message(() => parseDatasets('multiplication-3'))).toBe(`field '--datasets': bad dataset 'multiplication-3'; ${syntax}`);
    expect(message(() => parseDatasets('gsm8k-test,multiplication'))).toBe(`field '--datasets': bad dataset 'multiplication'; ${syntax}`);
    expect(message(() => parseDatasets('multiplication-1001x2'))).toMatch(/bad dataset 'multiplication-1001x2'/);
    expect(message(() => parseDatasets('multiplication-3x3,multiplication-3x3'))).toBe(`field '--datasets': 'multiplication-3x3' is listed twice`);
    expect(message(() => parseDatasets('mult-3x3'))).toMatch(
      /^field '--datasets': unknown dataset 'mult-3x3'; expected one of gsm8k-train, .*, multiplication-<A>x<B>$/,
    );
  });

  it('loads the test set (a prefix under --limit) with integer answers and the partial-product CoT', () => {
    const all = loadEvalDataset('multiplication-3x3');
    expect(all).toEqual(multiplicationTestSet(3, 3));
    expect(all.length).toBe(1000);
    expect(loadEvalDataset('multiplication-3x3', { limit: 7 })).toEqual(all.slice(0, 7));
    expect(loadEvalDataset('multiplication-2x2').length).toBe(818); // every 2x2 test problem (fewer than 1000 exist)
    for (const p of all.slice(0, 50)) {
      const [a, b] = /^What is (\d+) \* (\d+)\?$/.exec(p.problem)!.slice(1).map(BigInt) as [bigint, bigint];
      expect(multiplicationSplit(a, b)).toBe('test');
      expect(p.cot).toBe(multiplicationCot(a, b));
      expect(p.answer).toBe(String(a * b));
      expect(datasetAnswerKind(p.dataset)).toBe('integer');
    }
    expect(loadEvalDataset('gsm8k-aug-test', { limit: 3 }).map((p) => p.dataset)).toEqual(['gsm8k-aug-test', 'gsm8k-aug-test', 'gsm8k-aug-test']);
  });
});

describe('eval run on multiplication-2x2 (CPU, tiny random model)', () => {
  const root = mkdtempSync(join(tmpdir(), 'eval-mult-'));
  let model: string;
  let tok: Tokenizer;
  const logger: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, child: () => logger };

  beforeAll(async () => {
    model = join(root, 'tiny-llama-128k');
    tok = await writeTinyLlama(model);
  }, SLOW);

  it(
    'writes 4 integer-judged rows with ECR against the partial-product CoT, and a summary column multiplication-2x2',
    async () => {
      const out = join(root, 'run');
      let printed = '';
      await runCli(
        [
          'run',
          '--model',
          model,
          '--datasets',
          'multiplication-2x2',
          '--limit',
          '4',
          '--max-new-tokens',
          '6',
          '--mode',
          'latent',
          '--seeds',
          '1',
          '--max-latent',
          '4',
          '--out',
          out,
          '--method-name',
          'Latent-SFT(4)',
        ],
        (t) => {
          printed += t;
        },
        logger,
      );
      expect((JSON.parse(printed) as { runs: Array<{ dataset: string }> }).runs.map((r) => r.dataset)).toEqual(['multiplication-2x2']);
      const problems = multiplicationTestSet(2, 2).slice(0, 4);
      const rows = readFileSync(join(out, 'predictions', 'multiplication-2x2.seed-1.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as EvalRow);
      expect(rows.map((r) => r.id)).toEqual(['0', '1', '2', '3']);
      rows.forEach((r, i) => {
        const p = problems[i]!;
        expect(r.dataset).toBe('multiplication');
        expect(r.gold).toBe(p.answer);
        expect(r.prompt).toContain(p.problem);
        expect(r.extracted).toBe(extractAnswer(r.output).answer);
        expect(r.correct).toBe(isEquivalent(r.extracted, r.gold, 'integer'));
        expect(r.latents).toBeLessThanOrEqual(4);
        if (r.latents > 0) {
          const ref = tok.encode(p.cot as string);
          for (const k of [1, 5, 10]) {
            const union = new Set(r.latentSteps.flatMap((st) => st.ids.slice(0, k)));
            expect(r.ecr![String(k)]).toBeAllclose(ref.filter((id) => union.has(id)).length / r.latents, { rtol: 1e-12 });
          }
        } else expect(r.ecr).toBeNull();
      });
      expect(rows.some((r) => r.ecr !== null)).toBe(true);
      const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as EvalSummary;
      expect(s.datasets).toEqual(['multiplication-2x2']);
      expect(s.runs.map((r) => [r.dataset, r.seed, r.scored, r.correct])).toEqual([['multiplication-2x2', 1, 4, rows.filter((r) => r.correct).length]]);
      expect(s.notes.join('\n')).toContain('per problem with #L ≥ 1 and a reference CoT (multiplication-2x2)');
      expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| Method | multiplication-2x2 P@1 | lenient | #L |');
    },
    SLOW,
  );
});
