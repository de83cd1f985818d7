import { describe, expect, it } from 'vitest';
import { Rng } from '@latent-sft/core';
import { bucketBatches, padBatch, shuffled } from './batching.js';

describe('shuffled', () => {
  it('is a seeded permutation that leaves the input alone', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const s = shuffled(items, 9);
    expect(s).toEqual(Rng.fromSeed(9).shuffle(items));
    expect(shuffled(items, 9)).toEqual(s);
    expect([...s].sort()).toEqual(items);
    expect(s).not.toEqual(items);
    expect(items).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
  });
});

describe('padBatch', () => {
  it('right-pads to the longest row, row-major', () => {
    const ids = padBatch([[1, 2, 3], [4], []], 128001);
    expect(ids.shape).toEqual([3, 3]);
    expect(ids.lengths).toEqual([3, 1, 0]);
    expect(Array.from(ids.data)).toEqual([1, 2, 3, 4, 128001, 128001, 128001, 128001, 128001]);
    const labels = padBatch(
      [
        [-100, 5],
        [-100, -100, 6, 7],
      ],
      -100,
    );
    expect(labels.shape).toEqual([2, 4]);
    expect(Array.from(labels.data)).toEqual([-100, 5, -100, -100, -100, -100, 6, 7]);
  });

  it('rejects an empty batch and non-int32 values', () => {
    expect(() => padBatch([], 0)).toThrow("field 'seqs': need at least one sequence");
    expect(() => padBatch([[1], [2, 2 ** 31]], 0)).toThrow("field 'seqs[1][1]': must be an int32, got 2147483648");
    expect(() => padBatch([[1]], 0.5)).toThrow("field 'padValue'");
  });
});

function waste(batches: number[][], lengths: number[]): number {
  return batches.reduce((s, b) => s + Math.max(...b.map((i) => lengths[i] as number)) * b.length - b.reduce((t, i) => t + (lengths[i] as number), 0), 0);
}

describe('bucketBatches', () => {
  it('sorts within a window: one window of 6 gives the three length-sorted pairs', () => {
    const lengths = [5, 1, 4, 2, 3, 6];
    const batches = bucketBatches(lengths, { batchSize: 2, bucketSize: 6, seed: 0 });
    const asSets = batches.map((b) => [...b].sort((x, y) => x - y).join(',')).sort();
    // Sorted by length: 1(1) 3(2) 4(3) 2(4) 0(5) 5(6) -> {1,3} {2,4} {0,5}.
    expect(asSets).toEqual(['0,5', '1,3', '2,4']);
  });

  it('uses every index exactly once, is deterministic, and pads far less than random batches', () => {
    const rng = Rng.fromSeed(2);
    const lengths = Array.from({ length: 1003 }, () => 10 + rng.int(500));
    const opts = { batchSize: 8, bucketSize: 64, seed: 5 };
    const batches = bucketBatches(lengths, opts);
    expect(bucketBatches(lengths, opts)).toEqual(batches);
    expect(bucketBatches(lengths, { ...opts, seed: 6 })).not.toEqual(batches);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 1003 }, (_, i) => i));
    // 15 full windows of 64 (8 batches each) + a last window of 43 = 5 batches of 8 and one of 3.
    expect(batches.length).toBe(126);
    expect(batches.filter((b) => b.length !== 8).map((b) => b.length)).toEqual([3]);
    const perm = Rng.fromSeed(5).permutation(1003);
    const random = Array.from({ length: 126 }, (_, k) => perm.slice(8 * k, 8 * k + 8));
    expect(waste(batches, lengths)).toBeLessThan(0.25 * waste(random, lengths));
  });

  it('rejects bad options', () => {
    expect(() => bucketBatches([1, 2], { batchSize: 0, seed: 1 })).toThrow("field 'batchSize'");
    expect(() => bucketBatches([1, 2], { batchSize: 4, bucketSize: 6, seed: 1 })).toThrow(
      "field 'bucketSize': must be a positive multiple of batchSize 4, got 6",
    );
    expect(() => bucketBatches([1, -2], { batchSize: 1, seed: 1 })).toThrow("field 'lengths[1]'");
  });
});
