// The training loop driver, independent of how a step is computed (graphs later, a CPU toy in tests).
// Each iteration reads top to bottom: batch from the epoch permutation -> stepFn -> finite check ->
// next loop state -> metrics record -> checkpoint. The loop state is the only thing carried between
// iterations (plus whatever tensors the caller owns and hands over via `tensors()`), so a run resumed
// from a checkpoint continues bit-for-bit.
// Batching: the epoch's permutation is cut into consecutive batches from `dataPosition`; the last
// partial batch is used unless dropLast. Metrics/checkpoint step numbers count updates done (1-based).
import { silentLogger, type Logger, type Rng } from '@latent-sft/core';
import type { CheckpointManager, CheckpointTensor } from './checkpoint.js';
import { epochPermutation, nextEpochRngState, stepRng, type LoopState } from './loop-state.js';
import { checkFinite, type MetricsRecord, type MetricsWriter } from './metrics.js';

/** The data of one step. */
export interface Batch {
  readonly epoch: number;
  /** Example indices of this batch, in order. */
  readonly indices: readonly number[];
  /** This step's generator (a pure function of the loop state). */
  readonly rng: Rng;
}

/** What a step reports. */
export interface StepResult {
  loss: number;
  lr?: number;
  gradNorm?: number;
  /** Tokens processed (for tokensSeen and tokens/s). */
  tokens?: number;
  /** Extra scalars for the metrics record. */
  extra?: Record<string, number>;
}

export interface TrainLoopOptions {
  state: LoopState;
  /** Run until state.step reaches this many updates. */
  steps: number;
  data: { size: number; batchSize: number; dropLast?: boolean };
  stepFn(state: LoopState, batch: Batch): StepResult | Promise<StepResult>;
  /** Save every this many updates (and always after the last); 0 = only after the last. */
  checkpointEvery: number;
  manager?: CheckpointManager;
  /** The tensors to save with a checkpoint (parameters and optimizer slots), read at save time. */
  tensors?: () => readonly CheckpointTensor[];
  /** A metric (e.g. eval loss) computed at each checkpoint; tracked as best with the manager's mode. */
  evaluate?: (state: LoopState) => number | Promise<number>;
  metricMode?: 'min' | 'max';
  metrics?: MetricsWriter;
  logger?: Logger;
  /** EMA factor of the smoothed loss (default 0.9). */
  emaBeta?: number;
  /** Clock in ms for tokens/s (default performance.now). */
  now?: () => number;
}

function checkData(data: TrainLoopOptions['data']): void {
  const { size, batchSize } = data;
  if (!Number.isInteger(size) || size < 1) throw new Error(`data size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be an integer >= 1, got ${batchSize}`);
  if (data.dropLast === true && batchSize > size) throw new Error(`batch size ${batchSize} > data size ${size} with dropLast leaves no batch`);
}

/** Runs steps until opts.steps; returns the final loop state. */
export async function trainLoop(opts: TrainLoopOptions): Promise<LoopState> {
  checkData(opts.data);
  const { size, batchSize } = opts.data;
  const dropLast = opts.data.dropLast ?? false;
  const logger = opts.logger ?? silentLogger;
  const now = opts.now ?? (() => performance.now());
  const emaBeta = opts.emaBeta ?? 0.9;
  const mode = opts.metricMode ?? 'min';
  if (opts.manager && !opts.tensors) throw new Error('trainLoop: a checkpoint manager needs tensors()');
  if (!Number.isInteger(opts.checkpointEvery) || opts.checkpointEvery < 0)
    throw new Error(`checkpointEvery must be an integer >= 0, got ${opts.checkpointEvery}`);

  let state = opts.state;
  if (state.dataPosition >= size) throw new Error(`loop state dataPosition ${state.dataPosition} is outside the data (size ${size})`);
  let lastGood = opts.manager?.latest()?.dir ?? null;
  let perm = epochPermutation(state, size);
  let permEpoch = state.epoch;

  while (state.step < opts.steps) {
    // ---- batch
    if (permEpoch !== state.epoch) {
      perm = epochPermutation(state, size);
      permEpoch = state.epoch;
    }
    const indices = perm.slice(state.dataPosition, state.dataPosition + batchSize);
    const t0 = now();

    // ---- step
    const r = await opts.stepFn(state, { epoch: state.epoch, indices, rng: stepRng(state) });
    checkFinite({ step: state.step + 1, loss: r.loss, gradNorm: r.gradNorm, lastGoodCheckpoint: lastGood });
    const dt = (now() - t0) / 1000;

    // ---- next state
    let position = state.dataPosition + indices.length;
    let { epoch, rngState } = state;
    if (position >= size || (dropLast && size - position < batchSize)) {
      rngState = nextEpochRngState(state);
      epoch += 1;
      position = 0;
    }
    const tokens = r.tokens ?? 0;
    state = {
      ...state,
      step: state.step + 1,
      epoch,
      dataPosition: position,
      rngState,
      tokensSeen: state.tokensSeen + tokens,
      emaLoss: state.emaLoss === null ? r.loss : emaBeta * state.emaLoss + (1 - emaBeta) * r.loss,
    };

    // ---- metrics
    const rec: MetricsRecord = { step: state.step, epoch: state.epoch, loss: r.loss };
    if (r.lr !== undefined) rec.lr = r.lr;
    if (r.gradNorm !== undefined) rec.gradNorm = r.gradNorm;
    if (r.tokens !== undefined && dt > 0) rec.tokensPerSec = tokens / dt;
    Object.assign(rec, r.extra ?? {});
    opts.metrics?.append(rec);

    // ---- checkpoint
    const due = state.step === opts.steps || (opts.checkpointEvery > 0 && state.step % opts.checkpointEvery === 0);
    if (due && opts.manager) {
      let metric: number | undefined;
      if (opts.evaluate) {
        metric = await opts.evaluate(state);
        const better = state.bestMetric === null || (mode === 'min' ? metric < state.bestMetric : metric > state.bestMetric);
        if (better) state = { ...state, bestMetric: metric, bestStep: state.step };
      }
      const info = opts.manager.save({ step: state.step, loopState: state, tensors: (opts.tensors as () => readonly CheckpointTensor[])(), metric });
      lastGood = info.dir;
      logger.info({ step: state.step, dir: info.dir, metric: info.metric }, 'checkpoint saved');
    }
  }
  return state;
}
