import { describe, expect, it } from 'vitest';
import { batchMasks, batchPositions, causalPaddingMask } from './batch.js';
import { formatMask } from './grid.js';

/** The b-th [T,T] matrix of a [B,1,T,T] mask as 'x'/'.' lines. */
function slice(mask: Uint8Array, b: number, T: number): string[] {
  return formatMask(mask.subarray(b * T * T, (b + 1) * T * T), T);
}

describe('batchMasks', () => {
  it('places each [L,L] mask top-left of its [T,T] slot and blocks the right padding', () => {
    const m0 = Uint8Array.from([1, 0, 1, 1]); // L=2: x. / xx
    const m1 = Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 0, 1]); // L=3: x.. / xx. / x.x
    const out = batchMasks([m0, m1], [2, 3], 3);
    expect(out.length).toBe(2 * 3 * 3);
    expect(slice(out, 0, 3)).toEqual(['x..', 'xx.', '...']);
    expect(slice(out, 1, 3)).toEqual(['x..', 'xx.', 'x.x']);
  });

  it('checks that masks, lengths and T agree', () => {
    expect(() => batchMasks([new Uint8Array(4)], [2, 2], 3)).toThrow(/1 masks but 2 lengths/);
    expect(() => batchMasks([new Uint8Array(4)], [4], 3)).toThrow(/lengths\[0\] = 4 must be an integer in \[0, T=3\]/);
    expect(() => batchMasks([new Uint8Array(5)], [2], 3)).toThrow(/masks\[0\] has length 5, expected lengths\[0\]\^2 = 2\*2/);
  });
});

describe('causalPaddingMask', () => {
  it('keeps k <= q < length for each batch row', () => {
    const out = causalPaddingMask([1, 3], 3);
    expect(slice(out, 0, 3)).toEqual(['x..', '...', '...']);
    expect(slice(out, 1, 3)).toEqual(['x..', 'xx.', 'xxx']);
  });
});

describe('batchPositions', () => {
  it('right-pads position ids with 0', () => {
    const out = batchPositions([Int32Array.from([0, 1, 2]), Int32Array.from([0, 1])], 4);
    expect(Array.from(out)).toEqual([0, 1, 2, 0, 0, 1, 0, 0]);
    expect(() => batchPositions([new Int32Array(5)], 4)).toThrow(/positions\[0\] has shape \[5\], longer than T=4/);
  });
});
