import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Problem } from './datasets.js';
import { cotAnswerText, fromTestRow, fromTrainRow, loadTrainRowsFile, stripThinkTags, toTestRow, toTrainRow } from './seed-rows.js';

const aug: Problem = {
  dataset: 'gsm8k-aug-test',
  id: '0',
  index: 0,
  problem: 'Janet has 16 eggs…',
  cot: '<<16-3-4=9>> <<9*2=18>>',
  solution: null,
  answer: '18',
};
const math: Problem = {
  dataset: 'math500',
  id: 'test/x/1.json',
  index: 0,
  problem: 'Find $x$.',
  cot: null,
  solution: 'So $\\boxed{\\frac{1}{2}}$.',
  answer: '\\frac{1}{2}',
};

describe('seed rows', () => {
  it('toTrainRow puts the gold answer verbatim inside \\boxed{}', () => {
    expect(toTrainRow(aug)).toEqual({
      problem: 'Janet has 16 eggs…',
      cot: '<<16-3-4=9>> <<9*2=18>>',
      cot_answer: 'The answer is \\boxed{18}.',
    });
    expect(cotAnswerText('2,125')).toBe('The answer is \\boxed{2,125}.');
    expect(() => toTrainRow(math)).toThrow("field 'cot': math500 problem test/x/1.json has no CoT to train on");
  });

  it('toTestRow uses the CoT, else the solution, else the empty string', () => {
    expect(toTestRow(aug)).toEqual({ problem: 'Janet has 16 eggs…', solution: '<<16-3-4=9>> <<9*2=18>>', answer: '18' });
    expect(toTestRow(math).solution).toBe('So $\\boxed{\\frac{1}{2}}$.');
    expect(toTestRow({ ...math, solution: null }).solution).toBe('');
  });

  it('fromTrainRow strips think tags and validates', () => {
    expect(stripThinkTags('<think>\n a b \n</think>')).toBe('a b');
    expect(stripThinkTags('a <think> b')).toBe('a <think> b');
    expect(fromTrainRow({ problem: 'P', cot: '<think>x=1</think>', cot_answer: 'A', extra: 1 })).toEqual({
      problem: 'P',
      cot: 'x=1',
      cot_answer: 'A',
    });
    const where = { file: 't.jsonl', line: 4 };
    expect(() => fromTrainRow({ problem: ' ', cot: '', cot_answer: 'A' }, where)).toThrow("t.jsonl:4: field 'problem': empty");
    expect(() => fromTrainRow({ problem: 'P', cot: 'c' }, where)).toThrow("t.jsonl:4: field 'cot_answer': missing");
    expect(() => fromTrainRow({ problem: 'P', cot: 3, cot_answer: 'A' }, where)).toThrow("field 'cot': expected a string, got number");
    expect(() => fromTrainRow({ problem: 'P', cot: 'a </think> b', cot_answer: 'A' }, where)).toThrow(/t\.jsonl:4: field 'cot': contains '<\/think>'/);
    expect(() => fromTrainRow(['P'], where)).toThrow('t.jsonl:4: expected a JSON object');
  });

  it('fromTestRow accepts numeric answers and an absent solution', () => {
    expect(fromTestRow({ problem: 'P', answer: 51.0 })).toEqual({ problem: 'P', solution: '', answer: '51' });
    expect(fromTestRow({ problem: 'P', solution: 'S', answer: '025' })).toEqual({ problem: 'P', solution: 'S', answer: '025' });
    expect(() => fromTestRow({ problem: 'P', answer: null }, { file: 'f', line: 1 })).toThrow(
      "f:1: field 'answer': expected a non-empty string or a number, got null",
    );
    expect(fromTestRow(toTestRow(aug))).toEqual(toTestRow(aug));
  });

  it('loadTrainRowsFile reads Latent-SFT-format JSONL and can skip bad rows', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'latent-sft-rows-')), 'train.jsonl');
    const rows = [toTrainRow(aug), { problem: 'P' }, { problem: 'Q', cot: '<think>c</think>', cot_answer: 'B' }];
    writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));
    expect(() => loadTrainRowsFile(path)).toThrow(`${path}:2: field 'cot': missing`);
    const res = loadTrainRowsFile(path, { skipBadRows: true });
    expect(res.rows).toEqual([toTrainRow(aug), { problem: 'Q', cot: 'c', cot_answer: 'B' }]);
    expect(res.skipped.map((s) => s.line)).toEqual([2]);
  });
});
