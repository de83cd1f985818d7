// The two tiny models of the training tests (and of graph_goldens.py): a 2-layer tanh MLP with
// cross-entropy (one ignored label) and a 1-layer single-head causal attention block with MSE loss.
import type { HostTensor } from '@latent-sft/runtime';
import { type Graph, type Tensor, type TrainStep, buildTrainStep, crossEntropy, sgd, typedFrom } from '../src/index.js';
import { type ModelConfigs, TestRng, sessionOf } from './harness.js';

export interface ModelData {
  params: Record<string, HostTensor>;
  batch: Record<string, HostTensor>;
}

const f32 = (dims: number[], v: number[]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(v) });
function randn(rng: TestRng, dims: number[], scale: number): HostTensor {
  return f32(
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale),
  );
}

export function mlpStep(c: ModelConfigs['mlp']): TrainStep {
  return buildTrainStep({
    name: 'mlp',
    params: {
      w1: { dtype: 'float32', shape: [c.din, c.hidden] },
      b1: { dtype: 'float32', shape: [c.hidden] },
      w2: { dtype: 'float32', shape: [c.hidden, c.classes] },
      b2: { dtype: 'float32', shape: [c.classes] },
    },
    inputs: { x: { dtype: 'float32', shape: [c.batch, c.din] }, labels: { dtype: 'int64', shape: [c.batch] } },
    buildLoss: (g, p, i) => {
      const h = g.tanh(g.add(g.matmul(i.x as Tensor, p.w1 as Tensor), p.b1 as Tensor));
      const logits = g.add(g.matmul(h, p.w2 as Tensor), p.b2 as Tensor);
      return crossEntropy(g, logits, i.labels as Tensor, -100);
    },
    optimizer: sgd(c.lr),
  });
}

export function mlpData(c: ModelConfigs['mlp']): ModelData {
  const rng = new TestRng(c.seed);
  const labels = Array.from({ length: c.batch }, (_, i) => (c.ignore.includes(i) ? -100 : Math.floor(rng.uniform() * c.classes)));
  return {
    params: {
      w1: randn(rng, [c.din, c.hidden], 1 / Math.sqrt(c.din)),
      b1: f32([c.hidden], new Array(c.hidden).fill(0)),
      w2: randn(rng, [c.hidden, c.classes], 1 / Math.sqrt(c.hidden)),
      b2: f32([c.classes], new Array(c.classes).fill(0)),
    },
    batch: { x: randn(rng, [c.batch, c.din], 1), labels: { dtype: 'int64', dims: [c.batch], data: typedFrom('int64', labels) } as HostTensor },
  };
}

/** q, k, v, o projections; softmax(q kᵀ/√D + causal mask) v; loss = mean((out − target)²). */
export function attentionLoss(g: Graph, p: Record<string, Tensor>, x: Tensor, target: Tensor, T: number, D: number): Tensor {
  const dt = x.dtype;
  const q = g.matmul(x, p.wq as Tensor);
  const k = g.matmul(x, p.wk as Tensor);
  const v = g.matmul(x, p.wv as Tensor);
  const mask: number[] = [];
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) mask.push(j > i ? -1e9 : 0);
  const scores = g.add(g.mul(g.matmul(q, g.transpose(k, [0, 2, 1])), g.scalar(1 / Math.sqrt(D), dt)), g.constant(mask, dt, [T, T]));
  const out = g.matmul(g.matmul(g.softmax(scores, -1), v), p.wo as Tensor);
  const diff = g.sub(out, target);
  return g.reduceMean(g.mul(diff, diff), undefined, false);
}

export function attentionStep(c: ModelConfigs['attention']): TrainStep {
  const W = { dtype: 'float32' as const, shape: [c.dim, c.dim] };
  return buildTrainStep({
    name: 'attention',
    params: { wq: W, wk: W, wv: W, wo: W },
    inputs: { x: { dtype: 'float32', shape: [c.batch, c.time, c.dim] }, target: { dtype: 'float32', shape: [c.batch, c.time, c.dim] } },
    buildLoss: (g, p, i) => attentionLoss(g, p, i.x as Tensor, i.target as Tensor, c.time, c.dim),
    optimizer: sgd(c.lr),
  });
}

export function attentionData(c: ModelConfigs['attention']): ModelData {
  const rng = new TestRng(c.seed);
  const s = 1 / Math.sqrt(c.dim);
  const params: Record<string, HostTensor> = {};
  for (const n of ['wq', 'wk', 'wv', 'wo']) params[n] = randn(rng, [c.dim, c.dim], s);
  return { params, batch: { x: randn(rng, [c.batch, c.time, c.dim], 1), target: randn(rng, [c.batch, c.time, c.dim], 1) } };
}

/** Runs `steps` SGD steps feeding `<name>.new` back; returns the loss before each update. */
export async function train(step: TrainStep, data: ModelData, steps: number): Promise<number[]> {
  await using s = await sessionOf(step.graph);
  let params = { ...data.params };
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    const out = await s.run({ ...params, ...data.batch });
    losses.push((out.loss as HostTensor).data[0] as number);
    const next: Record<string, HostTensor> = {};
    for (const [name, outName] of Object.entries(step.updated)) next[name] = out[outName] as HostTensor;
    params = next;
  }
  return losses;
}
