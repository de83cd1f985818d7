// The latent-cache forward: per-example (probs, ids) with the right m, the full-vocabulary variant
// sums to one over ids 0..V−1, and the top-k variant equals latent.topKDistribution (CPU, fp64) of
// the full variant's log-probabilities (logits up to a per-row constant). The 16-bit path (compute
// float16, the weights fed as float16 bits: a 16-bit checkpoint as stored) against float32 compute on the
// same weights: log-probabilities, top-k probabilities and ids, hidden states.
import { matrix, topKDistribution } from '@latent-sft/latent';
import { f16BitsToFloat32, float32ToF16Bits } from '@latent-sft/models';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { serialize } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { buildLatentCacheGraph, computeHiddenLatents, computeLatents, encoderConfig, phase1LoraDefaults } from '../src/index.js';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';

/** fp32 graph vs fp64 CPU on probabilities. */
const F32 = { rtol: 1e-4, atol: 1e-6 };

/**
 * float16 against float32 compute on the same weights: |Δ log-probability| (= Δ logit up to a per-row
 * constant) of the full-vocabulary latents; measured 1.9e-4 on this fixture. Two logits are then ordered
 * alike whenever their float32 gap exceeds 2·F16_LOGIT.
 */
const F16_LOGIT = 1e-3;
/** float16 vs float32 top-k probabilities of the same ids: each is a softmax of logits off by ≤ F16_LOGIT (+ float32 rounding). */
const F16_PROBS = { rtol: 2.5 * F16_LOGIT, atol: 1e-7 };
/** float16 vs float32 hidden latents (|h| ≤ 2.1 here): measured 1.7e-3, i.e. a few float16 ulps of the largest values. */
const F16_HIDDEN = { rtol: 0, atol: 1e-2 };

/** Each float32 weight rounded to float16: as float16 bits, and the same values as float32. */
function asF16(w: Record<string, HostTensor>): { f16: Record<string, HostTensor>; f32: Record<string, HostTensor> } {
  const f16: Record<string, HostTensor> = {};
  const f32: Record<string, HostTensor> = {};
  for (const [n, t] of Object.entries(w)) {
    const bits = Uint16Array.from(t.data as Float32Array, (v) => float32ToF16Bits(v));
    f16[n] = { dtype: 'float16', dims: t.dims, data: bits };
    f32[n] = { dtype: 'float32', dims: t.dims, data: Float32Array.from(bits, (b) => f16BitsToFloat32(b)) };
  }
  return { f16, f32 };
}

describe('computeLatents', () => {
  it('top-k latents per example equal topKDistribution of the full-vocabulary run', async () => {
    const lora = phase1LoraDefaults({ r: 4, dropout: 0.1 }).encoder;
    const weights = {
      ...weightFeeds(1, 'encoder.', 'float32', 1),
      ...loraFeeds(encoderConfig(config), lora, 9, 'encoder.', 'float32', true),
      'decoder.model.embed_tokens.weight': weightFeeds(1)['model.embed_tokens.weight']!,
    };
    const opts = { r: 2, compressId: COMPRESS, padId: PAD, ltim: true };
    const run = async (k: number) => computeLatents(await Session.create(serialize(buildLatentCacheGraph(config, { k, lora })).model), weights, examples, opts);
    const full = await run(V + 5);
    const top = await run(4);
    expect(full.map((t) => [t.m, t.k])).toEqual([
      [3, V],
      [2, V],
    ]);
    expect(top.map((t) => [t.m, t.k])).toEqual([
      [3, 4],
      [2, 4],
    ]);
    full.forEach((t, b) => {
      for (let i = 0; i < t.m; i++) {
        const row = Array.from(t.probs.slice(i * V, (i + 1) * V));
        expect(row.reduce((a, p) => a + p, 0)).toBeAllclose(1, F32);
        expect(Array.from(t.indices!.slice(i * V, (i + 1) * V))).toEqual(Array.from({ length: V }, (_, v) => v));
      }
      const ref = topKDistribution(matrix(Float64Array.from(t.probs, Math.log), t.m, V), 4);
      expect(Array.from(top[b]!.indices!)).toEqual(Array.from(ref.indices.data));
      expect(Array.from(top[b]!.probs)).toBeAllclose(Array.from(ref.probs.data), F32);
    });
  });

  it('float16 compute on 16-bit weights agrees with float32 compute (F16_LOGIT): log-probabilities, top-k probabilities and ids, hidden states', async () => {
    const K = 4;
    const lora = phase1LoraDefaults({ r: 4, dropout: 0.1 }).encoder;
    // The LoRA (float32, cast in-graph) with B at 0.03·N(0,1): a trained adapter's size. B at 0.3 as in the
    // test above makes the encoder chaotic (float16 hidden states then differ by 1 %).
    const loraW = Object.fromEntries(
      Object.entries(loraFeeds(encoderConfig(config), lora, 9, 'encoder.', 'float32', true)).map(([n, t]) => [
        n,
        /lora_(embedding_)?B/.test(n) ? { ...t, data: Float32Array.from(t.data as Float32Array, (v) => 0.1 * v) } : t,
      ]),
    );
    const w = asF16({ ...weightFeeds(1, 'encoder.', 'float32', 1), 'decoder.model.embed_tokens.weight': weightFeeds(1)['model.embed_tokens.weight']! });
    const opts = { r: 2, compressId: COMPRESS, padId: PAD, ltim: true };
    const graph = (k: number, compute: 'float32' | 'float16', latent: 'soft' | 'hidden' = 'soft') =>
      Session.create(serialize(buildLatentCacheGraph(config, { k, lora, compute, latent })).model);
    const soft = async (k: number, compute: 'float32' | 'float16') =>
      computeLatents(await graph(k, compute), { ...(compute === 'float16' ? w.f16 : w.f32), ...loraW }, examples, opts);
    expect(buildLatentCacheGraph(config, { k: K, compute: 'float16' }).inputs.filter((i) => i.name.endsWith('embed_tokens.weight'))).toMatchObject([
      { dtype: 'float16' },
      { dtype: 'float16' },
    ]);
    const [full32, full16, top32, top16] = [await soft(V, 'float32'), await soft(V, 'float16'), await soft(K, 'float32'), await soft(K, 'float16')];
    let orderedIds = 0;
    full32.forEach((t, b) => {
      const lp32 = Array.from(t.probs, Math.log);
      expect(Array.from(full16[b]!.probs, Math.log)).toBeAllclose(lp32, { rtol: 0, atol: F16_LOGIT });
      const [t16, t32] = [top16[b]!, top32[b]!];
      expect([t16.m, t16.k, t16.probs.length]).toEqual([t32.m, K, t32.m * K]);
      for (let i = 0; i < t.m; i++) {
        const row = lp32.slice(i * V, (i + 1) * V);
        const sorted = [...row].sort((x, y) => y - x);
        const ids16 = Array.from(t16.indices!.slice(i * K, (i + 1) * K));
        const ids32 = Array.from(t32.indices!.slice(i * K, (i + 1) * K));
        // The probabilities: float32's distribution renormalised over the ids float16 chose.
        const e = ids16.map((id) => Math.exp(row[id]!));
        const z = e.reduce((a, x) => a + x, 0);
        expect(Array.from(t16.probs.slice(i * K, (i + 1) * K))).toBeAllclose(
          e.map((x) => x / z),
          F16_PROBS,
        );
        // The ids: every one within 2·F16_LOGIT of float32's k-th logit; rank j the same id where float32's
        // gaps on both sides of rank j exceed 2·F16_LOGIT (no order that noise can flip).
        for (const id of ids16) expect(row[id]!).toBeGreaterThan(sorted[K - 1]! - 2 * F16_LOGIT);
        for (let j = 0; j < K; j++) {
          if ((j > 0 && sorted[j - 1]! - sorted[j]! <= 2 * F16_LOGIT) || sorted[j]! - sorted[j + 1]! <= 2 * F16_LOGIT) continue;
          expect(ids16[j]).toBe(ids32[j]);
          orderedIds++;
        }
      }
    });
    expect(orderedIds).toBeGreaterThan(0); // the id check is not vacuous on this fixture

    const encoderOnly = (r: Record<string, HostTensor>) => Object.fromEntries(Object.entries({ ...r, ...loraW }).filter(([n]) => n.startsWith('encoder.')));
    const [h32, h16] = [
      await computeHiddenLatents(await graph(K, 'float32', 'hidden'), encoderOnly(w.f32), examples, opts),
      await computeHiddenLatents(await graph(K, 'float16', 'hidden'), encoderOnly(w.f16), examples, opts),
    ];
    h32.forEach((t, b) => {
      expect(h16[b]!.hidden).toBeInstanceOf(Float32Array);
      expect(Array.from(h16[b]!.hidden)).toBeAllclose(Array.from(t.hidden), F16_HIDDEN);
    });
  });

  it('bad options: one-line errors', () => {
    expect(() => buildLatentCacheGraph(config, { k: 4, compute: 'int8' as never })).toThrow(
      /^field 'compute': expected one of float32, float64, float16, bfloat16, got "int8"$/,
    );
    expect(() => buildLatentCacheGraph(config, { k: 0 })).toThrow(/k.*positive integer/);
    expect(() => buildLatentCacheGraph(config, { k: 4, lora: phase1LoraDefaults().decoder })).toThrow(/FEATURE_EXTRACTION/);
  });
});
