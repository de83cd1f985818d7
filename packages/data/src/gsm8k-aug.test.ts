import { describe, expect, it } from 'vitest';
import { loadDataset } from './datasets.js';
import { equationCot, gsm8kAugFromTrain } from './gsm8k-aug.js';

describe('GSM8k-Aug-style equation CoT', () => {
  it('joins the calculator annotations in order with one space', () => {
    const answer = 'Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18';
    expect(equationCot(answer)).toBe('<<16-3-4=9>> <<9*2=18>>');
    expect(equationCot('No calculator here.\n#### 4')).toBe('');
    expect(equationCot('<<2/.5=4>>4 and <<100*3=300>>300')).toBe('<<2/.5=4>> <<100*3=300>>');
  });

  it('the stand-in holds GSM8K train minus the 500 Aug-valid questions, with equation CoTs', () => {
    const all = gsm8kAugFromTrain(undefined, { excludeAugValid: false });
    expect(all.length).toBe(7473);
    expect(all[0]).toMatchObject({ dataset: 'gsm8k-train', id: '0', index: 0, cot: '<<48/2=24>> <<48+24=72>>', answer: '72' });
    expect(all.filter((p) => p.cot === '').length).toBe(95);
    const held = gsm8kAugFromTrain();
    expect(held.length).toBe(6973);
    const valid = new Set(loadDataset('gsm8k-aug-valid').problems.map((p) => p.problem));
    expect(held.some((p) => valid.has(p.problem))).toBe(false);
  });

  it('reproduces the official GSM8k-Aug CoTs of the original GSM8K questions', () => {
    // Measured on the committed files: 500/500 valid rows and 1319/1319 test rows match exactly, answers
    // included. The official set therefore keeps GSM8K's own annotations for the original questions; what
    // it adds (and the stand-in lacks) is ~378k GPT-4-generated problems in the same format. The floor
    // is the measured 1.0, so any change to the derivation or the files shows up here.
    const derived = new Map(gsm8kAugFromTrain(undefined, { excludeAugValid: false }).map((p) => [p.problem, p]));
    const valid = loadDataset('gsm8k-aug-valid').problems;
    let same = 0;
    for (const v of valid) {
      const d = derived.get(v.problem);
      if (d && d.cot === v.cot && d.answer === v.answer) same += 1;
    }
    expect(same / valid.length).toBeGreaterThanOrEqual(1);

    const test = loadDataset('gsm8k-aug-test').problems;
    const gsmTest = loadDataset('gsm8k-test').problems;
    const testSame = test.filter((t, i) => t.cot === equationCot(gsmTest[i]?.solution ?? '')).length;
    expect(testSame / test.length).toBeGreaterThanOrEqual(1);
  });
});
