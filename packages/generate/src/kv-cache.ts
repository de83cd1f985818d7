// The per-batch device state carried from one decode step to the next, owned by one object: the
// static KV cache (per layer K and V buffers [B, kvH, C, hd] in the compute dtype, capacity C fixed for
// the batch, written in place by GroupQueryAttention), the pending latent input z ([B, 1, D] float32:
// the step's soft embedding or hidden state) and a scratch buffer for the step output not fed back.
// Nothing else holds these tensors; release() frees them.
//
// No step allocates or copies the cache: the step graph's pasts and presents are bound to the same
// buffers, and z is bound both as the step's soft_embeds input and as the output chosen by the feed
// (soft_next or hidden_next; the graph reads it first and writes it last). Row lengths are the
// caller's (host) business: the cache only holds the memory.
//
// Lifecycle per batch: create (zeroed buffers) → bind (every step) → compact (a finished row is
// dropped: a small Gather graph copies the kept rows device to device into new, smaller buffers) →
// release.
import { type ModelConfig, staticCacheHeadDim } from '@latent-sft/models';
import type { DeviceBinding, DeviceSession, DeviceTensor } from '@latent-sft/runtime';
import { COMPACT, type GenerateDtype, STEP } from './graphs.js';

/** Which step output is fed back as the next latent input z. */
export type LatentFeed = 'soft' | 'hidden';

function releaseAll(ts: Iterable<DeviceTensor | undefined>): void {
  for (const t of ts) t?.release();
}

/** The device-resident static KV cache of one batch (see the file header). */
export class KvCache {
  private buffers: DeviceTensor[];
  private z: DeviceTensor;
  private scratch: DeviceTensor;
  private rows: number;
  /** Keys each row can hold (C). */
  readonly capacity: number;
  private readonly compactSession: DeviceSession;
  private readonly layers: number;

  private constructor(buffers: DeviceTensor[], z: DeviceTensor, scratch: DeviceTensor, rows: number, capacity: number, compact: DeviceSession, layers: number) {
    this.buffers = buffers;
    this.z = z;
    this.scratch = scratch;
    this.rows = rows;
    this.capacity = capacity;
    this.compactSession = compact;
    this.layers = layers;
  }

  /** A zeroed cache for B rows of up to `capacity` keys each, in `dtype`. */
  static create(step: DeviceSession, compact: DeviceSession, c: ModelConfig, B: number, capacity: number, dtype: GenerateDtype): KvCache {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error(`KvCache: capacity must be a positive integer, got ${capacity}`);
    const made: DeviceTensor[] = [];
    try {
      const z = step.alloc('float32', [B, 1, c.hiddenSize]);
      made.push(z);
      const scratch = step.alloc('float32', [B, 1, c.hiddenSize]);
      made.push(scratch);
      const buffers: DeviceTensor[] = [];
      for (let i = 0; i < 2 * c.numHiddenLayers; i++) {
        const t = step.alloc(dtype, [B, c.numKeyValueHeads, capacity, staticCacheHeadDim(c)]);
        made.push(t);
        buffers.push(t);
      }
      return new KvCache(buffers, z, scratch, B, capacity, compact, c.numHiddenLayers);
    } catch (e) {
      releaseAll(made);
      throw e;
    }
  }

  /** Rows held (B). */
  get batch(): number {
    return this.rows;
  }

  /** The pending latent input z [B, 1, D] (after a step: what the feed chose from that step). */
  get latentInput(): DeviceTensor {
    return this.z;
  }

  /** The tensors held now (borrowed: valid until the next compact or release). */
  get tensors(): { buffers: readonly DeviceTensor[]; z: DeviceTensor } {
    return { buffers: this.buffers, z: this.z };
  }

  /** Binds the cache buffers as the step's pasts and presents, z as its soft_embeds and as the `feed` output, scratch as the other. */
  bind(b: DeviceBinding, feed: LatentFeed): void {
    for (let i = 0; i < this.layers; i++) {
      const [k, v] = [this.at(2 * i), this.at(2 * i + 1)];
      b.bindInput(STEP.pastKey(i), k).bindInput(STEP.pastValue(i), v).bindOutput(STEP.presentKey(i), k).bindOutput(STEP.presentValue(i), v);
    }
    b.bindInput(STEP.soft, this.z);
    b.bindOutput(feed === 'hidden' ? STEP.hiddenNext : STEP.softNext, this.z).bindOutput(feed === 'hidden' ? STEP.softNext : STEP.hiddenNext, this.scratch);
  }

  /** Keeps batch rows `keep` (ascending) of every buffer and of z, device to device, in one compaction-graph run. */
  compact(keep: readonly number[]): void {
    const s = this.compactSession;
    using rows = s.upload({ dtype: 'int64', dims: [keep.length], data: BigInt64Array.from(keep, (v) => BigInt(v)) });
    using b = s.createBinding();
    b.bindInput(COMPACT.rows, rows).bindInput(COMPACT.soft, this.z).bindOutputToDevice(COMPACT.keptSoft);
    for (let i = 0; i < this.layers; i++) {
      b.bindInput(COMPACT.key(i), this.at(2 * i)).bindInput(COMPACT.value(i), this.at(2 * i + 1));
      b.bindOutputToDevice(COMPACT.keptKey(i)).bindOutputToDevice(COMPACT.keptValue(i));
    }
    s.run(b);
    const o = b.outputs();
    const get = (name: string): DeviceTensor => {
      const t = o[name];
      if (t === undefined) {
        releaseAll(Object.values(o));
        throw new Error(`KvCache.compact: the compaction graph returned no '${name}'`);
      }
      return t;
    };
    const buffers: DeviceTensor[] = [];
    for (let i = 0; i < this.layers; i++) buffers.push(get(COMPACT.keptKey(i)), get(COMPACT.keptValue(i)));
    const z = get(COMPACT.keptSoft);
    const scratch = s.alloc('float32', z.dims);
    releaseAll([...this.buffers, this.z, this.scratch]);
    this.buffers = buffers;
    this.z = z;
    this.scratch = scratch;
    this.rows = keep.length;
  }

  /** Frees every tensor the cache holds. */
  release(): void {
    releaseAll([...this.buffers, this.z, this.scratch]);
    this.buffers = [];
  }

  /** `using cache = KvCache.create(…)` frees it at the end of the block. */
  [Symbol.dispose](): void {
    this.release();
  }

  private at(i: number): DeviceTensor {
    const t = this.buffers[i];
    if (t === undefined) throw new Error(`KvCache: no buffer ${i} (released?)`);
    return t;
  }
}
