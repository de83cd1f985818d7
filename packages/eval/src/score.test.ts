import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Problem } from '@latent-sft/data';
import { describe, expect, it } from 'vitest';
import { parsePredictionsJsonl, readPredictionsJsonl, scorePredictions, verdictsToJsonl } from './score.js';

function problem(index: number, answer: string, id = String(index)): Problem {
  return { dataset: 'svamp', id, index, problem: `q${index}`, cot: null, solution: null, answer };
}
const problems = [problem(0, '51', 'chal-1'), problem(1, '3.5', 'chal-2'), problem(2, '-9867630', 'chal-3')];

describe('scorePredictions', () => {
  it('matches by id or index, extracts, judges and averages', () => {
    const r = scorePredictions({
      dataset: 'svamp',
      problems,
      predictions: [
        { id: 'chal-3', prediction: 'so \\boxed{-9,867,630}', latents: 4 },
        { index: 0, prediction: 'The answer is 51 dollars.', latents: 6 },
        { id: 'chal-2', index: 1, prediction: '#### 3.6' },
      ],
    });
    expect(r.kind).toBe('numeric');
    // The main verdict is the official rule: only the boxed answer counts.
    expect(r.verdicts.map((v) => [v.id, v.extracted, v.source, v.correct])).toEqual([
      ['chal-1', null, null, false],
      ['chal-2', null, null, false],
      ['chal-3', '-9,867,630', 'official', true],
    ]);
    // The lenient rule beside it: boxed → #### → last number.
    expect(r.verdicts.map((v) => [v.id, v.lenient.extracted, v.lenient.source, v.lenient.correct])).toEqual([
      ['chal-1', '51', 'lastNumber', true],
      ['chal-2', '3.6', 'hashes', false],
      ['chal-3', '-9,867,630', 'boxed', true],
    ]);
    expect([r.correct, r.lenientCorrect, r.scored, r.problems]).toEqual([1, 2, 3, 3]);
    expect(r.accuracy).toBeAllclose(1 / 3);
    expect(r.lenientAccuracy).toBeAllclose(2 / 3);
    expect(r.meanLatents).toBe(5);
    const lines = verdictsToJsonl(r.verdicts).trimEnd().split('\n');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ id: 'chal-1', gold: '51', correct: false, lenient: { correct: true }, latents: 6 });
  });

  it('honours the extraction chain', () => {
    const r = scorePredictions({
      dataset: 'svamp',
      problems,
      predictions: [{ id: 'chal-1', prediction: 'The answer is 51.' }],
      extraction: { mode: 'reference' },
    });
    expect(r.verdicts[0]).toMatchObject({ extracted: null, correct: false, method: 'none' });
    expect(r.meanLatents).toBeNull();
  });

  it('rejects unknown ids, duplicates and lines without id or index with file:line: field', () => {
    const run = (predictions: Parameters<typeof scorePredictions>[0]['predictions']) => () =>
      scorePredictions({ dataset: 'svamp', problems, predictions, file: 'p.jsonl' });
    expect(run([{ id: 'chal-9', prediction: '1' }])).toThrow("p.jsonl:1: field 'id': no problem with id 'chal-9' in svamp");
    expect(run([{ index: 7, prediction: '1' }])).toThrow("p.jsonl:1: field 'index': no problem with index 7");
    expect(
      run([
        { id: 'chal-1', prediction: '1', line: 3 },
        { index: 0, prediction: '2', line: 5 },
      ]),
    ).toThrow("p.jsonl:5: field 'index': duplicate prediction for problem 'chal-1' (first at line 3)");
    expect(run([{ prediction: '1' }])).toThrow("p.jsonl:1: field 'id': a prediction needs an id or an index");
    expect(run([{ id: 'chal-1', index: 2, prediction: '1' }])).toThrow(/field 'index': index 2 disagrees/);
  });
});

describe('readPredictionsJsonl', () => {
  it('reads ids, indices, predictions and latents with line numbers, skipping blank lines', () => {
    const text = '{"id":"chal-1","prediction":"51"}\n\n{"index":2,"prediction":"x","latents":3}\n{"id":60,"prediction":"y"}\n';
    expect(parsePredictionsJsonl(text, 'f.jsonl')).toEqual([
      { id: 'chal-1', prediction: '51', line: 1 },
      { index: 2, prediction: 'x', latents: 3, line: 3 },
      { id: '60', prediction: 'y', line: 4 },
    ]);
  });

  it('names file, line and field of a bad line', () => {
    const bad = (text: string) => () => parsePredictionsJsonl(text, 'f.jsonl');
    expect(bad('{"id":"a","prediction":"1"}\n{"id":"b"}')).toThrow("f.jsonl:2: field 'prediction': missing");
    expect(bad('{"prediction":"1"}')).toThrow("f.jsonl:1: field 'id': a prediction needs an id or an index");
    expect(bad('{"index":-1,"prediction":"1"}')).toThrow("f.jsonl:1: field 'index': expected a non-negative integer, got -1");
    expect(bad('{"id":"a","prediction":5}')).toThrow("f.jsonl:1: field 'prediction': expected a string, got 5");
    expect(bad('{"id":"a","prediction":"5","latents":"x"}')).toThrow("f.jsonl:1: field 'latents'");
    expect(bad('{"id":"a",')).toThrow(/^f\.jsonl:1: invalid JSON/);
    expect(bad('[1]')).toThrow('f.jsonl:1: expected a JSON object');
  });

  it('reads from disk and reports a missing file on one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'preds-'));
    const path = join(dir, 'p.jsonl');
    writeFileSync(path, '{"id":"chal-1","prediction":"\\\\boxed{51}"}\n');
    expect(readPredictionsJsonl(path)).toEqual([{ id: 'chal-1', prediction: '\\boxed{51}', line: 1 }]);
    expect(() => readPredictionsJsonl(join(dir, 'nope.jsonl'))).toThrow(/nope\.jsonl: cannot read predictions: ENOENT/);
  });
});
