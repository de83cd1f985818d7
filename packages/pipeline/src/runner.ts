// One phase's training run: an Objective on a Trainer (device-resident state), inside
// trainWithCheckpoints (atomic verified checkpoints under <out>/checkpoints, exact resume, metrics
// JSONL), with a progress bar / progress records. Returns the trained tensors and the metrics summary.
// Data parallel (`group`): every rank trains its shard of each global batch (train.batchSize); rank 0
// alone keeps the checkpoints, metrics and progress, and hands its metrics summary to the others.
import { join } from 'node:path';
import type { ConfigRecord } from '@latent-sft/config';
import { type Logger, createProgress, inputError } from '@latent-sft/core';
import type { ProcessGroup } from '@latent-sft/distributed';
import type { NamedTensor } from '@latent-sft/models';
import type { Objective } from '@latent-sft/phases';
import type { Device, HostTensor } from '@latent-sft/runtime';
import {
  type Batch,
  CheckpointManager,
  type LoopState,
  type LrSchedule,
  Trainer,
  readMetrics,
  safetensorsCodec,
  trainWithCheckpoints,
  warmupStepsFromRatio,
} from '@latent-sft/train';
import { LAYOUT } from './run-dir.js';
import { type MetricSummary, summarizeMetrics } from './summary.js';

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
}

/** Resolves the LR schedule of a train block. */
export function scheduleOf(t: TrainSpec): LrSchedule {
  const warmupSteps = warmupStepsFromRatio(t.steps, t.warmupRatio);
  return t.schedule === 'constant' ? { kind: 'constant' } : { kind: t.schedule, warmupSteps, totalSteps: t.steps };
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
export async function runTraining(o: RunTrainingOptions): Promise<{ trained: NamedTensor[]; metrics: MetricSummary }> {
  const device: Device = o.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' };
  const trainer = await Trainer.create(
    {
      objective: o.objective,
      optimizer: { kind: 'adamw', lr: o.train.lr, weightDecay: o.train.weightDecay },
      schedule: scheduleOf(o.train),
      totalSteps: o.train.steps,
      clipNorm: o.train.clipNorm,
      precision: { compute: o.compute },
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
          keepBest: false,
          metricMode: 'min',
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
      onStep: (r) => {
        const fields: Record<string, string> = { loss: r.loss.toFixed(4) };
        for (const [k, v] of Object.entries(r.metrics)) fields[k] = v.toFixed(4);
        progress?.tick(1, fields);
      },
    });
    progress?.done();
    const state = trainer.stateSync();
    const trained = state.trainable.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data }));
    let metrics = writer ? summarizeMetrics(readMetrics(metricsPath)) : null;
    if (o.group !== undefined) {
      const bytes = await o.group.broadcast(metrics === null ? null : Buffer.from(JSON.stringify(metrics)));
      metrics = JSON.parse(Buffer.from(bytes).toString('utf8')) as MetricSummary;
    }
    if (metrics === null) throw new Error('runTraining: no metrics summary');
    if (metrics.collapse.collapsed) o.logger.warn({ collapse: metrics.collapse }, `training collapsed: ${metrics.collapse.message}`);
    return { trained, metrics };
  } finally {
    await trainer.release();
  }
}
