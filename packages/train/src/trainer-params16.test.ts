// 16-bit parameters (TrainerOptions.precision.params; with bfloat16, PyTorch's bf16 recipe with bfloat16
// moments) on the CPU, in float16 with float32 moments (ORT's CPU provider has no bfloat16 MatMul; the
// bfloat16 AdamW kernel with bfloat16 moments is checked in fused-optim.test.ts): against the float32-master run of the same small Llama, exact where the two
// recipes compute the same thing and within the 16-bit rounding where they do not; gradient accumulation,
// exact resume and the one-line errors.
import { f16BitsToFloat32, float32ToF16Bits } from '@latent-sft/models';
import { describe, expect, it } from 'vitest';
import { tinyBatch, tinyObjective } from '../test/tiny-llama.js';
import { Trainer, type TrainerOptions, type TrainerState } from './index.js';

const cpu = { kind: 'cpu' } as const;
const [Bt, Tt] = [2, 6];
const { objective, init } = tinyObjective(Bt, Tt, 'float16');
const batch = tinyBatch(Bt, Tt);
/** Half a float16 ulp relative (10 fraction bits): the rounding of each stored parameter. */
const F16_ULP = 2 ** -11;

const opts = (o: { params: 'float32' | 'float16'; lossScale?: 'dynamic' | null; gradAccum?: number }): TrainerOptions => ({
  objective,
  optimizer: { kind: 'adamw', lr: 1e-3 },
  schedule: { kind: 'constant' },
  totalSteps: 8,
  clipNorm: 1,
  precision: { compute: 'float16', lossScale: o.lossScale ?? null, params: o.params },
  device: cpu,
  fusedKernels: true,
  ...(o.gradAccum !== undefined ? { gradAccum: o.gradAccum } : {}),
});

async function run(o: TrainerOptions, steps: number, batches = [batch]): Promise<{ losses: number[]; norms: number[]; state: TrainerState }> {
  const t = await Trainer.create(o, { trainable: init, frozen: {} });
  const losses: number[] = [];
  const norms: number[] = [];
  for (let s = 0; s < steps; s++) {
    const r = await t.step(batches);
    losses.push(r.loss);
    norms.push(r.gradNorm);
  }
  const state = await t.state();
  await t.release();
  return { losses, norms, state };
}

/** x rounded to float16 (nearest even), as a number. */
const roundF16 = (x: number): number => f16BitsToFloat32(float32ToF16Bits(x));

describe('Trainer with float16 parameters (float32 moments; CPU, small Llama, fused AdamW)', () => {
  for (const lossScale of [null, 'dynamic'] as const) {
    it(`loss scale ${lossScale}: step-1 loss and grad norm are the float32-master run's; then it follows it and keeps training`, async () => {
      const [a, b] = [await run(opts({ params: 'float16', lossScale }), 4), await run(opts({ params: 'float32', lossScale }), 4)];
      // The forward reads the same float16 weights (the masters' Cast = the rounded init) and the backward the same.
      expect(a.losses[0]).toBe(b.losses[0]);
      expect(a.norms[0]).toBe(b.norms[0]);
      expect(a.losses).toBeAllclose(b.losses, { rtol: 2e-2, atol: 0 });
      expect(a.losses[3]!).toBeLessThan(a.losses[0]!);
      // Every stored parameter is a float16 (state() widens exactly).
      for (const t of a.state.trainable)
        expect(
          Array.from(t.data).every((x) => roundF16(x) === x),
          t.name,
        ).toBe(true);
    });
  }

  it('after one step: m and v (float32 with float16 parameters) are the float32-master run’s exactly, p within about one float16 ulp of its', async () => {
    const [a, b] = [await run(opts({ params: 'float16' }), 1), await run(opts({ params: 'float32' }), 1)];
    // From zero moments m' = (1−β1)·g·coef and v' = ((1−β2)·g·coef)·g·coef: the same gradients, the same float32 values.
    a.state.optimizer.forEach((t, i) => expect(t.data, t.name).toEqual(b.state.optimizer[i]!.data));
    const pb = new Map(b.state.trainable.map((t) => [t.name, t.data]));
    for (const t of a.state.trainable) {
      const ref = pb.get(t.name) as Float32Array;
      const p0 = init[t.name]!.data as Float32Array;
      // p' = round(round(p0)·decay − step·m'/den) against p0·decay − step·m'/den: half an ulp of p0 (its rounding
      // at init) plus half an ulp of p' (the result's), in float16 units; 2⁻²⁴ is float16's smallest step.
      const excess = Math.max(
        ...Array.from(t.data, (x, i) => Math.abs(x - (ref[i] as number)) - F16_ULP * (Math.abs(p0[i] as number) + Math.abs(ref[i] as number)) - 2 ** -24),
      );
      expect(excess, t.name).toBeLessThanOrEqual(0);
    }
  });

  it('gradient accumulation (float32 sums of the float16 gradients): step 1 is the float32-master run’s, then it follows it', async () => {
    const [a, b] = [
      await run(opts({ params: 'float16', gradAccum: 2 }), 3, [batch, batch]),
      await run(opts({ params: 'float32', gradAccum: 2 }), 3, [batch, batch]),
    ];
    expect(a.losses[0]).toBe(b.losses[0]);
    expect(a.norms[0]).toBe(b.norms[0]);
    expect(a.losses).toBeAllclose(b.losses, { rtol: 2e-2, atol: 0 });
  });

  it('resumes exactly: state() after 2 steps, load() into a new trainer, step 3 as the uninterrupted run', async () => {
    const whole = await run(opts({ params: 'float16' }), 3);
    const first = await run(opts({ params: 'float16' }), 2);
    const t = await Trainer.create(opts({ params: 'float16' }), { trainable: init, frozen: {} });
    await t.load(first.state);
    const r = await t.step([batch]);
    const st = await t.state();
    await t.release();
    expect(r.loss).toBe(whole.losses[2]);
    st.trainable.forEach((p, i) => expect(p.data, p.name).toEqual(whole.state.trainable[i]!.data));
    st.optimizer.forEach((p, i) => expect(p.data, p.name).toEqual(whole.state.optimizer[i]!.data));
  });

  it('refuses 16-bit parameters that are not the compute dtype, or without the fused AdamW, in one line', async () => {
    const make = (o: Partial<TrainerOptions>) => Trainer.create({ ...opts({ params: 'float16' }), ...o }, { trainable: init, frozen: {} });
    await expect(make({ precision: { compute: 'float32', params: 'float16' } })).rejects.toThrow(
      /precision\.params.*float32 or the compute dtype float32, got float16/,
    );
    await expect(make({ fusedKernels: false })).rejects.toThrow(/precision\.params.*need the fused AdamW/);
    await expect(make({ optimizer: { kind: 'sgd', lr: 1e-3 } })).rejects.toThrow(/precision\.params.*need the fused AdamW/);
  });
});
