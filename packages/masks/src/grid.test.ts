import { describe, expect, it } from 'vitest';
import { formatMask, parseMask } from './grid.js';

describe('parseMask / formatMask', () => {
  it('parses lower-triangular pictures and formats them back at full width', () => {
    const mask = parseMask(['x', 'x x', '. x x']);
    expect(Array.from(mask)).toEqual([1, 0, 0, 1, 1, 0, 0, 1, 1]);
    expect(formatMask(mask, 3)).toEqual(['x..', 'xx.', '.xx']);
  });

  it('rejects bad characters and rows wider than the mask', () => {
    expect(() => parseMask(['x', 'xo'])).toThrow(/row 1 column 1 is 'o'/);
    expect(() => parseMask(['xx'])).toThrow(/row 0 has 2 cells but the mask is \[1,1\]/);
    expect(() => formatMask(new Uint8Array(3), 2)).toThrow(/expected T\*T = 2\*2/);
  });
});
