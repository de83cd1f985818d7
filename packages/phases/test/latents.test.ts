// The latent-cache forward: per-example (probs, ids) with the right m, the full-vocabulary variant
// sums to one over ids 0..V−1, and the top-k variant equals latent.topKDistribution (CPU, fp64) of
// the full variant's log-probabilities (logits up to a per-row constant).
import { matrix, topKDistribution } from '@latent-sft/latent';
import { Session } from '@latent-sft/runtime';
import { serialize } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { buildLatentCacheGraph, computeLatents, encoderConfig, phase1LoraDefaults } from '../src/index.js';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';

/** fp32 graph vs fp64 CPU on probabilities. */
const F32 = { rtol: 1e-4, atol: 1e-6 };

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

  it('bad options: one-line errors', () => {
    expect(() => buildLatentCacheGraph(config, { k: 0 })).toThrow(/k.*positive integer/);
    expect(() => buildLatentCacheGraph(config, { k: 4, lora: phase1LoraDefaults().decoder })).toThrow(/FEATURE_EXTRACTION/);
  });
});
