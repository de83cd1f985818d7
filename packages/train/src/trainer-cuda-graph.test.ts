// What Trainer.cudaGraph rests on, on the CPU: TrainerOptions.batchShapes (a step graph of fixed batch dims)
// trains bit for bit as the dynamic one (losses, grad norms, weights, moments; a small Llama in float32,
// full and LoRA), its graph's batch inputs carry the dims, a batch of other dims is a one-line error; the
// update gate (StepGraphOptions.updateGate, what makes ORT's warm-up and capture runs no-ops) leaves every
// state bit for bit as it was when NaN and changes nothing when 1; cudaGraph refuses what a replayed graph
// cannot do (each in one line naming the field). The CUDA graph itself runs only on a GPU: tools/bench
// (train-bench / phase-bench --cuda-graph) compares its losses with the launched step's in the same lease.
import { UserError } from '@latent-sft/core';
import { serialize } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyBatch, tinyLoraObjective, tinyObjective } from '../test/tiny-llama.js';
import { graphOptimizer } from './graph-optim.js';
import { type Objective, Trainer, type TrainerOptions, type TrainerState, buildStepGraphs } from './index.js';
import { STEP_GATE } from './step-graphs.js';
import { runOnce } from './testing.js';

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
    ];
    for (const [shapes, re] of bad) {
      const f = () => Trainer.stepGraphs(options(full.objective, { batchShapes: shapes as Record<string, number[]> }));
      expect(f).toThrow(UserError);
      expect(f).toThrow(re);
    }
  });
});

describe('the update gate of a fused step graph (CPU, small Llama, fused AdamW)', () => {
  const { objective, init } = tinyObjective('batch', Tt, 'float32');
  const optimizer = graphOptimizer({ kind: 'adamw', lr: 3e-3, weightDecay: 0.01 });
  const graph = (updateGate: boolean) =>
    serialize(buildStepGraphs({ objective, optimizer, clipNorm: 1, compute: 'float32', lossScale: false, fused: true, updateGate }, 1).fused!).model;
  const u32 = (t: HostTensor | undefined): Uint32Array => {
    if (t === undefined) throw new Error('no such tensor');
    const d = t.data as Float32Array;
    return new Uint32Array(d.buffer, d.byteOffset, d.length).slice();
  };
  const inputs = (): Record<string, HostTensor> => {
    const out: Record<string, HostTensor> = { ...init, ...tinyBatch(Bt, Tt) };
    for (const [n, t] of Object.entries(init)) {
      // moments that are not zero, so that a write-back is told from a fresh update
      out[`m.${n}`] = { dtype: 'float32', dims: t.dims, data: (t.data as Float32Array).map((x) => x * 0.01) };
      out[`v.${n}`] = { dtype: 'float32', dims: t.dims, data: (t.data as Float32Array).map((x) => x * x * 1e-4) };
    }
    for (const [k, v] of Object.entries(optimizer.scalars(3, 3e-3))) out[k] = { dtype: 'float32', dims: [], data: Float32Array.of(v) };
    return out;
  };

  it("gate 1: every output bit for bit the ungated graph's; gate NaN: every master and moment written back as read", async () => {
    const plain = await runOnce(graph(false), inputs(), cpu);
    const gate = (v: number) => ({ ...inputs(), [STEP_GATE]: { dtype: 'float32', dims: [], data: Float32Array.of(v) } as HostTensor });
    const open = await runOnce(graph(true), gate(1), cpu);
    const shut = await runOnce(graph(true), gate(Number.NaN), cpu);
    expect(Object.keys(open).sort()).toEqual(Object.keys(plain).sort());
    for (const k of Object.keys(plain)) expect(u32(open[k]), k).toEqual(u32(plain[k]));
    const inp = inputs();
    let moved = 0;
    for (const n of Object.keys(init)) {
      for (const k of [n, `m.${n}`, `v.${n}`]) {
        expect(u32(shut[`${k}.new`]), k).toEqual(u32(inp[k]));
        if (u32(open[`${k}.new`]).some((x, i) => x !== u32(inp[k])[i])) moved++;
      }
    }
    expect(moved).toBe(3 * Object.keys(init).length); // gate 1 did update every state
    expect(shut['loss']?.data).toEqual(open['loss']?.data); // the forward is the same either way
  });

  it('only on a fused step graph with the fused optimizer', () => {
    const o = { objective, optimizer, clipNorm: 1, compute: 'float32' as const, lossScale: false, updateGate: true };
    expect(() => buildStepGraphs({ ...o, fused: true }, 2)).toThrow(/updateGate.*only the fused step graph/);
    expect(() => buildStepGraphs({ ...o, fused: false }, 1)).toThrow(/updateGate.*needs the fused optimizer/);
  });
});

describe('Trainer cudaGraph: what a replayed graph needs, refused in one line', () => {
  const { objective, init } = tinyObjective('batch', Tt, 'float32');
  const shapes = dimsOf(tinyBatch(Bt, Tt));
  const cases: Array<[string, Partial<TrainerOptions>, RegExp]> = [
    ['without batchShapes', { cudaGraph: true }, /cudaGraph.*needs batchShapes/],
    ['with gradient accumulation', { cudaGraph: true, batchShapes: shapes, gradAccum: 2 }, /cudaGraph.*one fused step graph/],
    ['with double-buffered state', { cudaGraph: true, batchShapes: shapes, inPlaceState: false }, /cudaGraph.*needs in-place state/],
    ['on the CPU', { cudaGraph: true, batchShapes: shapes }, /cudaGraph.*needs the CUDA device, got cpu/],
    ['not a boolean', { cudaGraph: 'yes' as unknown as boolean, batchShapes: shapes }, /cudaGraph.*expected true or false/],
  ];
  for (const [name, extra, re] of cases) {
    it(name, async () => {
      const p = Trainer.create(options(objective, extra), { trainable: init, frozen: {} });
      await expect(p).rejects.toThrow(UserError);
      await expect(Trainer.create(options(objective, extra), { trainable: init, frozen: {} })).rejects.toThrow(re);
    });
  }
});
