// Phase 2 on a random tiny Llama in float64: the KL term equals latent.klTopK (CPU, fp64) on the same
// student logits taken at the previous position, the CE term equals a CPU cross-entropy over the
// same logits, the previous-position rows equal latent.gShiftedSlotLogits; Gumbel teachers are
// seeded per (seed, epoch, example) and respect the latent-end guard.
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, serialize } from '@latent-sft/graph';
import { gShiftedSlotLogits, klTopK, matrix } from '@latent-sft/latent';
import { Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { type Phase2Example, collatePhase2, defaultLora, perturbTeacher, phase2Objective } from '../src/index.js';
import { phase2Terms } from '../src/phase2.js';
import { PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';
import { handCrossEntropy, nums } from './helpers.js';

/** float64 graph vs fp64 CPU references (ORT "basic" optimisation: the "all" level fuses SiLU into a float-only QuickGelu). */
const F64 = { rtol: 1e-10, atol: 1e-12 };

const lora = defaultLora('CAUSAL_LM', { r: 4, alpha: 8, dropout: 0 });
const K = 4;

function teacherFor(rng: Rng, m: number) {
  const probs = new Float64Array(m * K);
  const indices = new Int32Array(m * K);
  for (let i = 0; i < m; i++) {
    const ids = rng.permutation(V).slice(0, K);
    const logits = ids.map(() => 2 * rng.normal());
    const z = logits.reduce((a, l) => a + Math.exp(l), 0);
    ids.forEach((id, j) => {
      indices[i * K + j] = id;
      probs[i * K + j] = Math.exp(logits[j]!) / z;
    });
  }
  return { m, k: K, probs, indices };
}

describe('phase2Objective terms', () => {
  it('KL equals latent.klTopK on the previous-position logits; CE equals a CPU cross-entropy; rows equal gShiftedSlotLogits', async () => {
    const rng = Rng.fromSeed(11);
    const ex2: Phase2Example[] = examples.map((e, i) => ({ ...e, teacher: teacherFor(rng, i === 0 ? 3 : 2) }));
    const batch = collatePhase2(ex2, { padId: PAD, latent: 'soft-topk', vocabSize: V, dtype: 'float64' });
    const obj = phase2Objective(config, { latent: 'soft-topk', lora, dtype: 'float64' });
    const g = new Graph('p2');
    const tr: Record<string, Tensor> = {};
    for (const [n, s] of Object.entries(obj.trainable)) tr[n] = g.input(n, s.dtype, s.shape);
    const inputs: Record<string, Tensor> = {};
    for (const [n, s] of Object.entries({ ...obj.frozen, ...obj.batch })) inputs[n] = g.input(n, s.dtype, s.shape);
    const t = phase2Terms(g, config, { latent: 'soft-topk', lora, dtype: 'float64' }, tr, inputs);
    const M = 3;
    const shifted = gShiftedSlotLogits(g, t.logits, g.input('latent_start', 'int64', ['batch']), M);
    for (const [n, v] of Object.entries({ logits: t.logits, student: t.student, ce: t.ce, kl: t.kl, shifted })) g.output(v, n);
    g.prune();
    const s = await Session.create(serialize(g).model, { graphOptimizationLevel: 'basic' });
    const feeds = {
      ...weightFeeds(3, '', 'float64'),
      ...loraFeeds(config, lora, 4, '', 'float64', true),
      ...batch.feeds,
      latent_start: { dtype: 'int64' as const, dims: [2], data: BigInt64Array.from(batch.latentStart, BigInt) },
    };
    const out = await s.run(feeds);
    const logits = nums(out.logits);
    const T = batch.feeds.input_ids!.dims[1] as number;
    // KL: mean over examples of the mean over its slots, student row s+t-1.
    let kl = 0;
    ex2.forEach((ex, b) => {
      const s0 = batch.latentStart[b]!;
      const rows = logits.slice((b * T + s0 - 1) * V, (b * T + s0 - 1 + ex.teacher.m) * V);
      kl += klTopK(
        matrix(ex.teacher.probs, ex.teacher.m, K),
        matrix(ex.teacher.indices as Int32Array, ex.teacher.m, K),
        matrix(Float64Array.from(rows), ex.teacher.m, V),
      ).mean;
    });
    expect(nums(out.kl)[0]).toBeAllclose(kl / 2, F64);
    expect(kl).toBeGreaterThan(0.1);
    // CE: token mean of -log softmax(logits[b,t])[labels[b,t+1]].
    expect(nums(out.ce)[0]).toBeAllclose(handCrossEntropy(logits, nums(batch.feeds.labels), 2, T, V), F64);
    // previous-position rows: identical to gShiftedSlotLogits on every valid slot
    const valid = nums(batch.feeds.latent_valid);
    const student = nums(out.student);
    const ref = nums(out.shifted);
    valid.forEach((v, i) => {
      if (v) expect(student.slice(i * V, (i + 1) * V)).toEqual(ref.slice(i * V, (i + 1) * V));
    });
  });

  it('soft-full teachers: KL over the full vocabulary is finite and the loss is CE + KL', async () => {
    const rng = Rng.fromSeed(12);
    const full = (m: number) => {
      const probs = new Float64Array(m * V);
      for (let i = 0; i < m; i++) {
        const e = Array.from({ length: V }, () => Math.exp(rng.normal()));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((x, j) => {
          probs[i * V + j] = x / z;
        });
      }
      return { m, k: V, probs };
    };
    const ex2: Phase2Example[] = examples.map((e, i) => ({ ...e, teacher: full(i + 1) }));
    const batch = collatePhase2(ex2, { padId: PAD, latent: 'soft-full', vocabSize: V, dtype: 'float64' });
    const obj = phase2Objective(config, { latent: 'soft-full', lora, dtype: 'float64', klWeight: 0.5 });
    const g = new Graph('p2full');
    const tr = Object.fromEntries(Object.entries(obj.trainable).map(([n, s]) => [n, g.input(n, s.dtype, s.shape)]));
    const inputs = Object.fromEntries(Object.entries({ ...obj.frozen, ...obj.batch }).map(([n, s]) => [n, g.input(n, s.dtype, s.shape)]));
    const { loss, metrics } = obj.buildLoss(g, tr, inputs);
    g.output(loss, 'loss');
    g.output(metrics!.ce!, 'ce');
    g.output(metrics!.kl!, 'kl');
    g.prune();
    const out = await (await Session.create(serialize(g).model, { graphOptimizationLevel: 'basic' })).run({
      ...weightFeeds(3, '', 'float64'),
      ...loraFeeds(config, lora, 4, '', 'float64'),
      ...batch.feeds,
    });
    const [l, ce, kl] = [nums(out.loss)[0]!, nums(out.ce)[0]!, nums(out.kl)[0]!];
    expect(kl).toBeGreaterThan(0);
    expect(l).toBeAllclose(ce + 0.5 * kl, F64);
  });
});

describe('perturbTeacher', () => {
  const t = {
    m: 3,
    k: 4,
    probs: Float64Array.from([0.7, 0.1, 0.1, 0.1, 0.4, 0.3, 0.2, 0.1, 0.25, 0.25, 0.25, 0.25]),
    indices: Int32Array.from([9, 1, 2, 3, 4, 9, 6, 7, 8, 10, 11, 12]),
  };
  const opts = { seed: 5, epoch: 0, index: 17, latentEndId: 9 };

  it('is a function of (seed, epoch, index), fresh per epoch, and keeps the end id off the argmax', () => {
    const a = perturbTeacher(t, opts);
    const b = perturbTeacher(t, opts);
    const c = perturbTeacher(t, { ...opts, epoch: 1 });
    expect(Array.from(a.teacher.probs)).toEqual(Array.from(b.teacher.probs));
    expect(Array.from(a.teacher.probs)).not.toEqual(Array.from(c.teacher.probs));
    expect(Array.from(a.teacher.probs)).not.toEqual(Array.from(t.probs));
    for (const r of [a, c]) {
      expect(r.guardFailed).toBe(false);
      for (let i = 0; i < 3; i++) {
        const row = Array.from(r.teacher.probs.slice(i * 4, i * 4 + 4));
        expect(row.reduce((x, y) => x + y, 0)).toBeAllclose(1, { rtol: 1e-12 });
        expect(t.indices[i * 4 + row.indexOf(Math.max(...row))]).not.toBe(9);
      }
    }
    expect(a.teacher.indices).toBe(t.indices);
  });

  it('bad input: one-line errors', () => {
    expect(() => perturbTeacher({ m: 1, k: 2, probs: Float64Array.from([0.5, 0.5]) }, opts)).toThrow(/needs top-k teachers/);
    expect(() => perturbTeacher(t, { ...opts, epoch: -1 })).toThrow(/epoch.*non-negative integer/);
  });
});
