import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { causalPaddingMask } from './batch.js';
import { formatMask, parseMask } from './grid.js';
import { inductionMask } from './induction.js';

// Token ids for the pictures: Q (prompt) 10, T (<think>) 11, E (</think>) 12, CoT a..e 20..24,
// L (<|compress_token|>) 99, pad 0.
const Q = 10,
  TH = 11,
  E = 12,
  L = 99,
  PAD = 0;
const [a, b, c, d, e] = [20, 21, 22, 23, 24];

describe('inductionMask', () => {
  it('reproduces the spec §3.3 example matrix exactly (r=2, Q T a b L1 c d L2 e L3 E)', () => {
    const ids = [Q, TH, a, b, L, c, d, L, e, L, E];
    const expected = parseMask([
      'x',
      'x x',
      'x x x',
      'x x x x',
      'x x x x x',
      'x x x x . x',
      'x x x x . x x',
      'x x x x . x x x',
      'x x x x . x x . x',
      'x x x x . x x . x x',
      'x x x x . x x . x . x',
    ]);
    expect(formatMask(inductionMask(ids, { compressId: L }), 11)).toEqual(formatMask(expected, 11));
  });

  it('blocks every pad-valued position as query and key', () => {
    // ids Q L a PAD PAD: row 0 sees Q; row 1 (L) sees Q and itself; row 2 (a) sees Q, not L, itself;
    // pad rows keep nothing and nobody sees a pad column.
    const mask = inductionMask([Q, L, a, PAD, PAD], { compressId: L, padId: PAD });
    expect(formatMask(mask, 5)).toEqual(['x....', 'xx...', 'x.x..', '.....', '.....']);
  });

  it('is exactly causal attention minus earlier compress keys, on random sequences', () => {
    const rng = Rng.fromSeed(11);
    for (let trial = 0; trial < 50; trial++) {
      const T = 1 + rng.int(20);
      const ids = Array.from({ length: T }, () => (rng.uniform() < 0.3 ? L : 20 + rng.int(5)));
      const mask = inductionMask(ids, { compressId: L });
      for (let q = 0; q < T; q++) {
        for (let k = 0; k < T; k++) {
          const expected = k === q || (k < q && ids[k] !== L) ? 1 : 0; // causal, no earlier compress
          expect(mask[q * T + k], `trial ${trial} q=${q} k=${k}`).toBe(expected);
        }
      }
    }
  });

  it('is plain causal attention when there are no compress tokens', () => {
    const rng = Rng.fromSeed(12);
    for (let trial = 0; trial < 20; trial++) {
      const T = 1 + rng.int(16);
      const ids = Array.from({ length: T }, () => 20 + rng.int(5));
      expect(inductionMask(ids, { compressId: L })).toEqual(causalPaddingMask([T], T));
    }
  });

  it('rejects non-integer ids and a compress id equal to the pad id', () => {
    expect(() => inductionMask([1, 2.5], { compressId: L })).toThrow(/ids\[1\] = 2.5.*shape \[2\]/);
    expect(() => inductionMask([1], { compressId: 3, padId: 3 })).toThrow(/compressId and padId/);
  });
});
