// Graph-side superposition vs the CPU references (superposition.ts) on ORT CPU: float64 graphs within
// F64, float32 within F32, float16 logits (softmax in float32) within F16; gradients w.r.t. h through
// MatMul → TopK → Softmax → Gather → MatMul against central finite differences (FD).
import { Rng } from '@latent-sft/core';
import { type DType, Graph, type Tensor, f16BitsToNumber, f32ToF16Bits, grad } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { fdGrad, normals, nums, sessionOf } from '../test/graph-harness.js';
import {
  checkDetached,
  gHiddenStateLatents,
  gLatentEmbedding,
  gLatentLogits,
  gSoftEmbeddingFull,
  gSoftEmbeddingTopK,
  gWeightedEmbedding,
} from './graph-superposition.js';
import { matrix } from './matrix.js';
import { latentLogits, softEmbeddingFull, softEmbeddingTopK, topKDistribution } from './superposition.js';

/** Tolerances: float64 kernels vs fp64 CPU; float32 kernels; float16 inputs (fp32 softmax, fp16 output); FD. */
const F64 = { atol: 1e-12, rtol: 1e-10 };
const F32 = { atol: 1e-6, rtol: 1e-5 };
const F16 = { atol: 2e-3, rtol: 2e-3 };
const FD = { h: 1e-6, atol: 1e-8, rtol: 1e-6 };

// ---- helpers -----------------------------------------------------------------------------------
const host = (dtype: 'float64' | 'float32', dims: number[], v: ArrayLike<number>): HostTensor => ({
  dtype,
  dims,
  data: dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v),
});
/** Rows [b·rows, (b+1)·rows) of a flat [B·rows, cols] array as a CPU matrix. */
const part = (v: ArrayLike<number>, b: number, rows: number, cols: number) =>
  matrix(Float64Array.from(Array.prototype.slice.call(v, b * rows * cols, (b + 1) * rows * cols) as number[]), rows, cols);

// B = 2 examples, m = 3 slots, d = 4, V = 7.
const [B, m, d, V] = [2, 3, 4, 7];

function superpositionGraph(dtype: DType, k: number | 'full') {
  const g = new Graph('superposition');
  const h = g.input('h', dtype, [B, m, d]);
  const W = g.input('W', dtype, [V, d]);
  const logits = gLatentLogits(g, h, W);
  g.output(logits, 'logits');
  if (k === 'full') {
    const r = gSoftEmbeddingFull(g, logits, W);
    g.output(r.probs, 'probs');
    g.output(r.emb, 'emb');
  } else {
    const r = gSoftEmbeddingTopK(g, logits, W, k);
    g.output(r.indices, 'indices');
    g.output(r.probs, 'probs');
    g.output(r.emb, 'emb');
  }
  return g;
}

describe('graph superposition vs CPU', () => {
  const rng = Rng.fromSeed(11);
  const hv = normals(rng, B * m * d);
  const Wv = normals(rng, V * d);

  it('gLatentLogits and gSoftEmbeddingFull equal latentLogits and softEmbeddingFull per example (float64)', async () => {
    await using s = await sessionOf(superpositionGraph('float64', 'full'));
    const out = await s.run({ h: host('float64', [B, m, d], hv), W: host('float64', [V, d], Wv) });
    expect(out.emb?.dims).toEqual([B, m, d]);
    const Wm = matrix(Float64Array.from(Wv), V, d);
    for (let b = 0; b < B; b++) {
      const logits = latentLogits(part(hv, b, m, d), Wm);
      const cpu = softEmbeddingFull(logits, Wm);
      expect(part(nums(out.logits), b, m, V).data).toBeAllclose(logits.data, F64);
      expect(part(nums(out.probs), b, m, V).data).toBeAllclose(cpu.probs.data, F64);
      expect(part(nums(out.emb), b, m, d).data).toBeAllclose(cpu.emb.data, F64);
    }
  });

  for (const dtype of ['float64', 'float32'] as const) {
    it(`gSoftEmbeddingTopK (k = 3) equals topKDistribution + softEmbeddingTopK (${dtype})`, async () => {
      const tol = dtype === 'float64' ? F64 : F32;
      await using s = await sessionOf(superpositionGraph(dtype, 3));
      const out = await s.run({ h: host(dtype, [B, m, d], hv), W: host(dtype, [V, d], Wv) });
      expect(out.indices?.dtype).toBe('int64');
      const Wm = matrix(Float64Array.from(host(dtype, [V, d], Wv).data as Float64Array), V, d);
      for (let b = 0; b < B; b++) {
        const logits = part(nums(out.logits), b, m, V); // the graph's own logits, so both sides pick from the same values
        const cpu = topKDistribution(logits, 3);
        expect(part(nums(out.indices), b, m, 3).data).toEqual(Float64Array.from(cpu.indices.data));
        expect(part(nums(out.probs), b, m, 3).data).toBeAllclose(cpu.probs.data, tol);
        expect(part(nums(out.emb), b, m, d).data).toBeAllclose(softEmbeddingTopK(cpu.indices, cpu.probs, Wm).data, tol);
      }
    });
  }

  for (const k of [V, V + 5]) {
    it(`k = ${k} ≥ V falls back to the full softmax, indices 0..V-1 in vocabulary order`, async () => {
      await using s = await sessionOf(superpositionGraph('float64', k));
      const out = await s.run({ h: host('float64', [B, m, d], hv), W: host('float64', [V, d], Wv) });
      expect(out.indices?.dims).toEqual([B, m, V]);
      expect(nums(out.indices)).toEqual(Array.from({ length: B * m }, () => [0, 1, 2, 3, 4, 5, 6]).flat());
      const Wm = matrix(Float64Array.from(Wv), V, d);
      for (let b = 0; b < B; b++) {
        const full = softEmbeddingFull(latentLogits(part(hv, b, m, d), Wm), Wm);
        expect(part(nums(out.probs), b, m, V).data).toBeAllclose(full.probs.data, F64);
        expect(part(nums(out.emb), b, m, d).data).toBeAllclose(full.emb.data, F64);
      }
    });
  }

  it('k = V through TopK (symbolic V) gives the same embedding as the full softmax', async () => {
    const g = new Graph('topk-v');
    const logits = g.input('logits', 'float64', [1, 2, 'V']);
    const W = g.input('W', 'float64', ['V', 2]);
    const r = gSoftEmbeddingTopK(g, logits, W, 4);
    g.output(r.emb, 'emb');
    await using s = await sessionOf(g);
    const lv = [0.3, -1, 2, 0.5, 1, 1, -2, 0];
    const wv = [1, 0, 0, 1, 2, 2, -1, 3];
    const out = await s.run({ logits: host('float64', [1, 2, 4], lv), W: host('float64', [4, 2], wv) });
    const full = softEmbeddingFull(matrix(Float64Array.from(lv), 2, 4), matrix(Float64Array.from(wv), 4, 2));
    expect(nums(out.emb)).toBeAllclose(full.emb.data, F64);
  });

  it('breaks top-k ties toward the lower id, as topKIndices', async () => {
    const g = new Graph('ties');
    const r = gSoftEmbeddingTopK(g, g.input('logits', 'float64', [1, 1, 5]), g.input('W', 'float64', [5, 1]), 2);
    g.output(r.indices, 'indices');
    g.output(r.probs, 'probs');
    await using s = await sessionOf(g);
    const lv = [1, 3, 3, 0, 3];
    const out = await s.run({ logits: host('float64', [1, 1, 5], lv), W: host('float64', [5, 1], [0, 1, 2, 3, 4]) });
    const cpu = topKDistribution(matrix(Float64Array.from(lv), 1, 5), 2);
    expect(nums(out.indices)).toEqual([1, 2]);
    expect(nums(out.indices)).toEqual(Array.from(cpu.indices.data));
    expect(nums(out.probs)).toBeAllclose([0.5, 0.5], F64);
  });

  it('a one-hot distribution gives exactly that row of W (full, top-k and weighted)', async () => {
    const g = new Graph('one-hot');
    const logits = g.input('logits', 'float64', [1, 1, 4]);
    const W = g.input('W', 'float64', [4, 3]);
    g.output(gSoftEmbeddingFull(g, logits, W).emb, 'full');
    g.output(gSoftEmbeddingTopK(g, logits, W, 2).emb, 'topk');
    g.output(gWeightedEmbedding(g, g.input('idx', 'int64', [1, 1, 2]), g.input('p', 'float64', [1, 1, 2]), W), 'weighted');
    await using s = await sessionOf(g);
    const wv = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const out = await s.run({
      logits: host('float64', [1, 1, 4], [-Infinity, -Infinity, 0, -Infinity]),
      W: host('float64', [4, 3], wv),
      idx: { dtype: 'int64', dims: [1, 1, 2], data: BigInt64Array.from([3n, 1n]) },
      p: host('float64', [1, 1, 2], [0, 1]),
    });
    expect(nums(out.full)).toEqual([7, 8, 9]);
    expect(nums(out.topk)).toEqual([7, 8, 9]);
    expect(nums(out.weighted)).toEqual([4, 5, 6]);
  });

  it('float16 logits: softmax runs in float32 between Casts, emb stays float16', async () => {
    const g = new Graph('fp16');
    const logits = g.input('logits', 'float16', [1, 2, 5]);
    const W = g.input('W', 'float16', [5, 3]);
    const r = gSoftEmbeddingFull(g, logits, W);
    g.output(r.probs, 'probs');
    g.output(r.emb, 'emb');
    expect([r.probs.dtype, r.emb.dtype]).toEqual(['float16', 'float16']);
    const ops = g.nodes.map((n) => n.op);
    expect(ops.slice(0, 3)).toEqual(['Cast', 'Softmax', 'Cast']);
    expect(g.value(g.nodes[1]?.inputs[0] as string).dtype).toBe('float32');
    await using s = await sessionOf(g);
    const rng16 = Rng.fromSeed(5);
    const bits = (v: number[]) => Uint16Array.from(v, f32ToF16Bits);
    const lb = bits(normals(rng16, 10, 2));
    const wb = bits(normals(rng16, 15));
    const out = await s.run({ logits: { dtype: 'float16', dims: [1, 2, 5], data: lb }, W: { dtype: 'float16', dims: [5, 3], data: wb } });
    const back = (t: HostTensor | undefined) => Array.from(t?.data as Uint16Array, f16BitsToNumber);
    const cpu = softEmbeddingFull(matrix(Float64Array.from(lb, f16BitsToNumber), 2, 5), matrix(Float64Array.from(wb, f16BitsToNumber), 5, 3));
    expect(back(out.probs)).toBeAllclose(cpu.probs.data, F16);
    expect(back(out.emb)).toBeAllclose(cpu.emb.data, F16);
  });
});

describe('graph superposition gradients', () => {
  // L = Σ emb·C + Σ probs·D (random C, D): exercises the path through α and through the mix.
  for (const kind of [{ kind: 'soft-topk', k: 3 }, { kind: 'soft-full' }] as const) {
    it(`d L / d h through ${kind.kind} matches central finite differences`, async () => {
      const rng = Rng.fromSeed(23);
      const g = new Graph('grad');
      const h = g.input('h', 'float64', [B, m, d]);
      const W = g.input('W', 'float64', [V, d]);
      const r = gLatentEmbedding(g, h, W, kind);
      if (r.kind === 'hidden') throw new Error('unreachable');
      const kp = kind.kind === 'soft-topk' ? kind.k : V;
      const C = g.input('C', 'float64', [B, m, d]);
      const D = g.input('D', 'float64', [B, m, kp]);
      const L = g.add(g.reduceSum(g.mul(r.emb, C), undefined, false), g.reduceSum(g.mul(r.probs, D), undefined, false));
      g.output(L, 'L');
      g.output(grad(g, L, [h])[0] as Tensor, 'dh');
      checkDetached(g, W, [h]);
      g.prune();
      await using s = await sessionOf(g);
      const feeds = {
        h: host('float64', [B, m, d], normals(rng, B * m * d)),
        W: host('float64', [V, d], normals(rng, V * d)),
        C: host('float64', [B, m, d], normals(rng, B * m * d)),
        D: host('float64', [B, m, kp], normals(rng, B * m * kp)),
      };
      const out = await s.run(feeds);
      const fd = await fdGrad(s, feeds, 'h', FD.h);
      expect(fd.some((v) => Math.abs(v) > 1e-3)).toBe(true);
      expect(nums(out.dh)).toBeAllclose(fd, FD);
    });
  }
});

describe('latent kinds and contracts', () => {
  it("'hidden' passes the encoder state through unchanged; soft kinds return their distribution", () => {
    const g = new Graph('kinds');
    const h = g.input('h', 'float32', ['B', 'm', 8]);
    const W = g.input('W', 'float32', [50, 8]);
    const hidden = gLatentEmbedding(g, h, W, { kind: 'hidden' });
    expect(hidden.emb).toBe(h);
    expect(gHiddenStateLatents(g, h)).toBe(h);
    const topk = gLatentEmbedding(g, h, W, { kind: 'soft-topk', k: 10 });
    if (topk.kind !== 'soft-topk') throw new Error(`expected soft-topk, got ${topk.kind}`);
    expect([topk.indices.shape, topk.probs.shape, topk.emb.shape]).toEqual([
      ['B', 'm', 10],
      ['B', 'm', 10],
      ['B', 'm', 8],
    ]);
    const full = gLatentEmbedding(g, h, W, { kind: 'soft-full' });
    if (full.kind !== 'soft-full') throw new Error(`expected soft-full, got ${full.kind}`);
    expect(full.probs.shape).toEqual(['B', 'm', 50]);
  });

  it('checkDetached rejects a W that a wrt value reaches and accepts a separate input', () => {
    const g = new Graph('detach');
    const embed = g.input('embed', 'float32', [10, 4]);
    const h = g.input('h', 'float32', [1, 2, 4]);
    expect(() => checkDetached(g, embed, [embed, h])).toThrow(/'embed' \[10, 4\] depends on 'embed'/);
    const scaled = g.mul(embed, g.scalar(2, 'float32'));
    expect(() => checkDetached(g, scaled, [h, embed])).toThrow(/depends on 'embed'/);
    const detached = g.input('embed_detached', 'float32', [10, 4]);
    expect(() => checkDetached(g, detached, [embed, h])).not.toThrow();
  });

  it('throws at build time naming the function and the shapes', () => {
    const g = new Graph('errors');
    const h = g.input('h', 'float32', [2, 3, 4]);
    expect(() => gLatentLogits(g, h, g.input('W5', 'float32', [7, 5]))).toThrow(
      /gLatentLogits: h has shape \[2, 3, 4\] but W has shape \[7, 5\] \(d must agree\)/,
    );
    expect(() => gLatentLogits(g, g.input('h2', 'float32', [3, 4]), g.input('W4', 'float32', [7, 4]))).toThrow(/h must be \[B, m, d\], got float32\[3, 4\]/);
    expect(() => gLatentLogits(g, h, g.input('W64', 'float64', [7, 4]))).toThrow(/dtypes must agree/);
    const logits = g.input('logits', 'float32', [2, 3, 7]);
    expect(() => gSoftEmbeddingTopK(g, logits, g.input('W8', 'float32', [8, 4]), 2)).toThrow(/V must agree/);
    expect(() => gSoftEmbeddingTopK(g, logits, g.input('W7', 'float32', [7, 4]), 0)).toThrow(/k = 0 must be a positive integer/);
    expect(() => gWeightedEmbedding(g, g.input('i32', 'int32', [2, 3, 2]), g.input('p', 'float32', [2, 3, 2]), g.value('W7'))).toThrow(
      /indices must be int64, got int32\[2, 3, 2\]/,
    );
  });
});
