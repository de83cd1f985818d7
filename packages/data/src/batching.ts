// Deterministic shuffling, right-padded id batches (spec §2.4: dynamic padding to the longest item),
// and length-bucketed batch order. Shapes: B = batch size, T = longest sequence in the batch.
// Which pad id to use (128001 for Llama, EOS for DeepSeek/Qwen) and -100 for labels is the caller's
// choice; this file only lays the numbers out.
import { Rng, inputError } from '@latent-sft/core';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** A new array with the items in an order fixed by the seed (Fisher–Yates over Rng.fromSeed(seed)). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  return Rng.fromSeed(seed).shuffle(items);
}

export interface PaddedBatch {
  /** Row-major [B, T] values; positions past a row's length hold padValue. */
  data: Int32Array;
  shape: [number, number];
  /** The unpadded length of each row. */
  lengths: number[];
}

function isInt32(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX;
}

/**
 * Right-pads sequences to the longest one. Works for ids (pad with the pad id) and for labels (pad
 * with -100); every value must be an int32. At least one sequence is required.
 */
export function padBatch(seqs: readonly (readonly number[])[], padValue: number): PaddedBatch {
  if (!Array.isArray(seqs) || seqs.length === 0) throw inputError({ field: 'seqs' }, 'need at least one sequence');
  if (!isInt32(padValue)) throw inputError({ field: 'padValue' }, `must be an int32, got ${padValue}`);
  const lengths = seqs.map((s) => s.length);
  const T = Math.max(...lengths);
  const B = seqs.length;
  const data = new Int32Array(B * T).fill(padValue);
  seqs.forEach((seq, b) => {
    for (let t = 0; t < seq.length; t++) {
      const v = seq[t];
      if (!isInt32(v)) throw inputError({ field: `seqs[${b}][${t}]` }, `must be an int32, got ${String(v)}`);
      data[b * T + t] = v as number;
    }
  });
  return { data, shape: [B, T], lengths };
}

export interface BucketOptions {
  batchSize: number;
  seed: number;
  /** Items per sorting window; a positive multiple of batchSize (default 50 * batchSize). */
  bucketSize?: number;
}

/**
 * Index batches with little padding but random order: shuffle all indices, cut the shuffled list into
 * windows of bucketSize, sort each window by length (ties keep shuffled order), cut windows into
 * batches of batchSize, then shuffle the order of the batches. Every index appears exactly once; only
 * the last window can yield a batch shorter than batchSize.
 */
export function bucketBatches(lengths: readonly number[], opts: BucketOptions): number[][] {
  const { batchSize, seed } = opts;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw inputError({ field: 'batchSize' }, `must be an integer >= 1, got ${batchSize}`);
  const bucketSize = opts.bucketSize ?? 50 * batchSize;
  if (!Number.isSafeInteger(bucketSize) || bucketSize < batchSize || bucketSize % batchSize !== 0) {
    throw inputError({ field: 'bucketSize' }, `must be a positive multiple of batchSize ${batchSize}, got ${bucketSize}`);
  }
  lengths.forEach((len, i) => {
    if (!Number.isSafeInteger(len) || len < 0) throw inputError({ field: `lengths[${i}]` }, `must be an integer >= 0, got ${len}`);
  });
  const rng = Rng.fromSeed(seed);
  const order = rng.permutation(lengths.length);
  const batches: number[][] = [];
  for (let w = 0; w < order.length; w += bucketSize) {
    const window = order.slice(w, w + bucketSize).sort((x, y) => (lengths[x] as number) - (lengths[y] as number));
    for (let b = 0; b < window.length; b += batchSize) batches.push(window.slice(b, b + batchSize));
  }
  return rng.shuffle(batches);
}
