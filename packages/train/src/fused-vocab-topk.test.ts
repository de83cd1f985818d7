// latent_sft.VocabTopK on the CPU (the CUDA kernels are held to this in tools/bench fused-check): the top k
// of each row exactly as ONNX TopK gives them (values and indices, ties → the lower index, across the 8192-wide
// chunks), the log-sum-exp of x·invT against float64, and the per-chunk workspace (each chunk's own top k).
import { Graph, type Tensor, VOCAB_TOPK_CHUNK, serialize } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { runOnce, vocabLseReference, vocabTopKCase } from './testing.js';

const cpu = { kind: 'cpu' } as const;
/** |lse − float64| bound: float32 terms (e^x to ~1 ulp) summed in float64. */
const LSE_ATOL = 2e-6;

describe('VocabTopK kernel vs ONNX TopK and a float64 log-sum-exp (CPU)', () => {
  it.each([
    // [case, B, V, k, levels]
    ['Llama-3 vocabulary, k 64 (two keys per lane on CUDA)', 3, 128256, 64, 0],
    ['Llama-3 vocabulary, k 16, heavy ties', 2, 128256, 16, 4],
    ['Qwen2 vocabulary, k 10', 2, 152064, 10, 0],
    ['one short chunk, k 33', 2, 5000, 33, 16],
    ['k 1', 3, 20000, 1, 2],
    ['k = V', 2, 40, 40, 1],
  ])('%s', async (_name, B, V, k, levels) => {
    const c = vocabTopKCase(B, V, k, levels, V + k);
    const out = await runOnce(c.model, c.inputs, cpu);
    const data = (n: string) => Array.from((out[n] as HostTensor).data as ArrayLike<number | bigint>, Number);
    expect(data('indices')).toEqual(data('ref_indices'));
    expect(data('values')).toEqual(data('ref_values'));
    const ref = vocabLseReference(c.inputs);
    data('lse').forEach((v, i) => expect(Math.abs(v - (ref[i] as number)), `row ${i}`).toBeLessThanOrEqual(LSE_ATOL));
    // Workspace: chunk j's keys decode to its own top k indices (ties → lower index), best first.
    const chunks = Math.ceil(V / VOCAB_TOPK_CHUNK);
    const xs = c.inputs['x']!.data as Float32Array;
    const cand = (out['cand'] as HostTensor).data as BigInt64Array;
    for (let b = 0; b < B; b++)
      for (let j = 0; j < chunks; j++) {
        const lo = j * VOCAB_TOPK_CHUNK;
        const hi = Math.min(V, lo + VOCAB_TOPK_CHUNK);
        const order = Array.from({ length: hi - lo }, (_, i) => lo + i).sort((p, q) => (xs[b * V + q] as number) - (xs[b * V + p] as number) || p - q);
        const got = Array.from(cand.subarray((b * chunks + j) * k, (b * chunks + j + 1) * k), (key) => Number(~BigInt.asUintN(32, key) & 0xffffffffn));
        expect(got).toEqual(
          order
            .slice(0, k)
            .concat(Array(Math.max(0, k - order.length)).fill(0xffffffff))
            .slice(0, k),
        );
      }
  });

  it('every NaN ranks as one value above +∞ (ties by index), whatever its bits: CPU and CUDA write different NaNs', async () => {
    const g = new Graph('vocab_topk_nan');
    const outs = g.op('VocabTopK', [g.input('x', 'float32', [1, 6]), g.input('t', 'float32', [1])], { k: 4 }) as Tensor[];
    g.output(outs[1] as Tensor, 'indices');
    const bits = new Uint32Array([0x3f800000, 0xffc00000, 0x7f800000, 0x7fc00001, 0xc0000000, 0x7fffffff]); // 1, −NaN, +∞, NaN, −2, NaN
    const out = await runOnce(
      serialize(g).model,
      { x: { dtype: 'float32', dims: [1, 6], data: new Float32Array(bits.buffer) }, t: { dtype: 'float32', dims: [1], data: Float32Array.of(1) } },
      cpu,
    );
    expect(Array.from((out['indices'] as HostTensor).data as BigInt64Array, Number)).toEqual([1, 3, 5, 2]);
  });

  it('refuses k outside [1, 64] in one line', () => {
    expect(() => vocabTopKCase(2, 100, 65, 0, 1)).toThrow(/k must be an integer in \[1, min\(64, V = 100\)\], got 65/);
  });
});
