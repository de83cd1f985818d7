// Shared tiny setup for the tests without the golden fixture: a random tiny Llama (vocabulary 64,
// hidden 16), handcrafted id parts, weight feeds and LoRA tensors.
import { Rng } from '@latent-sft/core';
import { type LoraConfig, type ModelConfig, initParameters, loraParameterShapes, tinyLlama } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import type { SequenceParts } from '../src/index.js';

export const config: ModelConfig = tinyLlama();
export const V = config.vocabSize; // 64
export const COMPRESS = V; // the encoder's extra row
export const PAD = 63;
export const THINK = [60, 61];
export const END_THINK = [62];
export const EOS = 2;

/** Two examples of different lengths (CoT 5 and 3 tokens, r = 2 → m = 3 and 2). */
export const examples: SequenceParts[] = [
  { prefixIds: [10, 11, 12], thinkIds: THINK, cotIds: [20, 21, 22, 23, 24], endThinkIds: END_THINK, answerIds: [30, 31, EOS] },
  { prefixIds: [13, 14], thinkIds: THINK, cotIds: [25, 26, 27], endThinkIds: END_THINK, answerIds: [32, EOS] },
];

const cast = (dtype: 'float32' | 'float64', dims: number[], v: ArrayLike<number>): HostTensor => ({
  dtype,
  dims,
  data: dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v),
});

/** Base weights of `config` (seeded init) under `prefix`; `extraRows` random rows appended to embed_tokens. */
export function weightFeeds(seed: number, prefix = '', dtype: 'float32' | 'float64' = 'float32', extraRows = 0): Record<string, HostTensor> {
  const rng = Rng.fromSeed(seed + 1000);
  const out: Record<string, HostTensor> = {};
  for (const p of initParameters(config, { seed })) {
    if (p.name === 'model.embed_tokens.weight' && extraRows > 0) {
      const extra = Array.from({ length: extraRows * config.hiddenSize }, () => 0.02 * rng.normal());
      out[prefix + p.name] = cast(dtype, [(p.shape[0] as number) + extraRows, p.shape[1] as number], [...p.data, ...extra]);
    } else out[prefix + p.name] = cast(dtype, p.shape, p.data);
  }
  return out;
}

/** LoRA tensors under `prefix`: A ~ 0.3·N(0,1); B zeros (PEFT init) unless `randomB`. */
export function loraFeeds(
  c: ModelConfig,
  lora: LoraConfig,
  seed: number,
  prefix = '',
  dtype: 'float32' | 'float64' = 'float32',
  randomB = false,
): Record<string, HostTensor> {
  const rng = Rng.fromSeed(seed);
  const out: Record<string, HostTensor> = {};
  for (const s of loraParameterShapes(c, lora)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = Array.from({ length: n }, () => (s.kind === 'A' || randomB ? 0.3 * rng.normal() : 0));
    out[prefix + s.name] = cast(dtype, s.shape, v);
  }
  return out;
}
