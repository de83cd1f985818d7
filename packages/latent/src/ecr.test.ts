import { describe, expect, it } from 'vitest';
import { ecrAtK } from './ecr.js';

describe('ecrAtK', () => {
  it('counts covered reference positions (repeats included) per generated latent', () => {
    // Union of top-K = {5, 6, 7, 8}; reference 5 9 7 5 8 -> positions 0, 2, 3, 4 covered = 4;
    // m = 2 -> 2. (Counting distinct ids instead would give |{5,7,8}| / 2 = 1.5.)
    expect(
      ecrAtK({
        topKIndicesPerLatent: [
          [5, 6],
          [7, 8],
        ],
        referenceCotIds: [5, 9, 7, 5, 8],
        mGenerated: 2,
      }),
    ).toBe(2);
  });

  it('is 1 for a CoT-SFT chain whose one-hot latents are the reference tokens', () => {
    const ref = [5, 9, 7, 5, 8];
    expect(ecrAtK({ topKIndicesPerLatent: ref.map((v) => [v]), referenceCotIds: ref, mGenerated: 5 })).toBe(1);
  });

  it('is 0 without overlap and rejects a bad normaliser', () => {
    expect(ecrAtK({ topKIndicesPerLatent: [Int32Array.from([1, 2])], referenceCotIds: [3, 4], mGenerated: 1 })).toBe(0);
    expect(() => ecrAtK({ topKIndicesPerLatent: [], referenceCotIds: [1], mGenerated: 0 })).toThrow(/mGenerated must be a positive integer/);
  });
});
