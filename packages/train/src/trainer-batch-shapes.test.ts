// TrainerOptions.batchShapes (a step graph of fixed batch dims), on the CPU: the fixed-shape step trains bit
// for bit as the dynamic one (losses, grad norms, weights, moments; a small Llama in float32, full and LoRA),
// its graph's batch inputs carry the dims, a batch of other dims and batchShapes that do not fit the
// objective are one-line errors naming the field. On the GPU (session 10) the 1B LoRA and phase-2 steps at
// fixed shapes gave the dynamic runs' losses bit for bit (train-bench / phase-bench --static-shapes).
import { UserError } from '@latent-sft/core';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyBatch, tinyLoraObjective, tinyObjective } from '../test/tiny-llama.js';
import { type Objective, Trainer, type TrainerOptions, type TrainerState } from './index.js';

const cpu = { kind: 'cpu' } as const;
const [Bt, Tt] = [2, 6];
type Init = { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> };

const dimsOf = (b: Record<string, HostTensor>): Record<string, number[]> => Object.fromEntries(Object.entries(b).map(([n, t]) => [n, [...t.dims]]));

function bits(st: TrainerState): Record<string, Uint32Array> {
  const out: Record<string, Uint32Array> = {};
  for (const t of [...st.trainable, ...st.optimizer]) out[t.name] = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length).slice();
  return out;
}

function options(objective: Objective, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return { objective, optimizer: { kind: 'adamw', lr: 3e-3 }, schedule: { kind: 'constant' }, totalSteps: 3, clipNorm: 1, device: cpu, ...extra };
}

async function train(opts: TrainerOptions, init: Init, batch: Record<string, HostTensor>) {
  const t = await Trainer.create(opts, init);
  try {
    const log: Array<[number, number]> = [];
    for (let s = 0; s < 3; s++) {
      const r = await t.step([batch]);
      log.push([r.loss, r.gradNorm]);
    }
    return { log, state: bits(await t.state()) };
  } finally {
    await t.release();
  }
}

describe('Trainer batchShapes: a fixed-shape step graph (CPU, small Llama)', () => {
  // 'batch': the objectives' batch dim is symbolic, as the phase objectives' are.
  const full = tinyObjective('batch', Tt, 'float32');
  const lora = tinyLoraObjective('batch', Tt, 'float32');
  const cases: Array<[string, Objective, Init, Record<string, HostTensor>]> = [
    ['full fine-tuning', full.objective, { trainable: full.init, frozen: {} }, tinyBatch(Bt, Tt)],
    ['LoRA', lora.objective, lora.init, tinyBatch(Bt, Tt)],
  ];
  for (const [name, objective, init, batch] of cases) {
    it(`${name}: 3 steps bit for bit the dynamic-shape step's (losses, grad norms, weights, moments)`, async () => {
      const fixed = await train(options(objective, { batchShapes: dimsOf(batch) }), init, batch);
      const dynamic = await train(options(objective), init, batch);
      expect(fixed.log).toEqual(dynamic.log);
      expect(fixed.state).toEqual(dynamic.state);
      expect(fixed.log[2]?.[0]).toBeLessThan(fixed.log[0]?.[0] as number); // it trained
    });
  }

  it("the step graph's batch inputs carry the dims; the objective's symbolic ones stay in the dynamic graph", () => {
    const shapes = dimsOf(tinyBatch(Bt, Tt));
    const fixed = Trainer.stepGraphs(options(full.objective, { batchShapes: shapes })).graphs.fused;
    const dynamic = Trainer.stepGraphs(options(full.objective)).graphs.fused;
    for (const n of Object.keys(full.objective.batch)) {
      expect(fixed?.inputs.find((i) => i.name === n)?.shape).toEqual(shapes[n]);
      expect(dynamic?.inputs.find((i) => i.name === n)?.shape.some((d) => typeof d === 'string')).toBe(true);
    }
  });

  it('a batch of other dims is a one-line error naming the input', async () => {
    const t = await Trainer.create(options(full.objective, { batchShapes: dimsOf(tinyBatch(Bt, Tt)) }), { trainable: full.init, frozen: {} });
    try {
      await expect(t.step([tinyBatch(Bt, Tt + 1)])).rejects.toThrow(/batches\[0\] \(batchShapes\)\.input_ids.*dims \[2, 7\] do not fit \[2, 6\]/);
    } finally {
      await t.release();
    }
  });

  it('refuses batchShapes that do not fit the objective, each in one line naming the field', () => {
    const good = dimsOf(tinyBatch(Bt, Tt));
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...good, extra: [1] }, /batchShapes\.extra.*not a batch input/],
      [Object.fromEntries(Object.entries(good).slice(1)), /batchShapes\.input_ids.*missing/],
      [{ ...good, input_ids: [2] }, /batchShapes\.input_ids.*dims \[2\] do not fit/],
      [{ ...good, input_ids: [2, 0] }, /batchShapes\.input_ids.*do not fit/],
      [{ ...good, input_ids: [2, 1.5] }, /batchShapes\.input_ids.*do not fit/],
      [{ ...good, attention_mask: [1, Tt] }, /batchShapes\.attention_mask.*gives 'batch' = 1, batchShapes\.input_ids gives 2/],
    ];
    for (const [shapes, re] of bad) {
      const f = () => Trainer.stepGraphs(options(full.objective, { batchShapes: shapes as Record<string, number[]> }));
      expect(f).toThrow(UserError);
      expect(f).toThrow(re);
    }
  });
});
