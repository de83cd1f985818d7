// The gold-CoT evaluation pieces of Phase 1: collatePhase1GoldCot (encoder half as in training, decoder
// half P <think> Z×m </think> ANS with causal + padding attention and contiguous positions, supervised
// on </think> + answer) and sequenceExactMatch (a row counts when every supervised next token is the
// ArgMax), against hand-built feeds and a host reference over random logits.
import { Graph, serialize } from '@latent-sft/graph';
import { FP32_MIN, batchPositions, causalPaddingMask, contiguousPositions, toAdditive } from '@latent-sft/masks';
import { Rng } from '@latent-sft/core';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { collateEncoder } from '../src/phase1.js';
import { collatePhase1GoldCot, phase1LoraDefaults, phase1Objective } from '../src/index.js';
import { sequenceExactMatch } from '../src/graph-parts.js';
import { COMPRESS, END_THINK, EOS, PAD, THINK, config, examples } from './fixtures.js';
import { f32, nums } from './helpers.js';

const opts = { r: 2, compressId: COMPRESS, padId: PAD, ltim: true };

describe('collatePhase1GoldCot', () => {
  const b = collatePhase1GoldCot(examples, opts);
  const f = b.feeds;
  // m = 3 and 2: P P P <t> <t> Z Z Z </t> A A EOS (12) and P P <t> <t> Z Z </t> A EOS (9)
  const T = 12;

  it('the encoder half is collateEncoder', () => {
    const e = collateEncoder(examples, opts);
    expect(b.m).toEqual([3, 2]);
    for (const [k, t] of Object.entries(e.feeds)) expect(nums(f[k])).toEqual(nums(t));
  });

  it('decoder: no spacers, latent slots in a row, labels on </think> + answer only', () => {
    expect(f.input_ids?.dims).toEqual([2, T]);
    expect(nums(f.input_ids)).toEqual([
      ...[10, 11, 12, ...THINK, PAD, PAD, PAD, ...END_THINK, 30, 31, EOS],
      ...[13, 14, ...THINK, PAD, PAD, ...END_THINK, 32, EOS, PAD, PAD, PAD],
    ]);
    const I = -100;
    expect(nums(f.labels)).toEqual([...[I, I, I, I, I, I, I, I, ...END_THINK, 30, 31, EOS], ...[I, I, I, I, I, I, ...END_THINK, 32, EOS, I, I, I]]);
    expect(nums(f.latent_positions)).toEqual([5, 6, 7, 4, 5, 0]);
    expect(nums(f.position_ids)).toEqual(Array.from(batchPositions([contiguousPositions(12), contiguousPositions(9)], T)));
    expect(nums(f.attention_mask)).toEqual(Array.from(toAdditive(causalPaddingMask([12, 9], T), T, FP32_MIN)));
    // the latent slots hold the pad id but are attended (the mask is by length, not by value): row 0, query 8 (</think>), key 5
    expect(nums(f.attention_mask)[8 * T + 5]).toBe(0);
  });

  it("fits phase1Objective's evaluation inputs (no dropout seed even with LoRA dropout)", () => {
    const lora = phase1LoraDefaults({ r: 2, dropout: 0.1 });
    const common = { latent: { kind: 'soft-topk', k: 5 }, ltim: true, ltsum: true, lora } as const;
    expect(Object.keys(phase1Objective(config, { step: 'union', ...common }).batch)).toContain('dropout_seed');
    const obj = phase1Objective(config, { step: 'union', ...common, evaluation: true });
    expect(Object.keys(obj.batch).sort()).toEqual(Object.keys(f).sort());
  });
});

/** Host reference: the fraction of rows whose every label != -100 at t + 1 is the ArgMax of logits[t]. */
function exactReference(logits: Float32Array, labels: number[], B: number, T: number, V: number): number {
  let right = 0;
  for (let b = 0; b < B; b++) {
    let ok = true;
    for (let t = 0; t + 1 < T; t++) {
      const y = labels[b * T + t + 1] as number;
      if (y === -100) continue;
      let best = 0;
      for (let v = 1; v < V; v++) if ((logits[(b * T + t) * V + v] as number) > (logits[(b * T + t) * V + best] as number)) best = v;
      if (best !== y) ok = false;
    }
    if (ok) right++;
  }
  return right / B;
}

describe('sequenceExactMatch', () => {
  it('equals the host rule on rows built to be right, wrong at one supervised token, and wrong only where ignored', async () => {
    const [B, T, V] = [4, 5, 7];
    const rng = Rng.fromSeed(3);
    const logits = Float32Array.from({ length: B * T * V }, () => rng.normal());
    const argmax = (b: number, t: number) => {
      let best = 0;
      for (let v = 1; v < V; v++) if ((logits[(b * T + t) * V + v] as number) > (logits[(b * T + t) * V + best] as number)) best = v;
      return best;
    };
    const labels = new Array<number>(B * T).fill(-100);
    // labels at t = 2..4 are the argmax of the position before (positions 0, 1 are ignored: their random
    // argmax must not count); row 1 then gets one of them off
    for (const b of [0, 1, 2, 3]) for (let t = 2; t < T; t++) labels[b * T + t] = argmax(b, t - 1);
    labels[1 * T + 3] = (argmax(1, 2) + 1) % V;
    const g = new Graph('exact');
    const l = g.input('logits', 'float32', [B, T, V]);
    const y = g.input('labels', 'int64', [B, T]);
    g.output(sequenceExactMatch(g, l, y), 'exact');
    const s = await Session.create(serialize(g).model);
    try {
      const out = await s.run({
        logits: f32([B, T, V], logits),
        labels: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from(labels.map(BigInt)) } as HostTensor,
      });
      const want = exactReference(logits, labels, B, T, V);
      expect(want).toBe(0.75);
      expect(nums(out['exact'])).toEqual([want]);
    } finally {
      await s.release();
    }
  });
});
