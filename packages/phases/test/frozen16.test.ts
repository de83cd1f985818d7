// Frozen base weights stored in 16 bits (`frozenDtype`) against the same weights stored in float32, on
// the Trainer (CPU, float16 compute): with base weights that float16 represents exactly (a 16-bit
// checkpoint), the graph's Cast of the float32 weights and the 16-bit inputs give the same numbers: the
// first loss is bit-identical and 3 AdamW steps agree to float16 summation noise — for phase 1 (encoder + decoder bases), phase 2 (soft
// top-k and full-distribution teachers: the embedding rows are widened back to float32 for z) and a
// LoRA CoT-SFT. The 16-bit frozen inputs take half the device memory.
import { f16BitsToFloat32, float32ToF16Bits } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import {
  type Objective,
  type Phase2Example,
  collateCotSft,
  collatePhase1,
  collatePhase2,
  cotSftObjective,
  defaultLora,
  encoderConfig,
  phase1Objective,
  phase2Objective,
} from '../src/index.js';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';
import { float16Losses } from './helpers.js';

const lora = (task: 'CAUSAL_LM' | 'FEATURE_EXTRACTION') => defaultLora(task, { r: 4, alpha: 8, dropout: 0, embedTokens: task === 'FEATURE_EXTRACTION' });

/**
 * The first forward is bit-identical; later steps differ by the float16 backward's summation order
 * (ORT schedules the two graphs' Casts differently): ~1e-5 relative after 3 steps, far below a float16
 * ulp (≈ 5e-4 relative).
 */
const STEPS = { rtol: 1e-4, atol: 0 };

/** Each float32 weight rounded to float16 (kept as float32), and the same values as float16 bits. */
function asF16(w: Record<string, HostTensor>): { f32: Record<string, HostTensor>; f16: Record<string, HostTensor> } {
  const f32: Record<string, HostTensor> = {};
  const f16: Record<string, HostTensor> = {};
  for (const [n, t] of Object.entries(w)) {
    const bits = Uint16Array.from(t.data as Float32Array, (v) => float32ToF16Bits(v));
    f16[n] = { dtype: 'float16', dims: t.dims, data: bits };
    f32[n] = { dtype: 'float32', dims: t.dims, data: Float32Array.from(bits, (b) => f16BitsToFloat32(b)) };
  }
  return { f32, f16 };
}

/** Both storages over 3 steps: the same losses (see STEPS), finite and moving. */
async function expectIdentical(
  make: (frozenDtype: 'float32' | 'float16') => Objective,
  trainable: Record<string, HostTensor>,
  frozen: Record<string, HostTensor>,
  batch: Record<string, HostTensor>,
) {
  const w = asF16(frozen);
  const a = await float16Losses(make('float32'), { trainable, frozen: w.f32 }, batch);
  const b = await float16Losses(make('float16'), { trainable, frozen: w.f16 }, batch);
  expect(a.every(Number.isFinite)).toBe(true);
  expect(a[2]).not.toBe(a[0]);
  expect(b[0]).toBe(a[0]);
  expect(b).toBeAllclose(a, STEPS);
}

describe('frozen base weights stored in float16 (frozenDtype)', () => {
  it('phase 1 union step: the same losses as float32 storage', async () => {
    const p1 = { encoder: lora('FEATURE_EXTRACTION'), decoder: lora('CAUSAL_LM') };
    const trainable = {
      ...loraFeeds(encoderConfig(config), p1.encoder, 2, 'encoder.', 'float32', true),
      ...loraFeeds(config, p1.decoder, 3, 'decoder.', 'float32', true),
    };
    const frozen = { ...weightFeeds(1, 'encoder.', 'float32', 1), ...weightFeeds(1, 'decoder.') };
    const batch = collatePhase1(examples, { r: 2, compressId: COMPRESS, padId: PAD, ltim: true, ltsum: true }).feeds;
    await expectIdentical(
      (frozenDtype) =>
        phase1Objective(config, { step: 'union', latent: { kind: 'soft-topk', k: 4 }, ltim: true, ltsum: true, lora: p1, compute: 'float16', frozenDtype }),
      trainable,
      frozen,
      batch,
    );
  });

  it.each(['soft-topk', 'soft-full'] as const)('phase 2 (%s teachers): the same losses as float32 storage', async (latent) => {
    const ex2: Phase2Example[] = examples.map((e, i) => {
      const m = i + 2;
      const k = latent === 'soft-topk' ? 4 : V;
      const probs = new Float32Array(m * k).fill(1 / k);
      return { ...e, teacher: { m, k, probs, indices: Int32Array.from({ length: m * k }, (_, j) => (latent === 'soft-topk' ? (7 * j + i) % V : j % V)) } };
    });
    const l = lora('CAUSAL_LM');
    const batch = collatePhase2(ex2, { padId: PAD, latent, vocabSize: V }).feeds;
    await expectIdentical(
      (frozenDtype) => phase2Objective(config, { latent, lora: l, compute: 'float16', frozenDtype }),
      loraFeeds(config, l, 5, '', 'float32', true),
      weightFeeds(1),
      batch,
    );
  });

  it('CoT-SFT with a LoRA: the same losses; full fine-tuning refuses a 16-bit frozenDtype in one line', async () => {
    const l = lora('CAUSAL_LM');
    const batch = collateCotSft(examples, { padId: PAD }).feeds;
    await expectIdentical(
      (frozenDtype) => cotSftObjective(config, { lora: l, compute: 'float16', frozenDtype }),
      loraFeeds(config, l, 6, '', 'float32', true),
      weightFeeds(1),
      batch,
    );
    expect(() => cotSftObjective(config, { frozenDtype: 'bfloat16' })).toThrow(/frozen base of a LoRA run/);
  });
});
