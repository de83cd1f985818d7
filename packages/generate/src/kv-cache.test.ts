// KvCache on ORT CPU: fixed-capacity buffers, row compaction keeps exactly the chosen rows, and no
// device tensor outlives a failing step or a whole generate call.
import { type DeviceTensor, DeviceSession, liveTensorCount } from '@latent-sft/runtime';
import { serialize } from '@latent-sft/graph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tiny, loadTiny } from '../test/reference.js';
import { buildCompactGraph } from './graphs.js';
import { Generator } from './index.js';
import { KvCache } from './kv-cache.js';
import { staticCacheHeadDim } from '@latent-sft/models';

let tiny: Tiny;
let s: DeviceSession;
beforeAll(() => {
  tiny = loadTiny();
  s = DeviceSession.create(serialize(buildCompactGraph(tiny.config, 'float32')).model);
});
afterAll(() => s.release());

const f32 = (t: DeviceTensor): number[] => Array.from(t.download(), Number);

describe('KvCache', () => {
  it('holds zeroed fixed-capacity buffers and compacts rows (cache and z) device to device', () => {
    const base = liveTensorCount();
    const c = tiny.config;
    const { numHiddenLayers: nL, numKeyValueHeads: kvH, hiddenSize: D } = c;
    const hd = staticCacheHeadDim(c);
    const C = 5;
    const cache = KvCache.create(s, s, c, 3, C, 'float32');
    const { buffers, z } = cache.tensors;
    expect(buffers.map((t) => t.dims)).toEqual(Array.from({ length: 2 * nL }, () => [3, kvH, C, hd]));
    expect(f32(buffers[0] as DeviceTensor).every((v) => v === 0)).toBe(true);
    expect(liveTensorCount()).toBe(base + 2 * nL + 2);
    const ramp = (n: number, b0: number): Float32Array => Float32Array.from({ length: n }, (_, i) => b0 + i);
    buffers.forEach((t, i) => t.upload(ramp(t.size, 1000 * i)));
    z.upload(ramp(z.size, -7));
    cache.compact([0, 2]);
    const t = cache.tensors;
    expect(cache.batch).toBe(2);
    expect(f32(t.z)).toEqual([...Array.from({ length: D }, (_, i) => -7 + i), ...Array.from({ length: D }, (_, i) => -7 + 2 * D + i)]);
    const row = kvH * C * hd;
    const last = 2 * nL - 1;
    expect(f32(t.buffers[last] as DeviceTensor)).toEqual([0, 2].flatMap((b) => Array.from({ length: row }, (_, i) => 1000 * last + b * row + i)));
    expect(liveTensorCount()).toBe(base + 2 * nL + 2);
    cache.release();
    expect(liveTensorCount()).toBe(base);
  });
});

describe('Generator device tensors', () => {
  it('none outlive a generate call, nor a step that throws mid-generation', async () => {
    // maxPositions 4 below the config's limit: positions past it make the step graph's attention fail (RoPE table too short).
    const gen = Generator.create({ config: tiny.config, weights: tiny.tensors, maxPositions: 4 });
    try {
      const base = liveTensorCount();
      const req = { prompts: [[1, 2], [4]], mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, stopIds: [], batchSize: 2 } as const;
      const ok = await gen.generate({ ...req, maxNewTokens: 2 });
      expect(ok.results.map((r) => r.outputIds.length)).toEqual([2, 2]);
      expect(liveTensorCount()).toBe(base);
      await expect(gen.generate({ ...req, maxNewTokens: 6 })).rejects.toThrow(/cos_cache/);
      expect(liveTensorCount()).toBe(base);
    } finally {
      gen.release();
    }
  });
});
