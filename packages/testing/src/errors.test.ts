import { describe, expect, it } from 'vitest';
import { oneLineError } from './errors.js';

describe('oneLineError', () => {
  it('returns the message, and fails on no error or a multi-line one', () => {
    expect(
      oneLineError(() => {
        throw new Error('field x: bad');
      }),
    ).toBe('field x: bad');
    expect(() => oneLineError(() => 1)).toThrow('did not throw');
    expect(() =>
      oneLineError(() => {
        throw new Error('a\nb');
      }),
    ).toThrow(/one-line/);
  });
});
