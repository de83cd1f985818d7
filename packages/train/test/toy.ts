// A toy run for the exact-resume tests: float64 linear regression trained by the reference SGD
// (momentum, clipping, linear warmup/decay) through trainLoop, with every checkpoint carrying the
// parameters and the momentum buffers. The step multiplies the gradient by 1 + 0.01·N(0,1) from the
// step's generator, so the test also covers the per-step randomness.
import { join } from 'node:path';
import { Rng } from '@latent-sft/core';
import { CheckpointManager, type Batch, type CheckpointTensor, type LoadedCheckpoint, type LoopState, type RunRecord } from '../src/index.js';
import { MetricsWriter } from '../src/metrics.js';
import { clipByGlobalNorm } from '../src/grads.js';
import { initLoopState } from '../src/loop-state.js';
import { lrAt } from '../src/schedule.js';
import { optStateFromTensors, optStateToTensors, sgd, type OptState, type Tensors } from '../src/optim.js';
import { trainLoop, type StepResult } from '../src/loop.js';
import { rawCodec } from './raw-codec.js';

export const TOY = { size: 24, dim: 3, batchSize: 5, totalSteps: 20, peakLr: 0.05 } as const;
const schedule = { kind: 'linear', warmupSteps: 2, totalSteps: TOY.totalSteps } as const;
const optimizer = sgd({ lr: TOY.peakLr, momentum: 0.9, weightDecay: 0.01 });

export const toyRecord: RunRecord = {
  app: 'toy-train',
  schemaVersion: 1,
  configHash: 'c'.repeat(64),
  createdAt: '2024-01-01T00:00:00.000Z',
  config: { ...TOY },
};

function dataset(): { x: Float64Array; y: Float64Array } {
  const rng = Rng.fromSeed(1);
  const x = new Float64Array(TOY.size * TOY.dim);
  const y = new Float64Array(TOY.size);
  const wTrue = [1.5, -2, 0.5];
  for (let i = 0; i < TOY.size; i++) {
    let s = 0.3;
    for (let j = 0; j < TOY.dim; j++) {
      const v = rng.normal();
      x[i * TOY.dim + j] = v;
      s += v * (wTrue[j] as number);
    }
    y[i] = s + 0.1 * rng.normal();
  }
  return { x, y };
}

export class Toy {
  private readonly data = dataset();
  constructor(
    public params: Tensors,
    public opt: OptState,
  ) {}

  static init(): Toy {
    const rng = Rng.fromSeed(7);
    const params = { w: Float64Array.from({ length: TOY.dim }, () => 0.1 * rng.normal()), b: new Float64Array(1) };
    return new Toy(params, optimizer.init(params));
  }

  static restore(ck: LoadedCheckpoint): Toy {
    const byName = Object.fromEntries(ck.tensors.map((t) => [t.name, t.data as Float64Array]));
    const params = { w: byName['w'] as Float64Array, b: byName['b'] as Float64Array };
    const step = (byName['optim.step'] as Float64Array)[0] as number;
    return new Toy(params, optStateFromTensors(step, byName, params, ['momentum']));
  }

  /** Mean squared error over the given examples and its gradient. */
  private lossAndGrads(indices: readonly number[]): { loss: number; grads: Record<string, Float64Array> } {
    const w = this.params['w'] as Float64Array;
    const b = (this.params['b'] as Float64Array)[0] as number;
    const gw = new Float64Array(TOY.dim);
    let gb = 0;
    let loss = 0;
    for (const i of indices) {
      let pred = b;
      for (let j = 0; j < TOY.dim; j++) pred += (w[j] as number) * (this.data.x[i * TOY.dim + j] as number);
      const err = pred - (this.data.y[i] as number);
      loss += err * err;
      for (let j = 0; j < TOY.dim; j++) gw[j] = (gw[j] as number) + 2 * err * (this.data.x[i * TOY.dim + j] as number);
      gb += 2 * err;
    }
    const n = indices.length;
    return { loss: loss / n, grads: { w: gw.map((g) => g / n), b: Float64Array.of(gb / n) } };
  }

  step(state: LoopState, batch: Batch): StepResult {
    const lr = lrAt(state.step, schedule, TOY.peakLr);
    const { loss, grads } = this.lossAndGrads(batch.indices);
    const noise = 1 + 0.01 * batch.rng.normal();
    const noisy = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.map((v) => v * noise)]));
    const clipped = clipByGlobalNorm(noisy, 1.0);
    const next = optimizer.update(this.params, clipped.grads, this.opt, lr);
    this.params = next.params;
    this.opt = next.state;
    return { loss, lr, gradNorm: clipped.totalNorm, tokens: batch.indices.length };
  }

  evalLoss(): number {
    return this.lossAndGrads(Array.from({ length: TOY.size }, (_, i) => i)).loss;
  }

  tensors(): CheckpointTensor[] {
    const { step, tensors } = optStateToTensors(this.opt);
    const all: Record<string, Float64Array> = { ...this.params, ...tensors, 'optim.step': Float64Array.of(step) };
    return Object.entries(all).map(([name, data]) => ({ name, dtype: 'float64', shape: [data.length], data }));
  }
}

export class SimulatedCrash extends Error {}

/** Runs (or resumes, if `dir` holds checkpoints) the toy up to `steps` updates. */
export async function runToy(opts: {
  dir: string;
  steps: number;
  checkpointEvery: number;
  crashAtStep?: number;
  sleepMs?: number;
}): Promise<{ state: LoopState; toy: Toy }> {
  const manager = CheckpointManager.open({
    dir: opts.dir,
    keepLast: 3,
    keepBest: true,
    metricMode: 'min',
    codec: rawCodec,
    record: toyRecord,
    resume: true,
  });
  const { checkpoint } = manager.loadLatestValid();
  const toy = checkpoint ? Toy.restore(checkpoint) : Toy.init();
  const initial =
    checkpoint?.loopState ??
    initLoopState(
      42,
      toy
        .tensors()
        .map((t) => t.name)
        .filter((n) => n.startsWith('optim.')),
    );
  const metrics = MetricsWriter.open(join(opts.dir, 'metrics.jsonl'), { resumeStep: initial.step });
  try {
    const state = await trainLoop({
      state: initial,
      steps: opts.steps,
      data: { size: TOY.size, batchSize: TOY.batchSize },
      checkpointEvery: opts.checkpointEvery,
      manager,
      metrics,
      tensors: () => toy.tensors(),
      evaluate: () => toy.evalLoss(),
      now: () => 0,
      stepFn: async (s, batch) => {
        if (opts.crashAtStep !== undefined && s.step + 1 === opts.crashAtStep) throw new SimulatedCrash(`crash at step ${opts.crashAtStep}`);
        if (opts.sleepMs) await new Promise((r) => setTimeout(r, opts.sleepMs));
        return toy.step(s, batch);
      },
    });
    return { state, toy };
  } finally {
    metrics.close();
  }
}
