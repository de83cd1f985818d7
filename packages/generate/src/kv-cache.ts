// The per-row device state carried from one decode step to the next, owned by one object: the past
// keys/values of every layer ([B, kvH, P, hd] float32 each), the attention mask over those P
// positions ([B, P] int64) and the pending latent input z ([B, 1, D] float32, the step's soft
// embedding or hidden state). Nothing else holds these tensors; release() frees them.
//
// Lifecycle per batch: create (empty cache, P = 0, the prompts' mask) → bind (as the step's past
// inputs) → advance (the step's presents become the next pasts, the old ones are freed) → compact
// (a finished row is dropped: a small Gather graph copies the kept rows device to device) → release.
//
// This is the seam of issue 19: a preallocated fixed-capacity cache written in place (static
// shapes, CUDA graphs) replaces this class and the step graph behind the same five calls; the row
// state machine (rows.ts) and the decode loop (generator.ts) stay as they are.
import type { ModelConfig } from '@latent-sft/models';
import type { DeviceBinding, DeviceSession, DeviceTensor } from '@latent-sft/runtime';
import { COMPACT, STEP } from './graphs.js';

/** What a step hands back to the cache: its presents, next mask and both candidate latent inputs. */
export interface StepCarry {
  /** [key_0, value_0, key_1, ...] of every layer. */
  presents: DeviceTensor[];
  maskNext: DeviceTensor;
  softNext: DeviceTensor;
  hiddenNext: DeviceTensor;
}

/** Which step output is fed back as the next latent input z. */
export type LatentFeed = 'soft' | 'hidden';

function releaseAll(ts: Iterable<DeviceTensor | undefined>): void {
  for (const t of ts) t?.release();
}

/** Releases every tensor of a carry (when it was not handed to a cache). */
export function releaseCarry(c: StepCarry): void {
  releaseAll([...c.presents, c.maskNext, c.softNext, c.hiddenNext]);
}

/** The device-resident KV cache of one batch (see the file header). */
export class KvCache {
  private past: DeviceTensor[];
  private mask: DeviceTensor;
  private z: DeviceTensor;
  private readonly compactSession: DeviceSession;
  private readonly layers: number;

  private constructor(past: DeviceTensor[], mask: DeviceTensor, z: DeviceTensor, compact: DeviceSession, layers: number) {
    this.past = past;
    this.mask = mask;
    this.z = z;
    this.compactSession = compact;
    this.layers = layers;
  }

  /** An empty cache (P = 0) for B rows whose prompts' mask is `mask` ([B, L] int64, 0 on the left padding). */
  static create(step: DeviceSession, compact: DeviceSession, c: ModelConfig, B: number, mask: BigInt64Array): KvCache {
    const made: DeviceTensor[] = [];
    try {
      const m = step.upload({ dtype: 'int64', dims: [B, mask.length / B], data: mask });
      made.push(m);
      const z = step.alloc('float32', [B, 1, c.hiddenSize]);
      made.push(z);
      const past: DeviceTensor[] = [];
      for (let i = 0; i < 2 * c.numHiddenLayers; i++) {
        const t = step.alloc('float32', [B, c.numKeyValueHeads, 0, c.headDim]);
        made.push(t);
        past.push(t);
      }
      return new KvCache(past, m, z, compact, c.numHiddenLayers);
    } catch (e) {
      releaseAll(made);
      throw e;
    }
  }

  /** The pending latent input z [B, 1, D] (what the next step feeds where use_soft is set). */
  get latentInput(): DeviceTensor {
    return this.z;
  }

  /** The tensors held now (borrowed: valid until the next advance, compact or release). */
  get tensors(): { past: readonly DeviceTensor[]; mask: DeviceTensor; z: DeviceTensor } {
    return { past: this.past, mask: this.mask, z: this.z };
  }

  /** Binds the pasts, the mask and z as inputs of a step-graph binding. */
  bind(b: DeviceBinding): void {
    b.bindInput(STEP.mask, this.mask).bindInput(STEP.soft, this.z);
    for (let i = 0; i < this.layers; i++) b.bindInput(STEP.pastKey(i), this.pastAt(2 * i)).bindInput(STEP.pastValue(i), this.pastAt(2 * i + 1));
  }

  /** Takes a step's carry: presents → pasts, mask_next → mask, the `feed` output → z; frees the old state and the unused feed. */
  advance(carry: StepCarry, feed: LatentFeed): void {
    if (carry.presents.length !== 2 * this.layers) {
      releaseCarry(carry);
      throw new Error(`KvCache.advance: ${carry.presents.length} presents for ${this.layers} layers`);
    }
    const old = [...this.past, this.mask, this.z];
    this.past = carry.presents;
    this.mask = carry.maskNext;
    this.z = feed === 'hidden' ? carry.hiddenNext : carry.softNext;
    (feed === 'hidden' ? carry.softNext : carry.hiddenNext).release();
    releaseAll(old);
  }

  /** Keeps batch rows `keep` (ascending) of every tensor, device to device, in one compaction-graph run. */
  compact(keep: readonly number[]): void {
    const s = this.compactSession;
    const rows = s.upload({ dtype: 'int64', dims: [keep.length], data: BigInt64Array.from(keep, (v) => BigInt(v)) });
    const b = s.createBinding();
    try {
      b.bindInput(COMPACT.rows, rows)
        .bindInput(COMPACT.soft, this.z)
        .bindOutputToDevice(COMPACT.keptSoft)
        .bindInput(COMPACT.mask, this.mask)
        .bindOutputToDevice(COMPACT.keptMask);
      for (let i = 0; i < this.layers; i++) {
        b.bindInput(COMPACT.key(i), this.pastAt(2 * i)).bindInput(COMPACT.value(i), this.pastAt(2 * i + 1));
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
      const past: DeviceTensor[] = [];
      for (let i = 0; i < this.layers; i++) past.push(get(COMPACT.keptKey(i)), get(COMPACT.keptValue(i)));
      const z = get(COMPACT.keptSoft);
      const mask = get(COMPACT.keptMask);
      const old = [...this.past, this.mask, this.z];
      this.past = past;
      this.mask = mask;
      this.z = z;
      releaseAll(old);
    } finally {
      b.release();
      rows.release();
    }
  }

  /** Frees every tensor the cache holds. */
  release(): void {
    releaseAll([...this.past, this.mask, this.z]);
    this.past = [];
  }

  /** `using cache = KvCache.create(…)` frees it at the end of the block. */
  [Symbol.dispose](): void {
    this.release();
  }

  private pastAt(i: number): DeviceTensor {
    const t = this.past[i];
    if (t === undefined) throw new Error(`KvCache: no past tensor ${i} (released?)`);
    return t;
  }
}
