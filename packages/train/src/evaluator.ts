// Forward-only evaluation of an Objective on a device: the objective's loss and metrics, no gradients,
// no optimizer. Graph inputs: the trainable masters (float32, cast to the compute dtype as in the step
// graphs), the frozen inputs (uploaded once) and the batch inputs; outputs `loss` and `metric.<k>`
// (float32 scalars). `evaluate` uploads the given trainables (e.g. a Trainer's current state) and runs
// every batch; each batch's values are weighted by its example count, so the result is the mean over
// examples of per-batch means (exact for per-example metrics; for token means, batches of equal size).
import { inputError } from '@latent-sft/core';
import { Graph, type Tensor, serialize } from '@latent-sft/graph';
import type { NamedTensor } from '@latent-sft/models';
import { type Device, DeviceSession, type DeviceTensor, type HostTensor } from '@latent-sft/runtime';
import type { Objective } from './objective.js';
import type { ComputeDtype } from './step-graphs.js';
import { stepSessionOptions } from './trainer.js';

/** One evaluation batch: the objective's batch feeds and how many examples they hold. */
export interface EvalBatch {
  feeds: Record<string, HostTensor>;
  examples: number;
}

/** Example-weighted means over the batches. */
export interface EvalResult {
  loss: number;
  metrics: Record<string, number>;
  examples: number;
}

/** The forward-only graph of an objective (see the file header) and its metric names. */
export function buildEvalGraph(objective: Objective, compute: ComputeDtype): { graph: Graph; metrics: string[] } {
  const g = new Graph('eval_step');
  const view: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(objective.trainable)) view[n] = g.cast(g.input(n, s.dtype, s.shape), compute);
  const inputs: Record<string, Tensor> = {};
  for (const part of [objective.frozen, objective.batch]) for (const [n, s] of Object.entries(part)) inputs[n] = g.input(n, s.dtype, s.shape);
  const built = objective.buildLoss(g, view, inputs);
  if (built.loss.rank !== 0) throw new Error(`objective loss must be a scalar, got ${built.loss.shapeText}`);
  g.output(g.cast(built.loss, 'float32'), 'loss');
  const metrics: string[] = [];
  for (const [k, t] of Object.entries(built.metrics ?? {})) {
    if (t.rank !== 0) throw new Error(`objective metric '${k}' must be a scalar, got ${t.shapeText}`);
    g.output(g.cast(t, 'float32'), `metric.${k}`);
    metrics.push(k);
  }
  g.prune();
  return { graph: g, metrics };
}

/** Runs an objective forward on a device (see the file header). */
export class Evaluator {
  readonly metricNames: readonly string[];
  private readonly frozen = new Map<string, DeviceTensor>();
  private released = false;

  private constructor(
    private readonly objective: Objective,
    private readonly session: DeviceSession,
    metricNames: string[],
  ) {
    this.metricNames = metricNames;
  }

  /** Builds the graph, creates the session and uploads the frozen inputs (every objective.frozen name). */
  static create(o: { objective: Objective; compute: ComputeDtype; device: Device; frozen: Record<string, HostTensor> }): Evaluator {
    const { graph, metrics } = buildEvalGraph(o.objective, o.compute);
    const session = DeviceSession.create(serialize(graph).model, stepSessionOptions(o.device));
    const e = new Evaluator(o.objective, session, metrics);
    try {
      for (const n of Object.keys(o.objective.frozen)) {
        if (!session.inputs.some((i) => i.name === n)) continue; // pruned: the loss does not read it
        const t = o.frozen[n];
        if (t === undefined) throw inputError({ field: `frozen.${n}` }, 'missing');
        e.frozen.set(n, session.upload(t));
      }
    } catch (err) {
      e.release();
      throw err;
    }
    return e;
  }

  /** The example-weighted mean loss and metrics of `batches` under the trainable tensors `trainable`. */
  async evaluate(trainable: readonly NamedTensor[], batches: readonly EvalBatch[]): Promise<EvalResult> {
    if (this.released) throw inputError({ field: 'evaluator' }, 'released');
    if (batches.length === 0) throw inputError({ field: 'batches' }, 'need at least one batch');
    const byName = new Map(trainable.map((t) => [t.name, t]));
    const owned: DeviceTensor[] = [];
    const binding = this.session.createBinding();
    try {
      const inputNames = new Set(this.session.inputs.map((i) => i.name));
      for (const [n, spec] of Object.entries(this.objective.trainable)) {
        if (!inputNames.has(n)) continue;
        const t = byName.get(n);
        if (t === undefined) throw inputError({ field: `trainable.${n}` }, 'missing');
        const want = spec.shape.join(',');
        if (t.shape.join(',') !== want) throw inputError({ field: `trainable.${n}` }, `shape [${t.shape.join(', ')}], the objective declares [${want}]`);
        const dev = this.session.upload({ dtype: 'float32', dims: [...t.shape], data: t.data } as HostTensor);
        owned.push(dev);
        binding.bindInput(n, dev);
      }
      for (const [n, dev] of this.frozen) binding.bindInput(n, dev);
      const outs = ['loss', ...this.metricNames.map((m) => `metric.${m}`)];
      const outTensors = outs.map((n) => {
        const t = this.session.alloc('float32', []);
        owned.push(t);
        binding.bindOutput(n, t);
        return t;
      });
      const sums = new Array<number>(outs.length).fill(0);
      let examples = 0;
      for (const [k, b] of batches.entries()) {
        if (!Number.isInteger(b.examples) || b.examples < 1)
          throw inputError({ field: `batches[${k}].examples` }, `must be an integer >= 1, got ${b.examples}`);
        const perBatch: DeviceTensor[] = [];
        try {
          for (const n of Object.keys(b.feeds))
            if (!(n in this.objective.batch)) throw inputError({ field: `batches[${k}].${n}` }, 'not a batch input of the objective');
          for (const n of Object.keys(this.objective.batch)) {
            const h = b.feeds[n];
            if (h === undefined) throw inputError({ field: `batches[${k}].${n}` }, 'missing');
            if (!inputNames.has(n)) continue;
            const dev = this.session.upload(h);
            perBatch.push(dev);
            binding.bindInput(n, dev);
          }
          await this.session.runAsync(binding);
          outTensors.forEach((t, i) => {
            sums[i] = (sums[i] as number) + b.examples * (t.download()[0] as number);
          });
          examples += b.examples;
        } finally {
          for (const t of perBatch) t.release();
        }
      }
      const mean = sums.map((s) => s / examples);
      return { loss: mean[0] as number, metrics: Object.fromEntries(this.metricNames.map((m, i) => [m, mean[i + 1] as number])), examples };
    } finally {
      binding.release();
      for (const t of owned) t.release();
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.frozen.values()) t.release();
    this.session.release();
  }
}
