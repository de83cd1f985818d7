import { describe, expect, it } from 'vitest';
import { LossScaler } from './loss-scale.js';
import { NonFiniteError } from './metrics.js';

describe('LossScaler', () => {
  it('dynamic: starts at 2^16, halves and skips on overflow, doubles after growthInterval good steps', () => {
    expect(LossScaler.dynamic().scale).toBe(65536);
    const s = LossScaler.dynamic({ growthInterval: 3 });
    expect(s.update(Number.POSITIVE_INFINITY, 1)).toBe(true);
    expect(s.update(Number.NaN, 2)).toBe(true);
    expect(s.scale).toBe(16384);
    expect([s.update(1, 3), s.update(2, 4)]).toEqual([false, false]);
    expect(s.state()).toEqual({ scale: 16384, goodSteps: 2 });
    expect(s.update(3, 5)).toBe(false);
    expect(s.state()).toEqual({ scale: 32768, goodSteps: 0 });
    // An overflow resets the good-step count.
    s.update(1, 6);
    s.update(Number.NaN, 7);
    expect(s.state()).toEqual({ scale: 16384, goodSteps: 0 });
  });

  it('dynamic: the default growth interval is 2000 and the scale is capped at maxScale', () => {
    const s = LossScaler.dynamic({ initScale: 4, maxScale: 8 });
    for (let i = 0; i < 1999; i++) s.update(1, i + 1);
    expect(s.scale).toBe(4);
    s.update(1, 2000);
    expect(s.scale).toBe(8);
    for (let i = 0; i < 2000; i++) s.update(1, i + 1);
    expect(s.scale).toBe(8);
  });

  it('dynamic: an overflow at the minimum scale is a NonFiniteError', () => {
    const s = LossScaler.dynamic({ initScale: 2, minScale: 1 });
    expect(s.update(Number.NaN, 1)).toBe(true);
    expect(() => s.update(Number.NaN, 2)).toThrow(NonFiniteError);
    expect(() => s.update(Number.NaN, 2)).toThrow('non-finite gradients at step 2 with the loss scale at its minimum 1');
  });

  it('static: skips overflowing steps, never changes', () => {
    const s = LossScaler.fixed(128);
    expect(s.update(Number.NaN, 1)).toBe(true);
    for (let i = 0; i < 3000; i++) s.update(1, i);
    expect(s.scale).toBe(128);
    expect(() => LossScaler.fixed(0)).toThrow(/finite and > 0/);
  });

  it('load restores the state and rejects bad values', () => {
    const s = LossScaler.dynamic();
    s.load({ scale: 512, goodSteps: 7 });
    expect(s.state()).toEqual({ scale: 512, goodSteps: 7 });
    expect(() => s.load({ scale: Number.NaN, goodSteps: 0 })).toThrow(/finite and > 0/);
  });
});
