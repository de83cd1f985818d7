// Test helpers: a loss graph of an Objective with its metrics and gradients (the same wiring as
// graph.buildTrainStep, plus metric outputs), run on ORT CPU; the losses of a few float16 AdamW steps
// of an objective on the Trainer.
import { Graph, type Tensor, grad, serialize } from '@latent-sft/graph';
import { type HostTensor, Session, type SessionOptions } from '@latent-sft/runtime';
import { type FusedParts, Trainer } from '@latent-sft/train';
import type { Objective } from '../src/index.js';

/** Session over loss, metrics (`metric.<name>`) and, when asked, `<name>.grad` of every trainable input. */
export async function lossSession(obj: Objective, withGrads: boolean, opts: SessionOptions = {}): Promise<Session> {
  const g = new Graph('objective');
  const tr: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(obj.trainable)) tr[n] = g.input(n, s.dtype, s.shape);
  const inputs: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries({ ...obj.frozen, ...obj.batch })) inputs[n] = g.input(n, s.dtype, s.shape);
  const { loss, metrics } = obj.buildLoss(g, tr, inputs);
  g.output(loss, 'loss');
  for (const [n, t] of Object.entries(metrics ?? {})) g.output(t, `metric.${n}`);
  if (withGrads) {
    const names = Object.keys(tr);
    const gs = grad(
      g,
      loss,
      names.map((n) => tr[n] as Tensor),
    );
    names.forEach((n, i) => g.output(gs[i] as Tensor, `${n}.grad`));
  }
  g.prune();
  return Session.create(serialize(g).model, opts);
}

/** The scalar value of an output. */
export function scalar(out: Record<string, HostTensor>, name: string): number {
  const t = out[name];
  if (t === undefined) throw new Error(`no output ${name}`);
  return Number(t.data[0]);
}

/** A float32 tensor. */
export const f32 = (dims: number[], data: ArrayLike<number>): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(data) });

/** The values of a tensor as numbers. */
export const nums = (t: HostTensor | undefined): number[] => Array.from((t?.data ?? []) as ArrayLike<number | bigint>, Number);

/**
 * The shifted next-token cross-entropy by hand: token mean over every (b, p) whose label at p + 1 is not
 * -100 of −log softmax(logits[b, p])[labels[b, p + 1]]; logits [B, T, V], labels [B, T], row-major.
 */
export function handCrossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, B: number, T: number, V: number): number {
  let sum = 0;
  let n = 0;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p + 1 < T; p++) {
      const y = labels[b * T + p + 1] as number;
      if (y === -100) continue;
      const row = Array.from({ length: V }, (_, v) => logits[(b * T + p) * V + v] as number);
      const mx = Math.max(...row);
      sum += mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0)) - (row[y] as number);
      n += 1;
    }
  }
  return sum / n;
}

/** The losses of `steps` AdamW steps (lr 1e-3, clip 1, float16 compute, no loss scaling) of `objective` on the CPU Trainer. */
export async function float16Losses(
  objective: Objective,
  init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> },
  batch: Record<string, HostTensor>,
  opts: { steps?: number; fusedKernels?: false | FusedParts } = {},
): Promise<number[]> {
  const steps = opts.steps ?? 3;
  const t = await Trainer.create(
    {
      objective,
      optimizer: { kind: 'adamw', lr: 1e-3 },
      schedule: { kind: 'constant' },
      totalSteps: steps,
      clipNorm: 1,
      precision: { compute: 'float16', lossScale: null },
      device: { kind: 'cpu' },
      ...(opts.fusedKernels !== undefined ? { fusedKernels: opts.fusedKernels } : {}),
    },
    init,
  );
  try {
    const out: number[] = [];
    for (let s = 0; s < steps; s++) out.push((await t.step([batch])).loss);
    return out;
  } finally {
    await t.release();
  }
}
