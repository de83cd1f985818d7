// Data-parallel training with the TCP process group, both ranks in this process (the app test in
// apps/cot-sft runs them as processes): a tiny Llama (float32, AdamW, warmup/decay, clipping that
// bites) trained by 2 ranks on half of every batch each ends with the same weights as one process on
// the whole batch, and bit for bit as one process accumulating the two halves (gradAccum 2); through
// trainWithCheckpoints with uneven and empty shards (batches of 4 and 1 over 2 ranks) and an exact
// resume in which rank 0's checkpoint reaches rank 1 by broadcast.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@latent-sft/core';
import { type ProcessGroup, connectTcpGroup, freePort } from '@latent-sft/distributed';
import { tinyLlama } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyObjective } from '../test/tiny-llama.js';
import { CheckpointManager, type RunRecord, Trainer, type TrainerOptions, safetensorsCodec, trainWithCheckpoints } from './index.js';

const T = 8;
const SIZE = 5;
const V = tinyLlama().vocabSize;
const { objective, init } = tinyObjective('batch', T, 'float32');
const CLIP = 0.5;
/**
 * One process on the whole batch vs two ranks on halves: the same math, float32 sums in another
 * order (the batch mean vs the mean of two half means), so the weights agree to float32 rounding
 * amplified by AdamW's m/√v on near-zero gradients; measured max |Δ| 7.5e-9 after 3 steps at lr 1e-2
 * (the weights are O(0.05)); atol 1e-6 keeps a margin for another CPU's kernels.
 */
const WHOLE_VS_SHARDS = { rtol: 0, atol: 1e-6 };

// SIZE sequences of T random tokens, every position a label (the same token count per example, so the
// mean over examples of per-example means is the batch's token mean).
const rows = (() => {
  const r = Rng.fromSeed(9);
  return Array.from({ length: SIZE }, () => BigInt64Array.from({ length: T }, () => BigInt(Math.floor(r.uniform() * V))));
})();

function feeds(indices: readonly number[]): Record<string, HostTensor> {
  const dims = [indices.length, T];
  const ids = new BigInt64Array(indices.length * T);
  indices.forEach((k, j) => ids.set(rows[k] as BigInt64Array, j * T));
  const i64 = (data: BigInt64Array): HostTensor => ({ dtype: 'int64', dims, data });
  return {
    input_ids: i64(ids),
    labels: i64(ids.slice()),
    attention_mask: i64(new BigInt64Array(ids.length).fill(1n)),
    position_ids: i64(BigInt64Array.from({ length: ids.length }, (_, i) => BigInt(i % T))),
  };
}

function trainer(extra: Partial<TrainerOptions> = {}, start = init): Promise<Trainer> {
  return Trainer.create(
    {
      objective,
      optimizer: { kind: 'adamw', lr: 1e-2, weightDecay: 0.01 },
      schedule: { kind: 'linear', warmupSteps: 1, totalSteps: 4 },
      totalSteps: 4,
      clipNorm: CLIP,
      device: { kind: 'cpu' },
      fusedKernels: false,
      ...extra,
    },
    { trainable: start, frozen: {} },
  );
}

async function pair(): Promise<ProcessGroup[]> {
  const port = await freePort('127.0.0.1');
  return Promise.all([0, 1].map((rank) => connectTcpGroup({ rank, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port })));
}

const weights = (t: Trainer) => Object.fromEntries(t.stateSync().trainable.map((x) => [x.name, x.data]));

/** Every tensor of `a` within `tol` of `b` (toEqual when tol is null). */
function expectSameWeights(a: Record<string, Float32Array>, b: Record<string, Float32Array>, tol: { rtol: number; atol: number } | null): void {
  expect(Object.keys(a)).toEqual(Object.keys(b));
  for (const [n, v] of Object.entries(a)) {
    if (tol === null) expect(v, n).toEqual(b[n]);
    else expect(v, n).toBeAllclose(b[n] as Float32Array, tol);
  }
}

describe('data-parallel Trainer (2 ranks over TCP)', () => {
  it('halves on 2 ranks = the whole batch on one process (tolerance) = the halves accumulated on one process (bits)', async () => {
    const batches = [
      [0, 1, 2, 3],
      [4, 0, 1, 2],
      [3, 4, 0, 1],
    ];
    const whole = await trainer();
    const accum = await trainer({ gradAccum: 2 });
    const groups = await pair();
    const ranks = await Promise.all(groups.map((group) => trainer({ group })));
    try {
      for (const b of batches) {
        const w = await whole.step([feeds(b)]);
        const a = await accum.step([feeds(b.slice(0, 2)), feeds(b.slice(2))]);
        const [r0, r1] = await Promise.all(ranks.map((t, r) => t.step([feeds(b.slice(2 * r, 2 * r + 2))])));
        expect(w.gradNorm).toBeGreaterThan(CLIP); // the clip applies, to the global norm
        const { timing: _t0, ...s0 } = r0!;
        const { timing: _t1, ...s1 } = r1!;
        expect(s0).toEqual(s1); // the ranks agree on everything but their own wall times
        expect(r0!.gradNorm).toBe(a.gradNorm);
        expect(r0!.loss).toBeCloseTo(a.loss, 6); // float32 vs float64 mean of the same two losses
        expect(r0!.gradNorm).toBeAllclose(w.gradNorm, { rtol: 1e-5, atol: 0 });
      }
      const dp = weights(ranks[0]!);
      expectSameWeights(weights(ranks[1]!), dp, null);
      expectSameWeights(dp, weights(accum), null);
      expectSameWeights(dp, weights(whole), WHOLE_VS_SHARDS);
    } finally {
      for (const t of [whole, accum, ...ranks]) await t.release();
      await Promise.all(groups.map((g) => g.close()));
    }
  }, 300_000);

  it('trainWithCheckpoints: uneven and empty shards weigh as the whole batch; rank 1 resumes from rank 0 checkpoint by broadcast', async () => {
    const record: RunRecord = { app: 'dp-test', schemaVersion: 1, configHash: 'e'.repeat(64), createdAt: '2024-01-01T00:00:00.000Z', config: {} };
    const open = (dir: string) =>
      CheckpointManager.open({ dir, keepLast: 2, keepBest: false, metricMode: 'min', codec: safetensorsCodec, record, resume: true });
    const common = {
      seed: 3,
      data: { size: SIZE, batchSize: 4 },
      checkpointEvery: 2,
      now: () => 0,
      batches: (b: { indices: readonly number[] }) => [feeds(b.indices)],
    };
    const tmp = () => mkdtempSync(join(tmpdir(), 'dp-train-'));

    const single = await trainer();
    const seen: number[][] = [];
    await trainWithCheckpoints({ ...common, trainer: single, manager: open(tmp()), steps: 3, onStep: (r, s) => seen.push([s.dataPosition]) });
    expect(seen).toEqual([[0], [4], [0]]); // batches of 4, then 1 (rank 1's shard is empty), then 4
    const want = weights(single);
    await single.release();

    /** Two ranks through trainWithCheckpoints into `dir` up to `steps`; rank 1 starts from other weights (rank 0's reach it). */
    const dp = async (dir: string, steps: number) => {
      const groups = await pair();
      const other = Object.fromEntries(Object.entries(init).map(([n, t]) => [n, { ...t, data: (t.data as Float32Array).map((v) => v + 1) }]));
      const ts = await Promise.all(groups.map((group, r) => trainer({ group }, r === 0 ? init : other)));
      try {
        // A rank that fails drops its connections (as its process would end), so the other one fails too.
        const run = (t: Trainer, r: number) =>
          trainWithCheckpoints({ ...common, trainer: t, manager: r === 0 ? open(dir) : null, steps }).catch(async (e: unknown) => {
            await groups[r]!.close();
            throw e;
          });
        const runs = await Promise.allSettled(ts.map(run));
        for (const x of runs) if (x.status === 'rejected') throw x.reason;
        const w = ts.map(weights);
        expectSameWeights(w[1]!, w[0]!, null);
        return w[0]!;
      } finally {
        for (const t of ts) await t.release();
        await Promise.all(groups.map((g) => g.close()));
      }
    };
    const straight = await dp(tmp(), 3);
    expectSameWeights(straight, want, WHOLE_VS_SHARDS);
    const dir = tmp();
    await dp(dir, 2);
    expectSameWeights(await dp(dir, 3), straight, null);
  }, 300_000);
});
