import { describe, expect, it } from 'vitest';
import { contiguousPositions, dualTrackPositions } from './positions.js';

const Z = -100;

describe('dualTrackPositions', () => {
  it('matches the reference docstring example', () => {
    // [P0,P1,<t>,L1,t1,t2,L2,t3,t4,L3,</t>,A1,A2] -> [0,1,2,3,4,5,4,5,6,5,6,7,8]
    const ids = [1, 2, 3, Z, 40, 41, Z, 42, 43, Z, 5, 60, 61];
    expect(Array.from(dualTrackPositions(ids))).toEqual([0, 1, 2, 3, 4, 5, 4, 5, 6, 5, 6, 7, 8]);
  });

  it('equals contiguous positions when there are no spacers (Stage 2, spec §4.1)', () => {
    // P <t> Z Z Z </t> A: latents 2,3,4 then 5,6 -> 0..6.
    expect(dualTrackPositions([1, 3, Z, Z, Z, 5, 6])).toEqual(contiguousPositions(7));
  });

  it('gives contiguous positions without placeholders, and honours a custom placeholder', () => {
    expect(Array.from(dualTrackPositions([7, 8, 9]))).toEqual([0, 1, 2]);
    // placeholder 0: [1, 0, 4, 0, 5] -> prefix 0; Z1 = 1; spacer 2; Z2 = 2; </t> 3.
    expect(Array.from(dualTrackPositions([1, 0, 4, 0, 5], { placeholder: 0 }))).toEqual([0, 1, 2, 2, 3]);
  });

  it('handles a sequence that starts with a placeholder (base = -1)', () => {
    // f = 0, base = -1: Z1 -> 0, t -> 1, Z2 -> 1, </t> -> 2.
    expect(Array.from(dualTrackPositions([Z, 4, Z, 5]))).toEqual([0, 1, 1, 2]);
  });
});

describe('contiguousPositions', () => {
  it('is 0..T-1 and rejects bad lengths', () => {
    expect(Array.from(contiguousPositions(4))).toEqual([0, 1, 2, 3]);
    expect(contiguousPositions(0).length).toBe(0);
    expect(() => contiguousPositions(-1)).toThrow(/T must be a non-negative integer/);
  });
});
