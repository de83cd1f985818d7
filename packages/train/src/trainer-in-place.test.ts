// The Trainer with in-place state (TrainerOptions.inPlaceState) on the CPU against double buffering:
// losses, grad norms, weights and AdamW moments bit for bit the same over several steps (a small Llama
// in float32 and float16 — ORT's CPU provider has no bfloat16 Add/MatMul — with and without the AdamWCopy
// weight copies, gradient accumulation, LoRA), skipped fp16 steps and NonFiniteError (NaN loss and grads; a non-finite loss with finite grads)
// leaving the state bit for bit as it was, which mode a trainer took and why, and the second buffer gone
// (native tensors counted).
import type { Graph, Tensor } from '@latent-sft/graph';
import { DeviceBinding, type HostTensor, liveTensorCount } from '@latent-sft/runtime';
import { describe, expect, it, vi } from 'vitest';
import { tinyBatch, tinyLoraObjective, tinyObjective } from '../test/tiny-llama.js';
import { mlpBatch, mlpData, mlpInit, mlpObjective } from '../test/objectives.js';
import { NonFiniteError } from './metrics.js';
import { type Objective, Trainer, type TrainerOptions, type TrainerState } from './index.js';

const cpu = { kind: 'cpu' } as const;
const [Bt, Tt] = [2, 6];
type Init = { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> };

/** Bits of every state tensor, by name (bit for bit: -0 ≠ 0). */
function stateBits(st: TrainerState): Record<string, Uint32Array> {
  const out: Record<string, Uint32Array> = {};
  for (const t of [...st.trainable, ...st.optimizer]) out[t.name] = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length).slice();
  return out;
}

/** `objective` with two batch scalars: loss·poison_mul + log(poison_log) — 1 and 1 leave it exact; NaN poisons loss and grads, 0 only the loss (−inf, grads finite). */
function poisonable(objective: Objective): Objective {
  return {
    ...objective,
    batch: { ...objective.batch, poison_mul: { dtype: 'float32', shape: [1] }, poison_log: { dtype: 'float32', shape: [1] } },
    buildLoss(g: Graph, t: Record<string, Tensor>, i: Record<string, Tensor>) {
      const base = objective.buildLoss(g, t, i);
      const k = (n: string) => g.cast(g.reduceSum(i[n] as Tensor, undefined, false), base.loss.dtype);
      return { ...base, loss: g.add(g.mul(base.loss, k('poison_mul')), g.log(k('poison_log'))) };
    },
  };
}
const poison = (b: Record<string, HostTensor>, mul: number, log: number): Record<string, HostTensor> => ({
  ...b,
  poison_mul: { dtype: 'float32', dims: [1], data: Float32Array.of(mul) },
  poison_log: { dtype: 'float32', dims: [1], data: Float32Array.of(log) },
});

interface Run {
  inPlace: boolean;
  reason: string;
  log: Array<[number, number, boolean]>;
  before: TrainerState;
  after: TrainerState;
}

/** `steps` steps of `gradAccum` copies of `batch` (tinyBatch by default) with the given state mode. */
async function run(
  opts: Omit<TrainerOptions, 'schedule' | 'device' | 'totalSteps' | 'optimizer'> & { optimizer?: TrainerOptions['optimizer'] },
  init: Init,
  steps: number,
  inPlaceState: boolean,
  batch: Record<string, HostTensor> = tinyBatch(Bt, Tt),
): Promise<Run> {
  const t = await Trainer.create(
    { optimizer: { kind: 'adamw', lr: 3e-3 }, schedule: { kind: 'constant' }, totalSteps: steps, device: cpu, inPlaceState, ...opts },
    init,
  );
  try {
    const before = await t.state();
    const log: Run['log'] = [];
    for (let s = 0; s < steps; s++) {
      const r = await t.step(Array.from({ length: opts.gradAccum ?? 1 }, () => batch));
      log.push([r.loss, r.gradNorm, r.skipped]);
    }
    return { inPlace: t.stateMode.inPlace, reason: t.stateMode.reason, log, before, after: await t.state() };
  } finally {
    await t.release();
  }
}

/** In place and double buffered agree bit for bit (and the steps did train). */
function expectSame(a: Run, b: Run): void {
  expect([a.inPlace, b.inPlace]).toEqual([true, false]);
  expect(a.log).toEqual(b.log);
  expect(stateBits(a.after)).toEqual(stateBits(b.after));
  expect(a.after.optimizerStep).toBe(b.after.optimizerStep);
  expect(stateBits(a.after)).not.toEqual(stateBits(a.before));
}

describe('Trainer: in-place state is bit for bit double buffering (CPU, small Llama, fused AdamW)', () => {
  const full = tinyObjective(Bt, Tt, 'float32');
  const half = tinyObjective(Bt, Tt, 'float16');
  const cases: Array<[string, Partial<TrainerOptions>, { objective: Objective; init: Init }]> = [
    ['float32, clip 1', { clipNorm: 1, precision: { compute: 'float32' } }, { objective: full.objective, init: { trainable: full.init, frozen: {} } }],
    [
      'float16, dynamic loss scale, clip 1',
      { clipNorm: 1, precision: { compute: 'float16' } },
      { objective: half.objective, init: { trainable: half.init, frozen: {} } },
    ],
    [
      'float16, loss scale 512, weight copies',
      { precision: { compute: 'float16', lossScale: 512 }, fusedKernels: { optimizer: true, softmax: true, weightCopies: true } },
      { objective: half.objective, init: { trainable: half.init, frozen: {} } },
    ],
    [
      'float32, clip 1, gradient accumulation 2 (grad + update graphs)',
      { clipNorm: 1, gradAccum: 2 },
      { objective: full.objective, init: { trainable: full.init, frozen: {} } },
    ],
    ['LoRA, float32, clip 1', { clipNorm: 1 }, tinyLoraObjective(Bt, Tt, 'float32')],
    ['LoRA, float16, dynamic loss scale, clip 1', { clipNorm: 1, precision: { compute: 'float16' } }, tinyLoraObjective(Bt, Tt, 'float16')],
  ];
  for (const [name, opts, { objective, init }] of cases) {
    it(`${name}: losses, grad norms, weights and moments after 3 steps`, async () => {
      const o = { ...opts, objective };
      expectSame(await run(o, init, 3, true), await run(o, init, 3, false));
    });
  }
});

describe('Trainer: skipped and refused steps leave in-place state untouched (CPU)', () => {
  for (const [weightCopies, gradAccum] of [
    [false, 1],
    [true, 1],
    [false, 2],
  ] as const) {
    it(`fp16 overflow${weightCopies ? ', weight copies' : ''}${gradAccum > 1 ? ', gradient accumulation 2' : ''}: the skipped steps change no bit of the state, then training matches double buffering`, async () => {
      const { objective, init } = tinyObjective(Bt, Tt, 'float16');
      const opts = {
        objective,
        precision: { compute: 'float16' as const },
        dynamicLossScale: { initScale: 2 ** 24 }, // overflows the fp16 backward until the scale is 2^17 (7 skips)
        fusedKernels: { optimizer: true, softmax: true, weightCopies },
        gradAccum,
      };
      const [a, b] = [await run(opts, { trainable: init, frozen: {} }, 10, true), await run(opts, { trainable: init, frozen: {} }, 10, false)];
      const skipped = a.log.filter((r) => r[2]).length;
      expect(skipped).toBeGreaterThan(0);
      expect(skipped).toBeLessThan(9);
      expectSame(a, b);
      // The first `skipped` steps were skipped: a trainer that ran only them holds the initial state.
      const only = await run(opts, { trainable: init, frozen: {} }, skipped, true);
      expect(only.log.every((r) => r[2] && !Number.isFinite(r[1]))).toBe(true);
      expect([only.inPlace, only.after.optimizerStep]).toEqual([true, 0]);
      expect(stateBits(only.after)).toEqual(stateBits(only.before));
    });
  }

  // poison (mul, log): NaN, 1 → NaN loss and NaN grads; 1, 0 → loss −inf with finite grads (the loss is
  // then refused like a NaN one: NonFiniteError, and the fused AdamW skips because the loss joins its guard).
  for (const [what, mul, log] of [
    ['NaN loss and grads', Number.NaN, 1],
    ['a −inf loss with finite grads', 1, 0],
  ] as const) {
    for (const [mode, opts] of [
      ['float32, fused graph', { clipNorm: 1 }],
      [
        'float16 with weight copies and dynamic loss scale',
        { precision: { compute: 'float16' as const }, fusedKernels: { optimizer: true, softmax: true, weightCopies: true } },
      ],
      ['float32, gradient accumulation 2', { gradAccum: 2 }],
    ] as const) {
      it(`${what} (${mode}): NonFiniteError, and the state is bit for bit the last good one`, async () => {
        const { objective, init } = tinyObjective(Bt, Tt, 'precision' in opts ? 'float16' : 'float32');
        const t = await Trainer.create(
          {
            objective: poisonable(objective),
            optimizer: { kind: 'adamw', lr: 3e-3 },
            schedule: { kind: 'constant' },
            totalSteps: 4,
            device: cpu,
            inPlaceState: true,
            ...opts,
          },
          { trainable: init, frozen: {} },
        );
        try {
          const good = poison(tinyBatch(Bt, Tt), 1, 1);
          const k = 'gradAccum' in opts ? 2 : 1;
          const r1 = await t.step(Array.from({ length: k }, () => good));
          expect([r1.skipped, Number.isFinite(r1.loss)]).toEqual([false, true]);
          const s1 = await t.state();
          const err = await t.step(Array.from({ length: k }, () => poison(tinyBatch(Bt, Tt), mul, log))).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(NonFiniteError);
          expect((err as Error).message).toMatch(/^non-finite loss (NaN|-Infinity) at step 2/);
          const s2 = await t.state();
          expect(stateBits(s2)).toEqual(stateBits(s1));
          expect(s2.optimizerStep).toBe(1);
        } finally {
          await t.release();
        }
      });
    }
  }
});

describe('Trainer.stateMode and the memory it saves', () => {
  const mlp = { objective: mlpObjective(8), schedule: { kind: 'constant' as const }, totalSteps: 2, device: cpu };

  it('auto: in place with the fused AdamW; double buffered with SGD or the standard-op AdamW, each with its reason', async () => {
    const mode = async (o: Partial<TrainerOptions>) => {
      const t = await Trainer.create({ ...mlp, optimizer: { kind: 'adamw', lr: 0.01 }, ...o }, { trainable: mlpInit(8), frozen: {} });
      await t.release();
      return t.stateMode;
    };
    expect(await mode({})).toEqual({ inPlace: true, reason: 'inPlaceState auto: fused AdamW, the step graph passes the in-place check' });
    expect(await mode({ inPlaceState: false })).toEqual({ inPlace: false, reason: 'inPlaceState false: double buffered' });
    expect(await mode({ optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 } })).toEqual({
      inPlace: false,
      reason:
        'inPlaceState auto: double buffered, the update is not the fused AdamW (optimizer sgd, fused optimizer on): standard ONNX ops may not write over their inputs',
    });
    expect((await mode({ fusedKernels: false })).reason).toMatch(/optimizer adamw, fused optimizer off/);
    await expect(mode({ fusedKernels: false, inPlaceState: true })).rejects.toThrow(
      /^field 'inPlaceState': in-place state impossible: the update is not the fused AdamW \(optimizer adamw, fused optimizer off\)/,
    );
    await expect(mode({ inPlaceState: 'yes' as unknown as boolean })).rejects.toThrow(`field 'inPlaceState': expected true, false or 'auto', got "yes"`);
  });

  it('auto falls back to double buffering when the objective reads a trainable after its update (a metric of the weights)', async () => {
    const objective: Objective = {
      ...mlpObjective(8),
      buildLoss(g, p, i) {
        // The weight norm as a metric: a reader of A that feeds neither the loss nor the update.
        return { ...mlpObjective(8).buildLoss(g, p, i), metrics: { a_norm: g.reduceSumSquare(p['A'] as Tensor, undefined, false) } };
      },
    };
    const t = await Trainer.create({ ...mlp, objective, optimizer: { kind: 'adamw', lr: 0.01 } }, { trainable: mlpInit(8), frozen: {} });
    await t.release();
    expect(t.stateMode.inPlace).toBe(false);
    expect(t.stateMode.reason).toMatch(
      /^inPlaceState auto: double buffered, the step graph fails the in-place check: state A → A\.new: ReduceSumSquare \(.*\) reads A but does not feed AdamW/,
    );
  });

  it('in place allocates one tensor per master, moment and weight copy instead of two', async () => {
    const { objective, init } = tinyObjective(Bt, Tt, 'float16');
    const count = async (inPlaceState: boolean, weightCopies: boolean) => {
      const before = liveTensorCount();
      const t = await Trainer.create(
        {
          objective,
          optimizer: { kind: 'adamw', lr: 1e-3 },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          device: cpu,
          precision: { compute: 'float16' },
          fusedKernels: { optimizer: true, softmax: true, weightCopies },
          inPlaceState,
        },
        { trainable: init, frozen: {} },
      );
      const n = liveTensorCount() - before;
      await t.release();
      expect(liveTensorCount()).toBe(before);
      return n;
    };
    const params = Object.keys(init).length;
    expect((await count(false, false)) - (await count(true, false))).toBe(3 * params); // p, m, v
    expect((await count(false, true)) - (await count(true, true))).toBe(4 * params); // and the copy
  });

  it('load() and state() work in place: a resumed trainer continues bit for bit', async () => {
    const data = mlpData(16);
    const batches = [0, 1, 2, 3].map((s) => mlpBatch(data, [2 * s, 2 * s + 1, 2 * s + 8]));
    const make = () => Trainer.create({ ...mlp, totalSteps: 4, optimizer: { kind: 'adamw', lr: 0.05 }, clipNorm: 0.5 }, { trainable: mlpInit(8), frozen: {} });
    const a = await make();
    const b = await make();
    try {
      expect([a.stateMode.inPlace, b.stateMode.inPlace]).toEqual([true, true]);
      for (const x of batches.slice(0, 2)) await a.step([x]);
      await b.load(await a.state());
      const ra = [];
      const rb = [];
      for (const x of batches.slice(2)) {
        ra.push((await a.step([x])).loss);
        rb.push((await b.step([x])).loss);
      }
      expect(rb).toEqual(ra);
      expect(stateBits(await b.state())).toEqual(stateBits(await a.state()));
    } finally {
      await a.release();
      await b.release();
    }
  });
});

describe('Trainer: in place, a step binds nothing (host time between runs, session 14)', () => {
  for (const [inPlaceState, gradAccum] of [
    [true, 1],
    [false, 1],
    [true, 2],
  ] as const) {
    const what =
      gradAccum > 1
        ? 'in place, gradient accumulation 2: only the accumulators rebound, after each micro-batch'
        : inPlaceState
          ? 'in place: no bindings after the first step'
          : 'double buffered: every state pair rebound after each step';
    it(`${what} (LoRA, float32)`, async () => {
      const { objective, init } = tinyLoraObjective(Bt, Tt, 'float32');
      const t = await Trainer.create(
        { objective, optimizer: { kind: 'adamw', lr: 3e-3 }, schedule: { kind: 'constant' }, totalSteps: 3, device: cpu, inPlaceState, clipNorm: 1, gradAccum },
        init,
      );
      const inputs = vi.spyOn(DeviceBinding.prototype, 'bindInput');
      const outputs = vi.spyOn(DeviceBinding.prototype, 'bindOutput');
      try {
        const batch = tinyBatch(Bt, Tt);
        const batches = Array.from({ length: gradAccum }, () => batch);
        await t.step(batches); // the first step binds the batch tensors
        inputs.mockClear();
        outputs.mockClear();
        const [l2, l3] = [(await t.step(batches)).loss, (await t.step(batches)).loss];
        expect(t.stateMode.inPlace).toBe(inPlaceState);
        expect(l3).not.toBe(l2); // the steps trained
        const st = await t.state();
        const state = st.trainable.length + st.optimizer.length;
        // Double buffered: each step binds each pair's input and output once (trainable + AdamW's two moments).
        // Accumulating: each micro-batch of the 2 steps binds each accumulator (one per trainable) as the grad graph's
        // input and output and as the update graph's input, and nothing else.
        const n = st.trainable.length;
        const expected = gradAccum > 1 ? [2 * gradAccum * 2 * n, 2 * gradAccum * n] : inPlaceState ? [0, 0] : [2 * state, 2 * state];
        expect([inputs.mock.calls.length, outputs.mock.calls.length]).toEqual(expected);
      } finally {
        inputs.mockRestore();
        outputs.mockRestore();
        await t.release();
      }
    });
  }
});
