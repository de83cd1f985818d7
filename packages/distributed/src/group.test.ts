import { describe, expect, it } from 'vitest';
import { rankEnv, rankFromEnv, shardRange } from './group.js';

describe('shardRange', () => {
  it('cuts a batch into contiguous near-equal parts in rank order, with weights whose mean is 1', () => {
    expect([0, 1].map((r) => shardRange(8, r, 2))).toEqual([
      { start: 0, end: 4, weight: 1 },
      { start: 4, end: 8, weight: 1 },
    ]);
    expect([0, 1, 2].map((r) => shardRange(7, r, 3))).toEqual([
      { start: 0, end: 3, weight: 9 / 7 },
      { start: 3, end: 5, weight: 6 / 7 },
      { start: 5, end: 7, weight: 6 / 7 },
    ]);
    // Fewer items than ranks: the last ranks get none (weight 0).
    expect([0, 1, 2].map((r) => shardRange(2, r, 3))).toEqual([
      { start: 0, end: 1, weight: 1.5 },
      { start: 1, end: 2, weight: 1.5 },
      { start: 2, end: 2, weight: 0 },
    ]);
  });
});

describe('rankFromEnv', () => {
  it('reads what rankEnv writes; null without RANK; one-line errors for bad values', () => {
    const info = { rank: 1, worldSize: 4, localRank: 1, masterAddr: '10.0.0.2', masterPort: 29500 };
    expect(rankFromEnv(rankEnv(info))).toEqual(info);
    expect(rankFromEnv({ PATH: '/bin' })).toBeNull();
    expect(() => rankFromEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_PORT: '1' })).toThrow("field 'RANK': rank 2 is outside WORLD_SIZE 2");
    expect(() => rankFromEnv({ RANK: '0', WORLD_SIZE: 'two', MASTER_PORT: '1' })).toThrow("field 'WORLD_SIZE': expected an integer >= 1, got 'two'");
    expect(() => rankFromEnv({ RANK: '0', WORLD_SIZE: '2' })).toThrow("field 'MASTER_PORT': environment variable missing (set by the launcher beside RANK)");
  });
});
