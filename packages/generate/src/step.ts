// One run of the step graph (graphs.ts) on fixed device buffers: the host inputs of a step (rows.ts
// StepInput, mapped onto the batch's slots by generator.ts) are written into this object's input
// tensors, the KV cache binds its buffers, and the heads (argmax, top-k, candidates, lse, last logits)
// land in preallocated outputs. A decode step (T = 1) reuses the same tensors every step (uploads in
// place, no allocation: the shape a CUDA graph can replay); the prefill (T = L) uploads its own.
// downloadHeads brings down exactly what the row state machine needs (StepNeeds), as typed arrays.
import type { DeviceBinding, DeviceSession, DeviceTensor } from '@latent-sft/runtime';
import { allocCpu } from '@latent-sft/runtime';
import { STEP } from './graphs.js';
import type { KvCache, LatentFeed } from './kv-cache.js';
import type { StepHost, StepNeeds } from './rows.js';

/** The per-step outputs the decisions read (float32 / int64 on the device), allocated once per batch size. */
export interface StepHeads {
  /** [B, K] int64, the top-K candidate ids (descending logits). */
  topIds: DeviceTensor;
  /** [B] int64. */
  argmax: DeviceTensor;
  /** [B, k] int64, the latent top-k ids. */
  latentIds: DeviceTensor;
  /** [B, K] float32. */
  topLogits: DeviceTensor;
  /** [B] float32, logsumexp(logits / T). */
  lse: DeviceTensor;
  /** [B, k] float32. */
  softProbs: DeviceTensor;
  /** [B, V] float32. */
  lastLogits: DeviceTensor;
}

/** One step's inputs for the batch's B slots, row-major [B, T] (T = 1 after the prefill). */
export interface SlotInput {
  B: number;
  T: number;
  ids: BigInt64Array;
  useSoft: Uint8Array;
  /** Each slot's length after this step, minus one. */
  seqlensK: Int32Array;
  /** Flat index b·T + t of each slot's last real position; the prefill's (T > 1) only: a decode step's last row of slot b is b. */
  lastRows?: BigInt64Array;
}

const HEADS = ['topIds', 'argmax', 'latentIds', 'topLogits', 'lse', 'softProbs', 'lastLogits'] as const;

/** The device tensors of a batch's steps: heads and the decode-step inputs (fixed shapes, written in place). */
export class StepBuffers {
  readonly B: number;
  readonly heads: StepHeads;
  private readonly decode: { ids: DeviceTensor; useSoft: DeviceTensor; seqlensK: DeviceTensor; lastRows: DeviceTensor };
  /** total_sequence_length lives in host memory (GroupQueryAttention reads it on the host). */
  private readonly total: DeviceTensor;
  private readonly invTemp: DeviceTensor;

  /** Allocates the buffers of B rows (inv_temperature: set it with setInvTemp). */
  constructor(s: DeviceSession, B: number, k: number, K: number, V: number) {
    const made: DeviceTensor[] = [];
    const a = (dtype: 'int64' | 'float32' | 'int32' | 'bool', dims: number[]): DeviceTensor => {
      const t = s.alloc(dtype, dims);
      made.push(t);
      return t;
    };
    try {
      this.heads = {
        topIds: a('int64', [B, K]),
        argmax: a('int64', [B]),
        latentIds: a('int64', [B, k]),
        topLogits: a('float32', [B, K]),
        lse: a('float32', [B]),
        softProbs: a('float32', [B, k]),
        lastLogits: a('float32', [B, V]),
      };
      this.decode = { ids: a('int64', [B, 1]), useSoft: a('bool', [B, 1]), seqlensK: a('int32', [B]), lastRows: a('int64', [B]) };
      this.decode.lastRows.upload(BigInt64Array.from({ length: B }, (_, b) => BigInt(b)));
      this.invTemp = a('float32', [1]);
      this.total = allocCpu('int32', []);
    } catch (e) {
      for (const t of made) t.release();
      throw e;
    }
    this.B = B;
  }

  /** Sets inv_temperature (in place: the same device memory). */
  setInvTemp(v: number): void {
    this.invTemp.upload(new Float32Array([v]));
  }

  /** Frees every tensor. */
  release(): void {
    for (const n of HEADS) this.heads[n].release();
    for (const t of Object.values(this.decode)) t.release();
    this.total.release();
    this.invTemp.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** Runs the step graph once on `input` (B must equal this.B) with the cache bound; the heads hold its results. */
  async run(s: DeviceSession, b: DeviceBinding, input: SlotInput, cache: KvCache, feed: LatentFeed): Promise<void> {
    if (input.B !== this.B || cache.batch !== this.B)
      throw new Error(`StepBuffers.run: ${input.B} input rows and ${cache.batch} cache rows for buffers of ${this.B}`);
    // total_sequence_length: T for the prefill (GroupQueryAttention's first-prompt case: S == total);
    // the capacity for a decode step: the rows' own lengths come from seqlens_k, and a constant keeps
    // the decode step's launch parameters fixed (replayable as a CUDA graph).
    this.total.upload(new Int32Array([input.T === 1 ? cache.capacity : input.T]));
    b.bindInput(STEP.totalLength, this.total).bindInput(STEP.invTemp, this.invTemp);
    b.bindOutput(STEP.topIds, this.heads.topIds)
      .bindOutput(STEP.argmax, this.heads.argmax)
      .bindOutput(STEP.latentIds, this.heads.latentIds)
      .bindOutput(STEP.topLogits, this.heads.topLogits)
      .bindOutput(STEP.lse, this.heads.lse)
      .bindOutput(STEP.softProbs, this.heads.softProbs)
      .bindOutput(STEP.lastLogits, this.heads.lastLogits);
    cache.bind(b, feed);
    if (input.T === 1) {
      const d = this.decode;
      d.ids.upload(input.ids);
      d.useSoft.upload(input.useSoft);
      d.seqlensK.upload(input.seqlensK);
      b.bindInput(STEP.ids, d.ids).bindInput(STEP.useSoft, d.useSoft).bindInput(STEP.seqlensK, d.seqlensK).bindInput(STEP.lastRows, d.lastRows);
      await s.runAsync(b);
      return;
    }
    // The prefill's uploads are freed at the end of this block, also when the run throws.
    if (input.lastRows === undefined) throw new Error('StepBuffers.run: a prefill (T > 1) needs lastRows');
    const dims = [input.B, input.T];
    using ids = s.upload({ dtype: 'int64', dims, data: input.ids });
    using useSoft = s.upload({ dtype: 'bool', dims, data: input.useSoft });
    using seqlensK = s.upload({ dtype: 'int32', dims: [input.B], data: input.seqlensK });
    using lastRows = s.upload({ dtype: 'int64', dims: [input.B], data: input.lastRows });
    b.bindInput(STEP.ids, ids).bindInput(STEP.useSoft, useSoft).bindInput(STEP.seqlensK, seqlensK).bindInput(STEP.lastRows, lastRows);
    await s.runAsync(b);
  }
}

/** A float32 device tensor as a Float32Array. */
export function downloadF32(t: DeviceTensor): Float32Array {
  const a = new Float32Array(t.size);
  t.downloadInto(a);
  return a;
}

/** An int64 device tensor as a BigInt64Array. */
export function downloadI64(t: DeviceTensor): BigInt64Array {
  const a = new BigInt64Array(t.size);
  t.downloadInto(a);
  return a;
}

/**
 * Brings down the heads (and the cache's new latent input z) that `needs` asks for, for the live rows
 * at batch slots `slots` (in the rows' order); the full logits lazily.
 */
export function downloadHeads(h: StepHeads, needs: StepNeeds, cache: KvCache, slots: readonly number[]): StepHost {
  const B = h.argmax.size;
  const identity = slots.length === B && slots.every((s, i) => s === i);
  const pick = <A extends BigInt64Array | Float32Array>(a: A): A => {
    if (identity) return a;
    const w = a.length / B;
    const out = new (a.constructor as new (n: number) => A)(slots.length * w);
    slots.forEach((s, j) => out.set(a.subarray(s * w, (s + 1) * w) as never, j * w));
    return out;
  };
  return {
    topIds: needs.candidates ? pick(downloadI64(h.topIds)) : null,
    topLogits: needs.candidates ? pick(downloadF32(h.topLogits)) : null,
    lse: needs.candidates ? pick(downloadF32(h.lse)) : null,
    argmax: needs.argmax ? pick(downloadI64(h.argmax)) : null,
    latentIds: needs.latent ? pick(downloadI64(h.latentIds)) : null,
    softProbs: needs.latent ? pick(downloadF32(h.softProbs)) : null,
    latentEmbeddings: needs.latentEmbeddings ? pick(downloadF32(cache.latentInput)) : null,
    fullLogits: () => pick(downloadF32(h.lastLogits)),
  };
}
