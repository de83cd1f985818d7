// The public request/result types of the generation engine (no runtime code; shared by the row
// state machine in rows.ts and the device driver in generator.ts).
import type { Sampling } from './sampling.js';

/** Explicit decoding, or latent reasoning then `</think>` then the answer. */
export type GenerateMode =
  | { kind: 'explicit' }
  | {
      kind: 'latent';
      /** Must equal the generator's latentTopK (the graph is built for it). */
      topK: number;
      /** Cap on the soft embeddings fed (#L ≤ maxLatent; spec: 128). */
      maxLatent: number;
      /** The full `</think>` id list, fed after the latent phase; its first id is latentEndId. */
      latentEndIds: readonly number[];
      /** The stop signal: the latent phase ends when the argmax equals it. */
      latentEndId: number;
      /**
       * What each latent step feeds as the next input embedding: 'soft' (default) the top-k soft
       * embedding Σ p_j W[id_j]; 'hidden' the model's own final normed hidden state of that step.
       */
      feed?: 'soft' | 'hidden';
    };

/** One generate call. */
export interface GenerateRequest {
  /** Token ids of each prompt (for latent mode, ending with the `<think>` ids). */
  prompts: ReadonlyArray<readonly number[]>;
  mode: GenerateMode;
  sampling: Sampling;
  /** Cap on answer tokens (outputIds), stop ids not counted. */
  maxNewTokens: number;
  /** End-of-sequence ids (eos / eot) that stop the answer. Not checked during the latent phase (spec §5.1). */
  stopIds: readonly number[];
  /** Sequences per batch. */
  batchSize: number;
  /** Also return each fed soft embedding z (float32 [D] per latent step; costs a [B, D] download per step). */
  recordLatentEmbeddings?: boolean;
}

/** The superposition of one latent step: top-k ids (descending) and their softmax probabilities. */
export interface LatentStep {
  ids: number[];
  probs: number[];
}

/** What one prompt produced. */
export interface GenerationResult {
  /** #L: soft embeddings fed (0 in explicit mode). */
  latentCount: number;
  /** Per latent step, the top-k of its logits (whose soft embedding was fed in soft mode; length latentCount). */
  latentTopK: LatentStep[];
  /** Why the latent phase ended: argmax == latentEndId, or maxLatent reached; null in explicit mode. */
  latentStop: 'end' | 'max' | null;
  /** The fed latent embeddings (soft embeddings or hidden states), when recordLatentEmbeddings. */
  latentEmbeddings?: Float32Array[];
  /** Answer tokens (after `</think>` in latent mode), without the stop id. */
  outputIds: number[];
  finishReason: 'stop' | 'length';
  /** The stop id that ended the answer, or null. */
  stopId: number | null;
}

/** Counters and timings of one generate call (CPU wall clock; ms). */
export interface GenerateStats {
  batches: number;
  /** Step-graph runs (prefills included). */
  steps: number;
  promptTokens: number;
  latentTokens: number;
  forcedTokens: number;
  answerTokens: number;
  /** Row-steps computed (Σ live rows per step after the prefill): no finished row is counted. */
  rowSteps: number;
  compactions: number;
  /** Rows whose top-p nucleus needed the full logits row. */
  fullRowFallbacks: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  bytesToDevice: number;
  bytesToHost: number;
}
