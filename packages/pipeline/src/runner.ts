// One phase's training run: an Objective on a Trainer (device-resident state), inside
// trainWithCheckpoints (atomic verified checkpoints under <out>/checkpoints, exact resume, metrics
// JSONL), with a progress bar / progress records. Returns the trained tensors and the metrics summary.
// Data parallel (`group`): every rank trains its shard of each global batch (train.batchSize); rank 0
// alone keeps the checkpoints, metrics, progress and the checkpoint selection, and hands its metrics
// summary to the others.
// With a `select`ion, every checkpoint is scored on held-out data first (the score goes into the
// checkpoint's manifest and a record into <out>/selection.jsonl, both kept across resumes; the best
// checkpoint is never pruned) and the trained tensors returned are those of the best checkpoint.
import { join } from 'node:path';
import type { ConfigRecord } from '@latent-sft/config';
import { type Logger, createProgress, inputError } from '@latent-sft/core';
import type { ProcessGroup } from '@latent-sft/distributed';
import { typedFrom } from '@latent-sft/graph';
import type { NamedTensor } from '@latent-sft/models';
import type { Objective } from '@latent-sft/phases';
import type { Device, HostTensor } from '@latent-sft/runtime';
import {
  type Batch,
  CheckpointManager,
  type LoopState,
  MetricsWriter,
  type LrSchedule,
  type Recompute,
  Trainer,
  readMetrics,
  safetensorsCodec,
  trainWithCheckpoints,
  warmupStepsFromRatio,
} from '@latent-sft/train';
import { LAYOUT } from './run-dir.js';
import { type MetricSummary, type SelectionSummary, summarizeMetrics } from './summary.js';

/** The train block of the app configs. */
export interface TrainSpec {
  readonly steps: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly schedule: 'linear' | 'cosine' | 'constant';
  readonly warmupRatio: number;
  readonly weightDecay: number;
  readonly clipNorm: number;
  readonly seed: number;
  readonly checkpointEvery: number;
  readonly keepLast: number;
}

export interface RunTrainingOptions {
  out: string;
  record: ConfigRecord;
  resume: boolean;
  device: 'cpu' | 'cuda';
  compute: 'float32' | 'float16' | 'bfloat16';
  /** Storage of the trainable parameters and AdamW moments (Trainer precision.params; default float32 masters). */
  params?: 'float32' | 'bfloat16';
  /** Trainer.recompute (default 'none'). */
  recompute?: Recompute;
  objective: Objective;
  /** Initial trainables (every objective.trainable name) and the frozen inputs (extra names are ignored). */
  init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> };
  train: TrainSpec;
  /** Number of training examples. */
  size: number;
  /** The feeds of one batch (example indices + the step's generator; state.epoch for per-epoch noise). */
  collate(batch: Batch, state: LoopState): Record<string, HostTensor>;
  label: string;
  logger: Logger;
  /** Data-parallel training: this rank's group (RunContext.group). */
  group?: ProcessGroup;
  /** Best-checkpoint selection by a held-out evaluation at every checkpoint (see the file header). */
  select?: Selection;
}

/** How a run scores its checkpoints. */
export interface Selection {
  /** The config's name of the selection (for the summary). */
  name: string;
  /** The key of evaluate()'s record that is compared. */
  metric: string;
  mode: 'min' | 'max';
  examples: number;
  /** Scores the trainable tensors; the record must hold `metric`. */
  evaluate(trainable: NamedTensor[]): Promise<Record<string, number>>;
}

/** The fields of RunTrainingOptions that every training phase takes straight from its config. */
export function runOptionsOf(
  config: { out: string; resume: boolean; device: 'cpu' | 'cuda'; compute: 'float32' | 'float16' | 'bfloat16'; recompute: Recompute; train: TrainSpec },
  record: ConfigRecord,
): Pick<RunTrainingOptions, 'out' | 'record' | 'resume' | 'device' | 'compute' | 'recompute' | 'train'> {
  return { out: config.out, record, resume: config.resume, device: config.device, compute: config.compute, recompute: config.recompute, train: config.train };
}

/** Resolves the LR schedule of a train block. */
export function scheduleOf(t: TrainSpec): LrSchedule {
  const warmupSteps = warmupStepsFromRatio(t.steps, t.warmupRatio);
  return t.schedule === 'constant' ? { kind: 'constant' } : { kind: t.schedule, warmupSteps, totalSteps: t.steps };
}

/**
 * The objective's frozen-weight storage for a compute dtype: the 16-bit compute dtype itself (the base
 * weights stored once in 16 bits on the device: half the memory, and the graph's Cast becomes a no-op
 * that gives the same numbers), float32 storage for float32 compute.
 */
export function frozenDtypeFor(compute: 'float32' | 'float16' | 'bfloat16'): 'float16' | 'bfloat16' | undefined {
  return compute === 'float32' ? undefined : compute;
}

/** `tensors` (float32) in the dtypes `specs` declare for them: float16 / bfloat16 rounded to nearest even. */
export function hostAsSpecs(specs: Readonly<Record<string, { dtype: string }>>, tensors: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const want = specs[name]?.dtype ?? t.dtype;
    if (want === t.dtype) out[name] = t;
    else if (t.dtype === 'float32' && (want === 'bfloat16' || want === 'float16')) out[name] = { dtype: want, dims: t.dims, data: typedFrom(want, t.data) };
    else throw inputError({ field: name }, `a ${t.dtype} tensor where the objective declares ${want}`);
  }
  return out;
}

function pick(specs: Record<string, unknown>, tensors: Record<string, HostTensor>, what: string): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of Object.keys(specs)) {
    const t = tensors[name];
    if (t === undefined) throw inputError({ field: name }, `${what} tensor missing`);
    out[name] = t;
  }
  return out;
}

/** Trains (or resumes) and returns the final trainable tensors and the summary of metrics.jsonl. */
export async function runTraining(o: RunTrainingOptions): Promise<{ trained: NamedTensor[]; metrics: MetricSummary; selection?: SelectionSummary }> {
  const device: Device = o.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' };
  const trainer = await Trainer.create(
    {
      objective: o.objective,
      optimizer: { kind: 'adamw', lr: o.train.lr, weightDecay: o.train.weightDecay },
      schedule: scheduleOf(o.train),
      totalSteps: o.train.steps,
      clipNorm: o.train.clipNorm,
      precision: { compute: o.compute, ...(o.params !== undefined ? { params: o.params } : {}) },
      recompute: o.recompute ?? 'none',
      device,
      logger: o.logger,
      ...(o.group !== undefined ? { group: o.group } : {}),
    },
    {
      trainable: pick(o.objective.trainable, o.init.trainable, 'trainable'),
      frozen: pick(o.objective.frozen, o.init.frozen, 'frozen'),
    },
  );
  try {
    const writer = (o.group?.rank ?? 0) === 0;
    const manager = !writer
      ? null
      : CheckpointManager.open({
          dir: join(o.out, LAYOUT.checkpoints),
          keepLast: o.train.keepLast,
          keepBest: o.select !== undefined,
          metricMode: o.select?.mode ?? 'min',
          codec: safetensorsCodec,
          record: o.record,
          resume: o.resume,
          logger: o.logger,
        });
    const progress = writer ? createProgress({ total: o.train.steps, label: o.label, logger: o.logger }) : null;
    const metricsPath = join(o.out, LAYOUT.metrics);
    await trainWithCheckpoints({
      trainer,
      manager,
      seed: o.train.seed,
      steps: o.train.steps,
      data: { size: o.size, batchSize: Math.min(o.train.batchSize, o.size) },
      batches: (batch, state) => [o.collate(batch, state)],
      checkpointEvery: o.train.checkpointEvery,
      ...(writer ? { metricsPath } : {}),
      logger: o.logger,
      ...(o.select !== undefined && writer
        ? { evaluate: scoreCheckpoint(o.select, trainer, join(o.out, LAYOUT.selection), o.logger), metricMode: o.select.mode }
        : {}),
      onStep: (r) => {
        const fields: Record<string, string> = { loss: r.loss.toFixed(4) };
        for (const [k, v] of Object.entries(r.metrics)) fields[k] = v.toFixed(4);
        progress?.tick(1, fields);
      },
    });
    progress?.done();
    let metrics = writer ? summarizeMetrics(readMetrics(metricsPath)) : null;
    if (o.group !== undefined) {
      const bytes = await o.group.broadcast(metrics === null ? null : Buffer.from(JSON.stringify(metrics)));
      metrics = JSON.parse(Buffer.from(bytes).toString('utf8')) as MetricSummary;
    }
    if (metrics === null) throw new Error('runTraining: no metrics summary');
    if (metrics.collapse.collapsed) o.logger.warn({ collapse: metrics.collapse }, `training collapsed: ${metrics.collapse.message}`);
    if (o.select !== undefined && manager !== null)
      return { ...selectBest(o.select, manager, trainer.tensorNames().trainable, join(o.out, LAYOUT.selection), o.logger), metrics };
    const state = trainer.stateSync();
    const trained = state.trainable.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data }));
    return { trained, metrics };
  } finally {
    await trainer.release();
  }
}

/** The loop's evaluate hook: scores the trainer's current tensors and records them (selection.jsonl, resumable). */
function scoreCheckpoint(select: Selection, trainer: Trainer, path: string, logger: Logger): (state: LoopState) => Promise<number> {
  return async (state) => {
    const trainable = trainer.stateSync().trainable;
    const scores = await select.evaluate(trainable);
    const score = scores[select.metric];
    if (score === undefined || !Number.isFinite(score))
      throw new Error(`selection: evaluation gave no finite '${select.metric}' (got ${JSON.stringify(scores)})`);
    // Records past this step are from a run cut before its checkpoint was saved: dropped, then this one appended.
    const writer = MetricsWriter.open(path, { resumeStep: state.step - 1 });
    try {
      writer.append({ step: state.step, ...scores });
    } finally {
      writer.close();
    }
    logger.info({ step: state.step, ...scores }, `held-out ${select.name}`);
    return score;
  };
}

/** The best checkpoint's trainable tensors (earliest on ties) and the selection summary. */
function selectBest(
  select: Selection,
  manager: CheckpointManager,
  names: readonly string[],
  path: string,
  logger: Logger,
): { trained: NamedTensor[]; selection: SelectionSummary } {
  const best = manager.best();
  if (best === null || best.metric === null) throw new Error(`selection: no scored checkpoint in ${manager.dir}`);
  const ckpt = manager.load(best.step);
  const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
  const trained = names.map((n): NamedTensor => {
    const t = byName.get(n);
    if (t === undefined || !(t.data instanceof Float32Array)) throw inputError({ file: ckpt.dir, field: n }, 'trainable tensor missing');
    return { name: n, shape: [...t.shape], data: t.data };
  });
  const scores = readMetrics(path) as Array<Record<string, number>>;
  const selection: SelectionSummary = {
    select: select.name,
    metric: select.metric,
    mode: select.mode,
    examples: select.examples,
    bestStep: best.step,
    bestScore: best.metric,
    scores,
  };
  logger.info({ bestStep: best.step, [select.metric]: best.metric, evaluated: scores.length }, `best checkpoint by held-out ${select.name}: step ${best.step}`);
  return { trained, selection };
}
