// The training loop's state as one explicit, serializable object, saved and restored as a unit with
// every checkpoint (`loop-state.json`). Everything needed to continue bit-for-bit is here except the
// tensors (parameters, optimizer slots), which the checkpoint stores by the names listed.
//
// Randomness: `rngState` is the generator state at the start of the current epoch. The epoch's data
// permutation is drawn from it (stream 0) and each step's generator from it and the step number
// (stream step+1), so resuming mid-epoch needs no replay. At an epoch boundary it advances once.
import { Rng, inputError, type RngState } from '@latent-sft/core';

export const LOOP_STATE_FORMAT = 'latent-sft/loop-state';
export const LOOP_STATE_VERSION = 1;

/** Everything the loop carries from step to step (besides tensors). */
export interface LoopState {
  /** Optimizer updates taken so far. */
  readonly step: number;
  /** The current epoch, from 0. */
  readonly epoch: number;
  /** Index into the current epoch's permutation of the next example to use. */
  readonly dataPosition: number;
  /** Generator state at the start of the current epoch (see the file header). */
  readonly rngState: RngState;
  readonly bestMetric: number | null;
  readonly bestStep: number | null;
  /** Exponential moving average of the training loss (null before the first step). */
  readonly emaLoss: number | null;
  readonly tokensSeen: number;
  /** Names of the optimizer-state tensors saved with the checkpoint (the handle to restore them). */
  readonly optimizerTensors: readonly string[];
}

/** The state before the first step of a run seeded with `seed`. */
export function initLoopState(seed: number, optimizerTensors: readonly string[] = []): LoopState {
  return {
    step: 0,
    epoch: 0,
    dataPosition: 0,
    rngState: Rng.fromSeed(seed).state(),
    bestMetric: null,
    bestStep: null,
    emaLoss: null,
    tokensSeen: 0,
    optimizerTensors: [...optimizerTensors],
  };
}

/** The permutation of 0..size-1 used in the state's current epoch. */
export function epochPermutation(state: LoopState, size: number): number[] {
  return Rng.fromState(state.rngState).fork(0).permutation(size);
}

/** The generator handed to the step function of update number state.step+1. */
export function stepRng(state: LoopState): Rng {
  return Rng.fromState(state.rngState).fork(state.step + 1);
}

/** The generator state of the next epoch. */
export function nextEpochRngState(state: LoopState): RngState {
  const r = Rng.fromState(state.rngState);
  r.fork(0);
  return r.state();
}

/** The JSON document of a loop state. */
export function loopStateToJson(state: LoopState): Record<string, unknown> {
  return { format: LOOP_STATE_FORMAT, version: LOOP_STATE_VERSION, ...state, rngState: [...state.rngState], optimizerTensors: [...state.optimizerTensors] };
}

/** Parses and validates a loop-state document; errors name the file and the field. */
export function loopStateFromJson(value: unknown, file = 'loop-state.json'): LoopState {
  const bad = (field: string, msg: string) => inputError({ file, field }, msg);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError({ file }, 'expected a JSON object');
  const v = value as Record<string, unknown>;
  if (v['format'] !== LOOP_STATE_FORMAT) throw bad('format', `expected '${LOOP_STATE_FORMAT}', got ${JSON.stringify(v['format'])}`);
  if (v['version'] !== LOOP_STATE_VERSION) throw bad('version', `unsupported version ${JSON.stringify(v['version'])} (expected ${LOOP_STATE_VERSION})`);
  const known = new Set([
    'format',
    'version',
    'step',
    'epoch',
    'dataPosition',
    'rngState',
    'bestMetric',
    'bestStep',
    'emaLoss',
    'tokensSeen',
    'optimizerTensors',
  ]);
  for (const k of Object.keys(v)) if (!known.has(k)) throw bad(k, 'unknown key');
  const count = (k: string): number => {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw bad(k, `expected an integer >= 0, got ${JSON.stringify(x)}`);
    return x;
  };
  const finiteOrNull = (k: string): number | null => {
    const x = v[k];
    if (x === null) return null;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(k, `expected a finite number or null, got ${JSON.stringify(x)}`);
    return x;
  };
  const rng = v['rngState'];
  if (!Array.isArray(rng) || rng.length !== 4 || rng.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff) || rng.every((w) => w === 0)) {
    throw bad('rngState', `expected four uint32 words, not all zero, got ${JSON.stringify(rng)}`);
  }
  const names = v['optimizerTensors'];
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw bad('optimizerTensors', 'expected an array of tensor names');
  const bestStep = v['bestStep'] === null ? null : count('bestStep');
  return {
    step: count('step'),
    epoch: count('epoch'),
    dataPosition: count('dataPosition'),
    rngState: rng as unknown as RngState,
    bestMetric: finiteOrNull('bestMetric'),
    bestStep,
    emaLoss: finiteOrNull('emaLoss'),
    tokensSeen: count('tokensSeen'),
    optimizerTensors: names as string[],
  };
}
