// Training-step graphs: forward loss, backward grads and an optional per-parameter update in one ONNX
// graph, so one session.run is one step. Mixed precision keeps fp32 master weights as inputs, casts
// them to fp16/bf16 for the forward, and (for fp16) scales the loss by a `loss_scale` input, with
// gradients cast back to fp32 by the Cast rule and unscaled in fp32.
import { grad } from './autodiff.js';
import type { DType } from './dtype.js';
import { type Dim, Graph, type Tensor } from './graph.js';

/** Dtype and shape of one graph input. */
export interface ValueSpec {
  dtype: DType;
  shape: readonly Dim[];
}

/** Builds the updated value of one parameter; may add state inputs/outputs to `g`. */
export type UpdateFn = (g: Graph, param: Tensor, grad: Tensor, name: string) => Tensor;

/** Options of `buildTrainStep`. */
export interface TrainStepOptions {
  /** Trainable parameters (fed every step); float32 masters under mixed precision. */
  params: Readonly<Record<string, ValueSpec>>;
  /** Batch inputs. */
  inputs: Readonly<Record<string, ValueSpec>>;
  /** Builds the scalar loss from the params (cast to the compute dtype) and the batch inputs. */
  buildLoss: (g: Graph, params: Record<string, Tensor>, inputs: Record<string, Tensor>) => Tensor;
  /** Appends an update per parameter; its result becomes output `<name>.new`. */
  optimizer?: UpdateFn;
  /** Mixed precision: forward in `compute`; `lossScale` adds a float32 scalar input `loss_scale`. */
  precision?: { compute: 'float16' | 'bfloat16'; lossScale?: boolean };
  name?: string;
}

/** The built graph and the names of its outputs. */
export interface TrainStep {
  graph: Graph;
  /** Output name of the (float32 under mixed precision, unscaled) loss. */
  loss: string;
  /** Output name of each parameter's gradient (`<name>.grad`). */
  grads: Record<string, string>;
  /** Output name of each updated parameter (`<name>.new`), when an optimizer was given. */
  updated: Record<string, string>;
}

/** Plain SGD: p ← p − lr·g. */
export function sgd(lr: number): UpdateFn {
  return (g, p, gr) => g.sub(p, g.mul(gr, g.scalar(lr, p.dtype)));
}

/** Builds forward + backward (+ update) of one training step; outputs loss, grads, updates. */
export function buildTrainStep(opts: TrainStepOptions): TrainStep {
  const g = new Graph(opts.name ?? 'train_step');
  const masters: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.params)) masters[name] = g.input(name, spec.dtype, spec.shape);
  const inputs: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.inputs)) inputs[name] = g.input(name, spec.dtype, spec.shape);
  const compute = opts.precision?.compute;
  const scale = opts.precision?.lossScale === true ? g.input('loss_scale', 'float32', []) : undefined;
  const view: Record<string, Tensor> = {};
  for (const [name, p] of Object.entries(masters)) view[name] = compute !== undefined ? g.cast(p, compute) : p;
  let loss = opts.buildLoss(g, view, inputs);
  if (loss.rank !== 0) throw new Error(`buildTrainStep: loss must be a scalar, got ${loss.shapeText}`);
  if (compute !== undefined) loss = g.cast(loss, 'float32');
  const seed = scale !== undefined ? g.cast(scale, loss.dtype) : undefined;
  const names = Object.keys(masters);
  const grads = grad(
    g,
    loss,
    names.map((n) => masters[n] as Tensor),
    seed,
  );
  const step: TrainStep = { graph: g, loss: 'loss', grads: {}, updated: {} };
  g.output(loss, 'loss');
  names.forEach((name, i) => {
    let gr = grads[i] as Tensor;
    if (scale !== undefined) gr = g.div(gr, g.cast(scale, gr.dtype));
    step.grads[name] = g.output(gr, `${name}.grad`).name;
    if (opts.optimizer !== undefined) {
      step.updated[name] = g.output(opts.optimizer(g, masters[name] as Tensor, gr, name), `${name}.new`).name;
    }
  });
  g.prune();
  return step;
}
