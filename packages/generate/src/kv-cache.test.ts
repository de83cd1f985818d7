// KvCache on ORT CPU: row compaction keeps exactly the chosen rows, advance hands ownership over and
// frees the old state, and no device tensor outlives a failing step or a whole generate call.
import { type DeviceTensor, DeviceSession, liveTensorCount } from '@latent-sft/runtime';
import { serialize } from '@latent-sft/graph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tiny, loadTiny } from '../test/reference.js';
import { buildCompactGraph } from './graphs.js';
import { Generator } from './index.js';
import { KvCache } from './kv-cache.js';

let tiny: Tiny;
let s: DeviceSession;
beforeAll(() => {
  tiny = loadTiny();
  s = DeviceSession.create(serialize(buildCompactGraph(tiny.config)).model);
});
afterAll(() => s.release());

const f32 = (t: DeviceTensor): number[] => Array.from(t.download(), Number);
/** A float32 tensor whose element i is base + i. */
const ramp = (dims: number[], base: number): DeviceTensor =>
  s.upload({ dtype: 'float32', dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => base + i) });

describe('KvCache', () => {
  const c = (): Tiny['config'] => tiny.config;
  const carry = (B: number, P: number) => {
    const { numHiddenLayers: nL, numKeyValueHeads: kvH, headDim: hd, hiddenSize: D } = c();
    const presents = Array.from({ length: 2 * nL }, (_, i) => ramp([B, kvH, P, hd], 1000 * i));
    return {
      presents,
      maskNext: s.upload({ dtype: 'int64', dims: [B, P], data: BigInt64Array.from({ length: B * P }, (_, i) => BigInt(i)) }),
      softNext: ramp([B, 1, D], 0.5),
      hiddenNext: ramp([B, 1, D], -7),
    };
  };

  it('starts empty with the prompt mask, takes a carry (feed picks z) and compacts rows device to device', () => {
    const base = liveTensorCount();
    const { numHiddenLayers: nL, numKeyValueHeads: kvH, headDim: hd, hiddenSize: D } = c();
    const cache = KvCache.create(s, s, c(), 3, BigInt64Array.from([0n, 1n, 1n, 1n, 1n, 1n, 0n, 0n, 1n]));
    expect(cache.tensors.past.map((t) => t.dims)).toEqual(Array.from({ length: 2 * nL }, () => [3, kvH, 0, hd]));
    expect(liveTensorCount()).toBe(base + 2 * nL + 2);
    const k = carry(3, 2);
    cache.advance(k, 'hidden');
    expect(k.softNext.released).toBe(true);
    expect(liveTensorCount()).toBe(base + 2 * nL + 2);
    expect(cache.tensors.z).toBe(k.hiddenNext);
    cache.compact([0, 2]);
    const t = cache.tensors;
    expect(Array.from(t.mask.download(), Number)).toEqual([0, 1, 4, 5]);
    expect(f32(t.z)).toEqual([...Array.from({ length: D }, (_, i) => -7 + i), ...Array.from({ length: D }, (_, i) => -7 + 2 * D + i)]);
    const row = kvH * 2 * hd;
    const last = 2 * nL - 1;
    expect(f32(t.past[last] as DeviceTensor)).toEqual([0, 2].flatMap((b) => Array.from({ length: row }, (_, i) => 1000 * last + b * row + i)));
    expect(liveTensorCount()).toBe(base + 2 * nL + 2);
    cache.release();
    expect(liveTensorCount()).toBe(base);
  });

  it('a malformed carry is refused and freed', () => {
    const base = liveTensorCount();
    const cache = KvCache.create(s, s, c(), 2, BigInt64Array.from([1n, 1n]));
    const k = carry(2, 1);
    k.presents.pop()?.release();
    expect(() => cache.advance(k, 'soft')).toThrow(/presents/);
    cache.release();
    expect(liveTensorCount()).toBe(base);
  });
});

describe('Generator device tensors', () => {
  it('none outlive a generate call, nor a step that throws mid-generation', async () => {
    // maxPositions 4 below the config's limit: positions past it make the step graph's Gather fail.
    const gen = Generator.create({ config: tiny.config, weights: tiny.tensors, maxPositions: 4 });
    try {
      const base = liveTensorCount();
      const req = { prompts: [[1, 2], [4]], mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, stopIds: [], batchSize: 2 } as const;
      const ok = await gen.generate({ ...req, maxNewTokens: 2 });
      expect(ok.results.map((r) => r.outputIds.length)).toEqual([2, 2]);
      expect(liveTensorCount()).toBe(base);
      await expect(gen.generate({ ...req, maxNewTokens: 6 })).rejects.toThrow(/Gather/);
      expect(liveTensorCount()).toBe(base);
    } finally {
      gen.release();
    }
  });
});
