import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '@latent-sft/data';
import { describe, expect, it } from 'vitest';
import { defaultVerdictsPath, scorePredictionsFile } from './score-file.js';

describe('scorePredictionsFile on gsm8k-test', () => {
  const { problems } = loadDataset('gsm8k-test');

  function predictionsFile(lines: object[]): string {
    const dir = mkdtempSync(join(tmpdir(), 'eval-score-'));
    const path = join(dir, 'preds.jsonl');
    writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    return path;
  }

  it('scores 20 right and 10 wrong predictions and writes the verdicts beside them', () => {
    // Right: the gold answer in three forms (boxed, #### with GSM8K commas, prose); wrong: gold + 1.
    const right = problems.slice(0, 20).map((p, i) => ({
      id: p.id,
      latents: 6,
      prediction: [`so \\boxed{${p.answer}}`, `steps\n#### ${p.answer}`, `The answer is ${p.answer} dollars.`][i % 3],
    }));
    const wrong = problems.slice(20, 30).map((p) => ({
      index: p.index,
      latents: 3,
      prediction: `#### ${Number(p.answer.replace(/,/g, '')) + 1}`,
    }));
    const path = predictionsFile([...wrong, ...right]);
    const r = scorePredictionsFile({ dataset: 'gsm8k-test', predictions: path });
    expect([r.result.correct, r.result.scored, r.result.problems]).toEqual([20, 30, 1319]);
    expect(r.result.accuracy).toBeAllclose(2 / 3);
    expect(r.result.meanLatents).toBeAllclose(5);
    expect(r.line).toBe('gsm8k-test: accuracy 66.67% (20/30 correct; 30 of 1319 problems scored)');
    expect(r.out).toBe(defaultVerdictsPath(path));
    const verdicts = readFileSync(r.out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(verdicts.map((v) => v.index)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(verdicts.slice(0, 20).every((v) => v.correct === true)).toBe(true);
    expect(verdicts.slice(20).every((v) => v.correct === false)).toBe(true);
    expect(verdicts[0]).toMatchObject({ id: '0', gold: '18', extracted: '18', source: 'boxed' });

    // Same verdicts again: left alone. Different ones: refused unless --force.
    expect(scorePredictionsFile({ dataset: 'gsm8k-test', predictions: path }).written).toBe(false);
    writeFileSync(path, `${JSON.stringify({ id: '0', prediction: '#### 17' })}\n`);
    expect(() => scorePredictionsFile({ dataset: 'gsm8k-test', predictions: path })).toThrow(
      `${r.out}: field '--out': exists with different verdicts; pass --force to replace it`,
    );
    const forced = scorePredictionsFile({ dataset: 'gsm8k-test', predictions: path, force: true });
    expect([forced.written, forced.result.correct, forced.result.scored]).toEqual([true, 0, 1]);
  });

  it('reports bad prediction lines and unknown ids as file:line: field', () => {
    const path = predictionsFile([
      { id: '0', prediction: '18' },
      { id: '5000', prediction: '1' },
    ]);
    expect(() => scorePredictionsFile({ dataset: 'gsm8k-test', predictions: path })).toThrow(`${path}:2: field 'id': no problem with id '5000' in gsm8k-test`);
    const dup = predictionsFile([
      { id: '0', prediction: '18' },
      { index: 0, prediction: '18' },
    ]);
    expect(() => scorePredictionsFile({ dataset: 'gsm8k-test', predictions: dup })).toThrow(
      `${dup}:2: field 'index': duplicate prediction for problem '0' (first at line 1)`,
    );
    // --out elsewhere, reference extraction (boxed only): the bare '18' is no answer.
    const out = join(mkdtempSync(join(tmpdir(), 'eval-score-')), 'v.jsonl');
    const plain = predictionsFile([{ id: '0', prediction: '18' }]);
    const r = scorePredictionsFile({ dataset: 'gsm8k-test', predictions: plain, out, extraction: 'reference' });
    expect([r.out, r.result.correct, r.result.verdicts[0]?.extracted]).toEqual([out, 0, null]);
  });
});
