// stagedTopK (the step graph's TopK over the vocabulary, in chunks of TOPK_CHUNK) against one ONNX TopK
// over the whole row, run by ORT on the CPU: the same values and the same indices, ties and −∞ included.
import { Graph, serialize } from '@latent-sft/graph';
import { Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { TOPK_CHUNK, stagedTopK } from './graphs.js';

/** Both TopKs of x [B, n] in one graph, and how many TopK nodes the staged one used. */
async function both(x: Float32Array, B: number, n: number, K: number, symbolicBatch: boolean) {
  const g = new Graph('topk');
  const xt = g.input('x', 'float32', [symbolicBatch ? 'batch' : B, n]);
  const [sv, si] = stagedTopK(g, xt, K);
  const stagedNodes = g.nodes.filter((nd) => nd.op === 'TopK').length;
  const [pv, pi] = g.op('TopK', [xt, g.ints([K])], { axis: -1, largest: 1, sorted: 1 });
  g.output(sv, 'sv');
  g.output(si, 'si');
  g.output(pv!, 'pv');
  g.output(pi!, 'pi');
  const s = await Session.create(serialize(g).model);
  const out = await s.run({ x: { dtype: 'float32', dims: [B, n], data: x } });
  await s.release();
  return { out, stagedNodes };
}

/** Deterministic values in [-4, 4) on a grid of `levels` steps (few levels: many ties). */
function values(count: number, seed: number, levels: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * levels) * (8 / levels) - 4;
  });
}

describe('stagedTopK', () => {
  it.each([
    // [case, B, n, K, levels, stages (TopK nodes)]
    ['Llama-3 vocabulary, K 16: 128256 → 8016 → 512 (second stage padded)', 3, 128256, 16, 1 << 20, 3],
    ['the same with heavy ties (64 levels)', 3, 128256, 16, 64, 3],
    ['Qwen2 vocabulary, K 10', 2, 152064, 10, 1 << 16, 3],
    ['first stage padded (n = 5000), K 1', 2, 5000, 1, 256, 2],
    ['K 64 = TOPK_CHUNK / 4 still staged: 20000 → 5056 → 1280 → 320', 2, 20000, 64, 512, 4],
    ['K 65: one TopK', 2, 20000, 65, 512, 1],
    ['short row (4 chunks): one TopK', 2, 4 * TOPK_CHUNK, 16, 8, 1],
  ])('%s: same values and indices as one TopK', async (_name, B, n, K, levels, stages) => {
    for (const symbolic of [false, true]) {
      const { out, stagedNodes } = await both(values(B * n, n + K, levels), B, n, K, symbolic);
      expect(stagedNodes).toBe(stages);
      expect(Array.from(out['si']!.data as BigInt64Array)).toEqual(Array.from(out['pi']!.data as BigInt64Array));
      expect(Array.from(out['sv']!.data as Float32Array)).toEqual(Array.from(out['pv']!.data as Float32Array));
    }
  });

  it('rows with fewer finite values than K: the −∞ ties resolve to the lowest indices, pads never win', async () => {
    const [B, n, K] = [2, 5000, 16];
    const x = new Float32Array(B * n).fill(Number.NEGATIVE_INFINITY);
    // Row 0: three finite values late in the row (so −∞ from every earlier chunk must fill the rest in index
    // order); row 1: finite values only in the padded last chunk.
    x.set([1, 2, 1], 4000);
    x.set([0.5, 0.5], n + 4990);
    const { out } = await both(x, B, n, K, false);
    const ids = Array.from(out['si']!.data as BigInt64Array, Number);
    expect(ids).toEqual(Array.from(out['pi']!.data as BigInt64Array, Number));
    expect(ids.slice(0, 4)).toEqual([4001, 4000, 4002, 0]);
    expect(Math.max(...ids)).toBeLessThan(n);
  });
});
