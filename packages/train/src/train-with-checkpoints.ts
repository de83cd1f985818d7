// A Trainer inside trainLoop with atomic checkpoints and exact resume. A checkpoint holds the
// trainable masters under their own names, the optimizer slots as `<slot>.<name>` (m./v./momentum.),
// and `trainer.counters` = float64 [step, optimizerStep, lossScale, lossScaleGoodSteps], beside the
// loop state (data position, epoch generator, EMA…). Resuming loads the newest checkpoint that
// verifies, so a run cut anywhere continues bit-for-bit (ORT CPU kernels are deterministic for the
// same inputs; the sessions are created with deterministic compute).
// Data parallel (the trainer's group): rank 0 decides the start state (fresh or the checkpoint it
// resumes) and broadcasts it, so every rank starts from the same weights, optimizer state and loop
// state; each rank then trains on its shard of every global batch (distributed.shardRange of the
// loop's batch, in order; its step generator forked by rank) and only rank 0 gets a manager.
import { inputError, silentLogger, type Logger } from '@latent-sft/core';
import { type ProcessGroup, shardRange } from '@latent-sft/distributed';
import type { HostTensor } from '@latent-sft/runtime';
import type { CheckpointManager, CheckpointTensor, LoadedCheckpoint } from './checkpoint.js';
import { type LoopState, initLoopState, loopStateFromJson, loopStateToJson } from './loop-state.js';
import { type Batch, type StepResult, trainLoop } from './loop.js';
import { MetricsWriter } from './metrics.js';
import type { Trainer, TrainerState, TrainerStepResult } from './trainer.js';

export const TRAINER_COUNTERS = 'trainer.counters';

export interface TrainWithCheckpointsOptions {
  trainer: Trainer;
  /** Where checkpoints go and resume comes from; null: none (the ranks other than 0 of a group). */
  manager: CheckpointManager | null;
  /** Seed of the loop state of a fresh run (data order, per-step generators). */
  seed: number;
  /** Run until this many steps are done. */
  steps: number;
  /** batchSize: the global batch (data parallel: split over the ranks). */
  data: { size: number; batchSize: number; dropLast?: boolean };
  /** The gradAccum micro-batches of one loop batch (example indices + the step's generator; data parallel: this rank's shard). */
  batches(batch: Batch, state: LoopState): Array<Record<string, HostTensor>>;
  /** Save every this many steps (and after the last); 0 = only after the last. */
  checkpointEvery: number;
  /** metrics.jsonl path; records past the resumed step are dropped first. */
  metricsPath?: string;
  evaluate?: (state: LoopState) => number | Promise<number>;
  metricMode?: 'min' | 'max';
  logger?: Logger;
  now?: () => number;
  /** Called after every step with the trainer's full result. */
  onStep?: (r: TrainerStepResult, state: LoopState) => void;
}

/** The checkpoint tensors of a trainer state. */
export function trainerStateToTensors(s: TrainerState): CheckpointTensor[] {
  const named = [...s.trainable, ...s.optimizer].map((t): CheckpointTensor => ({ name: t.name, dtype: 'float32', shape: t.shape, data: t.data }));
  const counters = Float64Array.of(s.step, s.optimizerStep ?? s.step, s.lossScale, s.lossScaleGoodSteps ?? 0);
  return [...named, { name: TRAINER_COUNTERS, dtype: 'float64', shape: [4], data: counters }];
}

/** The trainer state of a checkpoint (names as trainer.tensorNames()). */
export function trainerStateFromTensors(
  tensors: readonly CheckpointTensor[],
  names: { trainable: readonly string[]; optimizer: readonly string[] },
  where = 'checkpoint',
): TrainerState {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const get = (n: string, dtype: 'float32' | 'float64'): CheckpointTensor => {
    const t = byName.get(n);
    if (t === undefined) throw inputError({ file: where, field: n }, 'tensor missing');
    if (t.dtype !== dtype) throw inputError({ file: where, field: n }, `expected ${dtype}, got ${t.dtype}`);
    return t;
  };
  const named = (n: string) => {
    const t = get(n, 'float32');
    return { name: n, shape: [...t.shape], data: t.data as Float32Array };
  };
  const c = get(TRAINER_COUNTERS, 'float64').data as Float64Array;
  if (c.length !== 4) throw inputError({ file: where, field: TRAINER_COUNTERS }, `expected 4 values, got ${c.length}`);
  return {
    trainable: names.trainable.map(named),
    optimizer: names.optimizer.map(named),
    step: c[0] as number,
    optimizerStep: c[1] as number,
    lossScale: c[2] as number,
    lossScaleGoodSteps: c[3] as number,
  };
}

/**
 * Data parallel: every rank takes rank 0's start state (weights, optimizer state, counters, loop state):
 * a JSON header (loop state, tensor names/dtypes/shapes), then one broadcast per tensor (Node caps one
 * buffer at 4 GiB, so not one buffer of everything).
 */
async function shareStart(group: ProcessGroup, trainer: Trainer, loop: LoopState | null): Promise<LoopState> {
  const where = 'the start state from rank 0';
  if (group.rank === 0) {
    const tensors = trainerStateToTensors(trainer.stateSync());
    const header = { loop: loopStateToJson(loop as LoopState), tensors: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })) };
    await group.broadcast(Buffer.from(JSON.stringify(header)));
    for (const t of tensors) await group.broadcast(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    return loop as LoopState;
  }
  const header = JSON.parse(Buffer.from(await group.broadcast(null)).toString('utf8')) as {
    loop: unknown;
    tensors: Array<Pick<CheckpointTensor, 'name' | 'dtype' | 'shape'>>;
  };
  const tensors: CheckpointTensor[] = [];
  for (const t of header.tensors) {
    const bytes = await group.broadcast(null);
    const data = t.dtype === 'float64' ? new Float64Array(bytes.byteLength / 8) : new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes);
    tensors.push({ ...t, data });
  }
  await trainer.load(trainerStateFromTensors(tensors, trainer.tensorNames(), where));
  return loopStateFromJson(header.loop, where);
}

/** This rank's shard of a loop batch and its weight (data parallel; an empty shard runs the first example at weight 0). */
function shardOf(group: ProcessGroup | null, batch: Batch): { batch: Batch; weight: number } {
  if (group === null) return { batch, weight: 1 };
  const { start, end, weight } = shardRange(batch.indices.length, group.rank, group.worldSize);
  const indices = end > start ? batch.indices.slice(start, end) : batch.indices.slice(0, 1);
  return { batch: { epoch: batch.epoch, indices, rng: batch.rng.fork(group.rank) }, weight };
}

/** Runs (or resumes, when the manager's dir holds a checkpoint) a Trainer up to `steps`. */
export async function trainWithCheckpoints(o: TrainWithCheckpointsOptions): Promise<{ state: LoopState; resumedFrom: LoadedCheckpoint | null }> {
  const logger = o.logger ?? silentLogger;
  const names = o.trainer.tensorNames();
  const group = o.trainer.group;
  if (group !== null && (group.rank === 0) !== (o.manager !== null))
    throw inputError({ field: 'manager' }, `data parallel: rank 0 and only rank 0 keeps the checkpoints (this is rank ${group.rank})`);
  const checkpoint = o.manager?.loadLatestValid().checkpoint ?? null;
  let initial: LoopState;
  if (checkpoint !== null) {
    const st = trainerStateFromTensors(checkpoint.tensors, names, checkpoint.dir);
    if (st.step !== checkpoint.loopState.step) {
      throw inputError({ file: checkpoint.dir, field: TRAINER_COUNTERS }, `trainer step ${st.step} differs from the loop state's ${checkpoint.loopState.step}`);
    }
    await o.trainer.load(st);
    initial = checkpoint.loopState;
    logger.info({ step: initial.step, dir: checkpoint.dir }, 'resumed from checkpoint');
  } else {
    initial = initLoopState(o.seed, names.optimizer);
  }
  if (group !== null) initial = await shareStart(group, o.trainer, group.rank === 0 ? initial : null);
  const metrics = o.metricsPath !== undefined ? MetricsWriter.open(o.metricsPath, { resumeStep: initial.step }) : undefined;
  try {
    const state = await trainLoop({
      state: initial,
      steps: o.steps,
      data: o.data,
      checkpointEvery: o.checkpointEvery,
      ...(o.manager !== null ? { manager: o.manager } : {}),
      tensors: () => trainerStateToTensors(o.trainer.stateSync()),
      ...(o.evaluate ? { evaluate: o.evaluate } : {}),
      ...(o.metricMode ? { metricMode: o.metricMode } : {}),
      ...(metrics ? { metrics } : {}),
      logger,
      ...(o.now ? { now: o.now } : {}),
      stepFn: async (s, batch): Promise<StepResult> => {
        o.trainer.lastGoodCheckpoint = o.manager?.latest()?.dir ?? null;
        const shard = shardOf(group, batch);
        const r = await o.trainer.step(o.batches(shard.batch, s), group !== null ? { weight: shard.weight } : {});
        o.onStep?.(r, s);
        const extra: Record<string, number> = { ...r.metrics, lossScale: r.lossScale, skipped: r.skipped ? 1 : 0 };
        const out: StepResult = { loss: r.loss, lr: r.lr, extra };
        if (Number.isFinite(r.gradNorm)) out.gradNorm = r.gradNorm; // a skipped fp16 step has none
        if (r.tokens !== undefined) out.tokens = r.tokens;
        return out;
      },
    });
    return { state, resumedFrom: checkpoint };
  } finally {
    metrics?.close();
  }
}
