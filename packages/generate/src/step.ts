// One run of the step graph (graphs.ts) with typed outputs: the host inputs of a step (rows.ts
// StepInput) go up, the KV cache binds its state, and the outputs come back split by owner — the
// carry (presents, next mask, both latent inputs) goes to the KvCache, the heads (argmax, top-k,
// candidates, lse, last logits) live for one step's decisions and are released by the caller.
// downloadHeads brings down exactly what the row state machine needs (StepNeeds), as typed arrays.
//
// Together with kv-cache.ts this is the device side that issue 19 replaces (static shapes, sampling
// on the device: the heads then shrink to the chosen ids and the latent top-k).
import type { DeviceBinding, DeviceSession, DeviceTensor } from '@latent-sft/runtime';
import { STEP } from './graphs.js';
import type { KvCache, StepCarry } from './kv-cache.js';
import type { StepHost, StepInput, StepNeeds } from './rows.js';

/** The per-step outputs the decisions read (float32 / int64 on the device). */
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

/** A step's outputs by owner. */
export interface StepOutputs {
  heads: StepHeads;
  carry: StepCarry;
}

const HEADS = ['topIds', 'argmax', 'latentIds', 'topLogits', 'lse', 'softProbs', 'lastLogits'] as const;

/** Releases every head tensor. */
export function releaseHeads(h: StepHeads): void {
  for (const n of HEADS) h[n].release();
}

/** The output names of the step graph for `layers` decoder layers. */
export function stepOutputNames(layers: number): string[] {
  const names: string[] = [
    STEP.topIds,
    STEP.argmax,
    STEP.latentIds,
    STEP.topLogits,
    STEP.lse,
    STEP.softProbs,
    STEP.softNext,
    STEP.hiddenNext,
    STEP.lastLogits,
    STEP.maskNext,
  ];
  for (let i = 0; i < layers; i++) names.push(STEP.presentKey(i), STEP.presentValue(i));
  return names;
}

/**
 * Runs the step graph once on `input` with the cache's state bound; the step's input uploads are
 * freed before it returns (or throws). The caller owns the returned tensors.
 */
export async function runStep(
  s: DeviceSession,
  b: DeviceBinding,
  input: StepInput,
  cache: KvCache,
  invTemp: DeviceTensor,
  layers: number,
): Promise<StepOutputs> {
  const dims = [input.B, input.T];
  {
    // The step's uploads are freed at the end of this block, also when the run throws.
    using ids = s.upload({ dtype: 'int64', dims, data: input.ids });
    using useSoft = s.upload({ dtype: 'bool', dims, data: input.useSoft });
    using positions = s.upload({ dtype: 'int64', dims, data: input.positions });
    b.bindInput(STEP.ids, ids).bindInput(STEP.useSoft, useSoft).bindInput(STEP.positions, positions).bindInput(STEP.invTemp, invTemp);
    cache.bind(b);
    for (const n of stepOutputNames(layers)) b.bindOutputToDevice(n);
    await s.runAsync(b);
  }
  const o = b.outputs();
  const get = (name: string): DeviceTensor => {
    const t = o[name];
    if (t === undefined) {
      for (const v of Object.values(o)) v.release();
      throw new Error(`runStep: the step graph returned no '${name}'`);
    }
    return t;
  };
  const presents: DeviceTensor[] = [];
  for (let i = 0; i < layers; i++) presents.push(get(STEP.presentKey(i)), get(STEP.presentValue(i)));
  return {
    heads: {
      topIds: get(STEP.topIds),
      argmax: get(STEP.argmax),
      latentIds: get(STEP.latentIds),
      topLogits: get(STEP.topLogits),
      lse: get(STEP.lse),
      softProbs: get(STEP.softProbs),
      lastLogits: get(STEP.lastLogits),
    },
    carry: { presents, maskNext: get(STEP.maskNext), softNext: get(STEP.softNext), hiddenNext: get(STEP.hiddenNext) },
  };
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

/** Brings down the heads (and the cache's new latent input z) that `needs` asks for; the full logits lazily. */
export function downloadHeads(h: StepHeads, needs: StepNeeds, cache: KvCache): StepHost {
  return {
    topIds: needs.candidates ? downloadI64(h.topIds) : null,
    topLogits: needs.candidates ? downloadF32(h.topLogits) : null,
    lse: needs.candidates ? downloadF32(h.lse) : null,
    argmax: needs.argmax ? downloadI64(h.argmax) : null,
    latentIds: needs.latent ? downloadI64(h.latentIds) : null,
    softProbs: needs.latent ? downloadF32(h.softProbs) : null,
    latentEmbeddings: needs.latentEmbeddings ? downloadF32(cache.latentInput) : null,
    fullLogits: () => downloadF32(h.lastLogits),
  };
}
