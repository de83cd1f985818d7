import { describe, expect, it } from 'vitest';
import { lrAt } from './schedule.js';
import { warmupStepsFromRatio } from './index.js';

const EXACT = { atol: 0, rtol: 1e-15 };

describe('lrAt', () => {
  it('constant', () => {
    expect(lrAt(0, { kind: 'constant' }, 3e-4)).toBe(3e-4);
    expect(lrAt(1000, { kind: 'constant' }, 3e-4)).toBe(3e-4);
  });

  it('linear warmup from 0 then linear decay to 0 (hand-computed, w=2, T=6)', () => {
    const s = { kind: 'linear', warmupSteps: 2, totalSteps: 6 } as const;
    // step: 0 -> 0, 1 -> 1/2, 2 -> (6-2)/4 = 1, 3 -> 3/4, 4 -> 1/2, 5 -> 1/4, 6 -> 0, 7 -> 0 (clamped)
    const got = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => lrAt(k, s, 1e-4));
    expect(got).toBeAllclose([0, 0.5e-4, 1e-4, 0.75e-4, 0.5e-4, 0.25e-4, 0, 0], EXACT);
  });

  it('linear with minLr decays to minLr; warmup still starts at 0', () => {
    const s = { kind: 'linear', warmupSteps: 1, totalSteps: 3, minLr: 1 } as const;
    expect([0, 1, 2, 3, 9].map((k) => lrAt(k, s, 5))).toBeAllclose([0, 5, 3, 1, 1], EXACT);
  });

  it('cosine: 0.5 * (1 + cos(pi * progress)) after warmup (w=1, T=5)', () => {
    const s = { kind: 'cosine', warmupSteps: 1, totalSteps: 5 } as const;
    // progress (k-1)/4: 0, 1/4, 1/2, 3/4, 1 -> 1, (1+√2/2)/2, 1/2, (1-√2/2)/2, 0
    const r = Math.SQRT1_2;
    expect([0, 1, 2, 3, 4, 5, 6].map((k) => lrAt(k, s, 2))).toBeAllclose([0, 2, 1 + r, 1, 1 - r, 0, 0], { atol: 1e-15, rtol: 1e-15 });
  });

  it('no warmup starts at the peak', () => {
    expect(lrAt(0, { kind: 'linear', warmupSteps: 0, totalSteps: 4 }, 1)).toBe(1);
    expect(lrAt(0, { kind: 'cosine', warmupSteps: 0, totalSteps: 4 }, 1)).toBe(1);
  });

  it('rejects bad steps and schedules', () => {
    expect(() => lrAt(-1, { kind: 'constant' }, 1)).toThrow('step must be an integer >= 0, got -1');
    expect(() => lrAt(0, { kind: 'linear', warmupSteps: 1.5, totalSteps: 4 }, 1)).toThrow('warmupSteps');
    expect(() => lrAt(0, { kind: 'cosine', warmupSteps: 1, totalSteps: 4, minLr: 2 }, 1)).toThrow('minLr');
  });
});

describe('warmupStepsFromRatio', () => {
  it('is ceil(total * ratio)', () => {
    expect(warmupStepsFromRatio(100, 0.05)).toBe(5);
    expect(warmupStepsFromRatio(101, 0.05)).toBe(6);
    expect(warmupStepsFromRatio(7530, 0.05)).toBe(377); // 376.5 -> 377
    expect(warmupStepsFromRatio(0, 0.05)).toBe(0);
    expect(() => warmupStepsFromRatio(10, 1.5)).toThrow('warmup ratio');
  });
});
