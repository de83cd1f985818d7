import { describe, expect, it } from 'vitest';
import { Rng } from '@latent-sft/core';
import { epochPermutation, initLoopState, loopStateFromJson, loopStateToJson, nextEpochRngState, stepRng } from './loop-state.js';

describe('LoopState', () => {
  it('starts from the seed and round-trips through JSON', () => {
    const s = { ...initLoopState(42, ['optim.m.w']), step: 3, emaLoss: 0.25, bestMetric: 1.5, bestStep: 2, tokensSeen: 99 };
    expect(s.rngState).toEqual(Rng.fromSeed(42).state());
    const back = loopStateFromJson(JSON.parse(JSON.stringify(loopStateToJson(s))));
    expect(back).toEqual(s);
  });

  it('validation errors name the file and the field', () => {
    const good = loopStateToJson(initLoopState(1));
    expect(() => loopStateFromJson({ ...good, step: -1 }, 'ls.json')).toThrow("ls.json: field 'step': expected an integer >= 0, got -1");
    expect(() => loopStateFromJson({ ...good, rngState: [0, 0, 0, 0] }, 'ls.json')).toThrow("ls.json: field 'rngState'");
    expect(() => loopStateFromJson({ ...good, emaLoss: 'x' }, 'ls.json')).toThrow("ls.json: field 'emaLoss': expected a finite number or null");
    expect(() => loopStateFromJson({ ...good, extra: 1 }, 'ls.json')).toThrow("ls.json: field 'extra': unknown key");
    expect(() => loopStateFromJson({ ...good, version: 2 }, 'ls.json')).toThrow("ls.json: field 'version': unsupported version 2");
  });

  it('permutations and step generators are pure functions of the state', () => {
    const s = initLoopState(5);
    expect(epochPermutation(s, 8)).toEqual(epochPermutation(s, 8));
    expect([...epochPermutation(s, 8)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const next = { ...s, epoch: 1, rngState: nextEpochRngState(s) };
    expect(epochPermutation(next, 8)).not.toEqual(epochPermutation(s, 8));
    expect(stepRng({ ...s, step: 3 }).uniform()).toBe(stepRng({ ...s, step: 3 }).uniform());
    expect(stepRng({ ...s, step: 3 }).uniform()).not.toBe(stepRng({ ...s, step: 4 }).uniform());
  });
});
