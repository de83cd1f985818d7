// The Trainer on ORT CPU: trajectories against the float64 reference optimizers (with clipping and
// gradient accumulation), per-step host<->device traffic, fp16 loss scaling with a real overflow,
// and the non-finite guard.
import { type HostTensor, resetTransferStats, transferStats } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { f32, linearGrads, linearObjective, mlpBatch, mlpData, mlpInit, mlpObjective, normals } from '../test/objectives.js';
import { type LrSchedule, type Objective, type OptimizerConfig, Trainer } from './index.js';
import { NonFiniteError } from './metrics.js';
import { accumulateGrads, clipByGlobalNorm } from './grads.js';
import { adamw, sgd } from './optim.js';
import { lrAt } from './schedule.js';
import { stepSessionOptions } from './trainer.js';

/**
 * float32 trainer vs a float64 reference trajectory (closed-form grads of the same f32 data):
 * gradients differ by f32 rounding (~1e-7 relative), so 6 updates stay within rtol 1e-6 of the params
 * at these magnitudes (~0.1..1); the floor covers entries near 0.
 */
const TRAJ = { rtol: 1e-6, atol: 1e-7 };
/** Loss and grad norm: one float32 forward/backward vs float64. */
const SCALAR = { rtol: 1e-5, atol: 0 };

const D = 5;
const O = 3;
const cpu = { kind: 'cpu' } as const;

function linearBatch(seed: number, B = 4): Record<string, HostTensor> {
  const wTrue = normals(99, D * O);
  const x = Float32Array.from(normals(seed, B * D));
  const y = new Float32Array(B * O);
  for (let r = 0; r < B; r++)
    for (let o = 0; o < O; o++) {
      let s = 0.2 * o;
      for (let d = 0; d < D; d++) s += (x[r * D + d] as number) * (wTrue[d * O + o] as number);
      y[r * O + o] = s;
    }
  return { x: f32([B, D], x), y: f32([B, O], y) };
}

async function checkAgainstReference(optimizer: OptimizerConfig, gradAccum: number, clipNorm: number | null): Promise<void> {
  const schedule: LrSchedule = { kind: 'linear', warmupSteps: 2, totalSteps: 8 };
  const W0 = Float32Array.from(normals(1, D * O, 0.3));
  const b0 = Float32Array.from(normals(2, O, 0.3));
  const trainer = await Trainer.create(
    { objective: linearObjective(D, O), optimizer, schedule, totalSteps: 8, clipNorm, gradAccum, device: cpu },
    { trainable: { W: f32([D, O], W0), b: f32([O], b0) }, frozen: {} },
  );
  const ref = optimizer.kind === 'adamw' ? adamw(optimizer) : sgd({ ...optimizer, weightDecay: optimizer.weightDecay ?? 0 });
  let params: Record<string, Float64Array> = { W: Float64Array.from(W0), b: Float64Array.from(b0) };
  let st = ref.init(params);
  try {
    for (let step = 0; step < 6; step++) {
      const micro = Array.from({ length: gradAccum }, (_, k) => linearBatch(1000 + 10 * step + k));
      const r = await trainer.step(micro);
      const gs = micro.map((b) => linearGrads(D, O, params['W']!, params['b']!, b['x']!.data as Float32Array, b['y']!.data as Float32Array));
      const mean = accumulateGrads(gs.map((x) => ({ W: x.W, b: x.b })));
      const clipped = clipByGlobalNorm(mean, clipNorm ?? Number.MAX_VALUE);
      const lr = lrAt(step, schedule, optimizer.lr);
      const next = ref.update(params, clipped.grads, st, lr);
      params = next.params;
      st = next.state;
      expect(r).toMatchObject({ step: step + 1, lr, skipped: false, lossScale: 1, tokens: 4 * gradAccum });
      expect([r.loss]).toBeAllclose([gs.reduce((a, x) => a + x.loss, 0) / gradAccum], SCALAR);
      expect([r.gradNorm]).toBeAllclose([clipped.totalNorm], SCALAR);
      if (clipNorm !== null && step === 2) expect(clipped.coef).toBeLessThan(1); // clipping is active
      const s = await trainer.state();
      expect(s.trainable.find((t) => t.name === 'W')!.data).toBeAllclose(params['W']!, TRAJ);
      expect(s.trainable.find((t) => t.name === 'b')!.data).toBeAllclose(params['b']!, TRAJ);
      for (const t of s.optimizer) {
        const [slot, name] = t.name.split('.') as [string, string];
        expect(t.data).toBeAllclose(st.slots[slot]![name]!, TRAJ);
      }
      expect(s.step).toBe(step + 1);
    }
  } finally {
    await trainer.release();
  }
}

describe('Trainer vs the float64 reference optimizers (linear regression, float32 masters)', () => {
  it('AdamW, clip 1.0 (active), fused graph', () => checkAgainstReference({ kind: 'adamw', lr: 0.05 }, 1, 1.0));
  it('AdamW, clip 1.0, gradient accumulation over 3 micro-batches (grad + update graphs)', () => checkAgainstReference({ kind: 'adamw', lr: 0.05 }, 3, 1.0));
  it('SGD nesterov + weight decay, no clipping, accumulation over 2', () =>
    checkAgainstReference({ kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }, 2, null));
});

describe('Trainer device residency', () => {
  it('per-step host<->device traffic = batch + scalars, independent of the parameter count', async () => {
    const data = mlpData(16);
    const batch = mlpBatch(data, [0, 1, 2, 3, 4, 5, 6, 7]);
    const batchBytes = batch['x']!.data.byteLength + batch['y']!.data.byteLength; // 8·4·4 + 8·4 = 160
    const perStep: Array<{ h2d: number; d2h: number; own: { hostToDevice: number; deviceToHost: number } }> = [];
    const paramCounts: number[] = [];
    for (const H of [8, 2048]) {
      const t = await Trainer.create(
        { objective: mlpObjective(H), optimizer: { kind: 'adamw', lr: 1e-2 }, schedule: { kind: 'constant' }, totalSteps: 10, clipNorm: 1, device: cpu },
        { trainable: mlpInit(H), frozen: {} },
      );
      paramCounts.push(4 * H + H + H);
      try {
        await t.step([batch]); // warm-up (allocates the batch tensors)
        const own0 = t.transferStats();
        resetTransferStats();
        for (let i = 0; i < 3; i++) await t.step([batch]);
        const g = transferStats();
        const own1 = t.transferStats();
        perStep.push({
          h2d: g.hostToDeviceBytes / 3,
          d2h: g.deviceToHostBytes / 3,
          own: { hostToDevice: (own1.hostToDevice - own0.hostToDevice) / 3, deviceToHost: (own1.deviceToHost - own0.deviceToHost) / 3 },
        });
      } finally {
        await t.release();
      }
    }
    // Up: batch + opt.decay/step_size/bc2_sqrt (3 × 4 B); down: loss + grad_norm (2 × 4 B).
    const want = { h2d: batchBytes + 12, d2h: 8, own: { hostToDevice: batchBytes + 12, deviceToHost: 8 } };
    expect(paramCounts[1]! / paramCounts[0]!).toBe(256);
    expect(perStep).toEqual([want, want]);
  });

  it('state() downloads and load() restores exactly; loaded trainers continue identically', async () => {
    const mk = () =>
      Trainer.create(
        {
          objective: mlpObjective(6),
          optimizer: { kind: 'adamw', lr: 1e-2 },
          schedule: { kind: 'linear', warmupSteps: 1, totalSteps: 6 },
          totalSteps: 6,
          device: cpu,
        },
        { trainable: mlpInit(6), frozen: {} },
      );
    const data = mlpData(16);
    const batches = [0, 1, 2, 3, 4].map((k) => [mlpBatch(data, [k, k + 5, k + 10])]);
    const a = await mk();
    const b = await mk();
    try {
      for (const x of batches.slice(0, 2)) await a.step(x);
      await b.load(await a.state());
      const la: number[] = [];
      const lb: number[] = [];
      for (const x of batches.slice(2)) {
        la.push((await a.step(x)).loss);
        lb.push((await b.step(x)).loss);
      }
      expect(lb).toEqual(la); // bit for bit
      expect((await b.state()).trainable).toEqual((await a.state()).trainable);
      await expect(b.load({ ...(await a.state()), optimizer: [] })).rejects.toThrow(/state\.optimizer\.m\.A.*missing/);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('rejects bad input with one-line errors', async () => {
    const opts = {
      objective: mlpObjective(4),
      optimizer: { kind: 'adamw', lr: 1e-2 } as const,
      schedule: { kind: 'constant' } as const,
      totalSteps: 1,
      device: cpu,
    };
    await expect(Trainer.create(opts, { trainable: { A: f32([4, 4], new Float32Array(16)) }, frozen: {} })).rejects.toThrow(/init\.trainable\.c.*missing/);
    await expect(Trainer.create(opts, { trainable: { ...mlpInit(4), A: f32([3, 4], new Float32Array(12)) }, frozen: {} })).rejects.toThrow(
      /init\.trainable\.A.*dims \[3, 4\] do not fit \[4, 4\]/,
    );
    await expect(Trainer.create({ ...opts, gradAccum: 0 }, { trainable: mlpInit(4), frozen: {} })).rejects.toThrow(/gradAccum.*integer >= 1/);
    const t = await Trainer.create(opts, { trainable: mlpInit(4), frozen: {} });
    try {
      const b = mlpBatch(mlpData(4), [0, 1]);
      await expect(t.step([b, b])).rejects.toThrow(/expected 1 micro-batch, got 2/);
      await expect(t.step([{ x: b['x']! }])).rejects.toThrow(/batches\[0\]\.y.*missing/);
      await expect(t.step([mlpBatch(mlpData(4), [])])).rejects.toThrow(/batches\[0\]\.x.*empty tensor \(dims \[0, 4\]\)/);
      await t.step([b]);
      await expect(t.step([b])).rejects.toThrow(/all 1 steps are done/);
    } finally {
      await t.release();
    }
  });
});

describe('Trainer precision and the non-finite guard', () => {
  it('fp16 compute, dynamic loss scale: overflowing steps are skipped and halve the scale, then it trains', async () => {
    const batch = linearBatch(5);
    (batch['y']!.data as Float32Array).forEach((v, i, a) => {
      a[i] = v + 40;
    }); // residuals ~40: scaled grads overflow fp16 at 2^16
    const t = await Trainer.create(
      {
        objective: linearObjective(D, O, 'float16'),
        optimizer: { kind: 'adamw', lr: 0.2, weightDecay: 0 },
        schedule: { kind: 'constant' },
        totalSteps: 40,
        precision: { compute: 'float16' },
        device: cpu,
      },
      { trainable: { W: f32([D, O], normals(1, D * O, 0.3)), b: f32([O], new Float32Array(O)) }, frozen: {} },
    );
    try {
      const before = await t.state();
      const rs = [];
      for (let i = 0; i < 40; i++) rs.push(await t.step([batch]));
      const skipped = rs.filter((r) => r.skipped).length;
      expect(skipped).toBeGreaterThan(0);
      // Skipped steps come first (the scale only falls), each halving the scale from 2^16.
      expect(rs.slice(0, skipped).every((r) => r.skipped && !Number.isFinite(r.gradNorm))).toBe(true);
      expect(rs.slice(skipped).every((r) => !r.skipped && Number.isFinite(r.gradNorm))).toBe(true);
      expect(rs.map((r) => r.lossScale).slice(0, skipped + 1)).toEqual(Array.from({ length: skipped + 1 }, (_, i) => 2 ** (16 - i)));
      const after = await t.state();
      expect(after).toMatchObject({ step: 40, optimizerStep: 40 - skipped, lossScale: 2 ** (16 - skipped) });
      expect(after.trainable[0]!.data).not.toEqual(before.trainable[0]!.data);
      expect(rs[39]!.loss).toBeLessThan(rs[0]!.loss / 3); // measured 1699 -> 361
    } finally {
      await t.release();
    }
  });

  it('a non-finite loss throws NonFiniteError naming the step and the last good checkpoint; the state stays', async () => {
    const objective: Objective = {
      ...mlpObjective(4),
      buildLoss(g, p, i) {
        const base = mlpObjective(4).buildLoss(g, p, i).loss;
        return { loss: g.mul(base, g.log(g.reduceSum(i['y']!, undefined, false))) }; // log of a negative sum: NaN
      },
    };
    const t = await Trainer.create(
      { objective, optimizer: { kind: 'sgd', lr: 0.1 }, schedule: { kind: 'constant' }, totalSteps: 5, device: cpu },
      { trainable: mlpInit(4), frozen: {} },
    );
    try {
      const good = mlpBatch(mlpData(8), [0, 1]);
      (good['y']!.data as Float32Array).set([1, 2]);
      const bad = mlpBatch(mlpData(8), [0, 1]);
      (bad['y']!.data as Float32Array).set([-1, -2]);
      await t.step([good]);
      t.lastGoodCheckpoint = '/runs/x/step-000001';
      const s1 = await t.state();
      const err = await t.step([bad]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NonFiniteError);
      expect((err as NonFiniteError).message).toBe('non-finite loss NaN at step 2; last good checkpoint: /runs/x/step-000001');
      expect((await t.state()).trainable).toEqual(s1.trainable);
    } finally {
      await t.release();
    }
  });
});

describe("stepSessionOptions: the step sessions' ORT options", () => {
  it('CUDA: no memory pattern and kSameAsRequested arena growth unless given; CPU: ORT defaults', () => {
    const cuda = { kind: 'cuda', deviceId: 1 } as const;
    expect(stepSessionOptions(cuda)).toEqual({
      deterministic: true,
      enableMemPattern: false,
      cudaOptions: { arena_extend_strategy: 'kSameAsRequested' },
      device: cuda,
    });
    // Given keys win; cudaOptions merge key by key.
    expect(stepSessionOptions(cuda, { enableMemPattern: true, deterministic: false, cudaOptions: { gpu_mem_limit: '1024' } })).toEqual({
      deterministic: false,
      enableMemPattern: true,
      cudaOptions: { arena_extend_strategy: 'kSameAsRequested', gpu_mem_limit: '1024' },
      device: cuda,
    });
    expect(stepSessionOptions(cuda, { cudaOptions: { arena_extend_strategy: 'kNextPowerOfTwo' } }).cudaOptions).toEqual({
      arena_extend_strategy: 'kNextPowerOfTwo',
    });
    expect(stepSessionOptions({ kind: 'cpu' }, { intraOpThreads: 2 })).toEqual({ deterministic: true, intraOpThreads: 2, device: { kind: 'cpu' } });
  });
});
