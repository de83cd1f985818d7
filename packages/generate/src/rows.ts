// The per-row state machine of generation (spec §5.1, §5.4), pure host code: no ORT, no device.
// It reads the few numbers a step brings down (StepHost: plain typed arrays) and decides, per live
// row, what the next step feeds; unit tests drive it with hand-written step outputs (rows.test.ts).
//
// Each row runs its own phase machine:
//   latent   the last logits' argmax is checked: == latentEndId, or maxLatent latent embeddings already
//            fed → go to 'forcing' (this step's z is discarded, spec §5.1); otherwise record the top-k
//            (ids, probs) and feed z (the step's soft embedding or, feed 'hidden', its final normed
//            hidden state; which one is the device side's business: the machine only says "feed z").
//   forcing  feed the latentEndIds one per step (ordinary token embeddings); the logits after the
//            last one start the answer.
//   answer   pick a token (greedy argmax or seeded top-p over the candidates, falling back to the full
//            logits row when the nucleus is wider); a stop id ends the row ('stop', not in outputIds),
//            maxNewTokens answer tokens end it ('length'); otherwise feed it.
// Explicit mode starts every row in 'answer'. A finished row is dropped at once: decide() returns
// the batch rows to keep (`keep`, for the KV cache's compaction) and the next step's host inputs for
// exactly those rows, in that order.
import { Rng } from '@latent-sft/core';
import { type Sampling, nucleusSize, sampleNucleus, sortRow } from './sampling.js';
import type { GenerateMode, GenerateStats, GenerationResult } from './types.js';

/** Where a row is in its generation. */
export type Phase = 'latent' | 'forcing' | 'answer';

/** One prompt's state (mutated by RowBatch.decide). */
export interface RowState {
  /** The prompt's index in the request. */
  readonly index: number;
  phase: Phase;
  /** `</think>` ids still to feed (phase 'forcing'). */
  forced: number[];
  /** Position id of the row's next fed token. */
  nextPos: number;
  readonly rng: Rng | null;
  readonly res: GenerationResult;
  done: boolean;
}

/** The per-batch constants the machine decides with. */
export interface RowConfig {
  mode: GenerateMode;
  sampling: Sampling;
  maxNewTokens: number;
  stopIds: readonly number[];
  /** Fills the prompts' padding and the id slot of a fed latent embedding. */
  padId: number;
  vocabSize: number;
  /** Width of the latent top-k (k). */
  latentTopK: number;
  /** Top-p candidates per row in StepHost.topIds/topLogits (K). */
  candidates: number;
  /** Hidden size D (StepHost.latentEmbeddings rows). */
  hiddenSize: number;
  /** Record each fed latent embedding in the result. */
  record: boolean;
}

/** Host inputs of one step for B rows and T columns (row-major [B, T]). */
export interface StepInput {
  B: number;
  T: number;
  ids: BigInt64Array;
  /** 1 where the column feeds the pending latent embedding z instead of ids. */
  useSoft: Uint8Array;
  positions: BigInt64Array;
}

/** Which step outputs the next decide() reads (the driver downloads exactly these). */
export interface StepNeeds {
  /** argmax [B] int64. */
  argmax: boolean;
  /** latentIds [B, k] int64 and softProbs [B, k] float32. */
  latent: boolean;
  /** latentEmbeddings [B, D] float32 (the fed z). */
  latentEmbeddings: boolean;
  /** topIds [B, K] int64, topLogits [B, K] float32, lse [B] float32. */
  candidates: boolean;
}

/** One step's outputs on the host, for the current live rows (null: not downloaded, see StepNeeds). */
export interface StepHost {
  argmax: BigInt64Array | null;
  latentIds: BigInt64Array | null;
  softProbs: Float32Array | null;
  latentEmbeddings: Float32Array | null;
  topIds: BigInt64Array | null;
  topLogits: Float32Array | null;
  lse: Float32Array | null;
  /** The full [B, V] last logits, fetched only when a row's nucleus is wider than the candidates. */
  fullLogits: () => Float32Array;
}

/** The outcome of one step's decisions. */
export interface Decision {
  /** Batch rows (of the step just run) that stay live, ascending; all of them when nothing finished. */
  keep: number[];
  /** The next step's inputs for the kept rows; null when every row is done. */
  next: StepInput | null;
}

/** The counters decide() adds to. */
export type RowCounters = Pick<GenerateStats, 'latentTokens' | 'forcedTokens' | 'answerTokens' | 'fullRowFallbacks'>;

const int64 = (values: readonly number[]): BigInt64Array => BigInt64Array.from(values, (v) => BigInt(v));

function need<T>(a: T | null, what: string): T {
  if (a === null) throw new Error(`RowBatch: step output '${what}' was needed but not downloaded (StepNeeds)`);
  return a;
}

/** The rows of one batch and their phase machines (see the file header). */
export class RowBatch {
  /** Every row in batch order (prompt lengths decreasing as the caller chose). */
  readonly all: readonly RowState[];
  private live: RowState[];
  private readonly cfg: RowConfig;
  private readonly stop: ReadonlySet<number>;
  private readonly prompts: ReadonlyArray<readonly number[]>;

  /** `prompts[b]` is the prompt of request index `indices[b]`. */
  constructor(cfg: RowConfig, indices: readonly number[], prompts: ReadonlyArray<readonly number[]>) {
    if (indices.length !== prompts.length || prompts.length === 0) throw new Error(`RowBatch: ${indices.length} indices for ${prompts.length} prompts`);
    this.cfg = cfg;
    this.stop = new Set(cfg.stopIds);
    this.prompts = prompts;
    const s = cfg.sampling;
    const latent = cfg.mode.kind === 'latent';
    this.all = indices.map(
      (index, b): RowState => ({
        index,
        phase: latent ? 'latent' : 'answer',
        forced: [],
        nextPos: prompts[b]?.length ?? 0,
        rng: s.kind === 'top-p' ? Rng.fromSeed(s.seed).fork(index) : null,
        res: {
          latentCount: 0,
          latentTopK: [],
          latentStop: null,
          ...(cfg.record && latent ? { latentEmbeddings: [] } : {}),
          outputIds: [],
          finishReason: 'length',
          stopId: null,
        },
        done: false,
      }),
    );
    this.live = [...this.all];
  }

  /** Live rows, in the order of the current batch. */
  get rows(): readonly RowState[] {
    return this.live;
  }

  /** The results, in batch order. */
  results(): GenerationResult[] {
    return this.all.map((r) => r.res);
  }

  /** The prefill: prompts right-padded to the longest (L) with pad ids (static KV cache layout: row b's keys at [0, len_b)); lengths[b] = len_b. */
  prefill(): StepInput & { lengths: number[] } {
    const p = this.prompts;
    const L = Math.max(...p.map((x) => x.length));
    const pad = (x: readonly number[], fill: number, f: (v: number, j: number) => number): number[] => [...x.map(f), ...Array<number>(L - x.length).fill(fill)];
    return {
      B: p.length,
      T: L,
      ids: int64(p.flatMap((x) => pad(x, this.cfg.padId, (v) => v))),
      useSoft: new Uint8Array(p.length * L),
      positions: int64(p.flatMap((x) => pad(x, 0, (_, j) => j))),
      lengths: p.map((x) => x.length),
    };
  }

  /** What the next decide() reads, from the live rows' phases. */
  needs(): StepNeeds {
    const topP = this.cfg.sampling.kind === 'top-p';
    const anyLatent = this.live.some((r) => r.phase === 'latent');
    const anyAnswer = this.live.some((r) => r.phase !== 'latent');
    return { argmax: !topP || anyLatent, latent: anyLatent, latentEmbeddings: anyLatent && this.cfg.record, candidates: topP && anyAnswer };
  }

  /** Applies one step's outputs to every live row (see the file header); drops the finished rows. */
  decide(host: StepHost, counters: RowCounters): Decision {
    const { mode, sampling, maxNewTokens, padId, latentTopK: k, candidates: K, hiddenSize: D, vocabSize: V } = this.cfg;
    const nextIds: number[] = [];
    const nextSoft: number[] = [];
    let fullLogits: Float32Array | null = null;
    for (const [b, r] of this.live.entries()) {
      const res = r.res;
      if (r.phase === 'latent' && mode.kind === 'latent') {
        const argmax = Number(need(host.argmax, 'argmax')[b]);
        if (argmax === mode.latentEndId || res.latentCount === mode.maxLatent) {
          res.latentStop = argmax === mode.latentEndId ? 'end' : 'max';
          r.phase = 'forcing';
          r.forced = [...mode.latentEndIds];
        } else {
          res.latentTopK.push({
            ids: Array.from(need(host.latentIds, 'latentIds').subarray(b * k, (b + 1) * k), Number),
            probs: Array.from(need(host.softProbs, 'softProbs').subarray(b * k, (b + 1) * k)),
          });
          if (res.latentEmbeddings !== undefined) res.latentEmbeddings.push(need(host.latentEmbeddings, 'latentEmbeddings').slice(b * D, (b + 1) * D));
          res.latentCount++;
          counters.latentTokens++;
          nextIds.push(padId);
          nextSoft.push(1);
          continue;
        }
      }
      if (r.phase === 'forcing') {
        const id = r.forced.shift();
        if (id !== undefined) {
          counters.forcedTokens++;
          nextIds.push(id);
          nextSoft.push(0);
          continue;
        }
        r.phase = 'answer';
      }
      // Answer: these logits choose the next answer token.
      if (res.outputIds.length >= maxNewTokens) {
        r.done = true;
        continue;
      }
      let id: number;
      if (sampling.kind !== 'top-p' || r.rng === null) id = Number(need(host.argmax, 'argmax')[b]);
      else {
        const invT = 1 / sampling.temperature;
        const topLogits = need(host.topLogits, 'topLogits');
        const lse = need(host.lse, 'lse')[b] ?? NaN;
        const u = r.rng.uniform();
        const n = nucleusSize(topLogits, b * K, K, lse, invT, sampling.topP, K === V);
        if (n > 0) id = Number(need(host.topIds, 'topIds')[b * K + sampleNucleus(topLogits, b * K, n, lse, invT, u)]);
        else {
          fullLogits ??= host.fullLogits();
          counters.fullRowFallbacks++;
          const row = sortRow(fullLogits.subarray(b * V, (b + 1) * V));
          const m = nucleusSize(row.logits, 0, V, lse, invT, sampling.topP, true);
          id = row.ids[sampleNucleus(row.logits, 0, m, lse, invT, u)] ?? NaN;
        }
      }
      if (this.stop.has(id)) {
        res.finishReason = 'stop';
        res.stopId = id;
        r.done = true;
        continue;
      }
      res.outputIds.push(id);
      counters.answerTokens++;
      if (res.outputIds.length >= maxNewTokens) {
        r.done = true;
        continue;
      }
      nextIds.push(id);
      nextSoft.push(0);
    }
    const keep: number[] = [];
    const kept: RowState[] = [];
    for (const [b, r] of this.live.entries()) {
      if (!r.done) {
        keep.push(b);
        kept.push(r);
      }
    }
    this.live = kept;
    if (kept.length === 0) return { keep, next: null };
    return { keep, next: { B: kept.length, T: 1, ids: int64(nextIds), useSoft: Uint8Array.from(nextSoft), positions: int64(kept.map((r) => r.nextPos++)) } };
  }
}
