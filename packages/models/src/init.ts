// HF's `_init_weights` for Llama/Qwen2: Linear and Embedding weights ~ normal(0, initializer_range),
// biases zero, RMSNorm weights one; the embedding row of pad_token_id (when set) is zeroed, as
// nn.Embedding(padding_idx) + `_init_weights` do. A tied lm_head is the embedding (no own tensor).
import { Rng } from '@latent-sft/core';
import type { ModelConfig } from './config.js';
import { roundToBf16 } from './dtype.js';
import { parameterShapes } from './params.js';

/** A named float32 tensor. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A parameter already in a 16-bit dtype (raw bits), e.g. read from a checkpoint by LoadedCheckpoint.read16:
 * a 16-bit graph takes it as its initializer as is, with no float32 copy of the model in host memory.
 */
export interface NamedTensor16 {
  name: string;
  shape: number[];
  dtype: 'bfloat16' | 'float16';
  data: Uint16Array;
}

/** A parameter as float32 values or as 16-bit bits (declareWeights takes either). */
export type WeightTensor = NamedTensor | NamedTensor16;

/** Options of initParameters. */
export interface InitOptions {
  seed: number;
  /** 'bfloat16' rounds every value to bf16 (so saving in bf16 is lossless). Default 'float32'. */
  dtype?: 'float32' | 'bfloat16';
}

/**
 * Fresh parameters in parameterShapes order. Each parameter draws from its own stream
 * (`Rng.fromSeed(seed).fork(index)`), so a parameter's values depend only on seed and position.
 */
export function initParameters(c: ModelConfig, opts: InitOptions): NamedTensor[] {
  const root = Rng.fromSeed(opts.seed);
  const std = c.initializerRange;
  const bf16 = (opts.dtype ?? 'float32') === 'bfloat16';
  return parameterShapes(c).map((p, index) => {
    const rng = root.fork(index);
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.init === 'ones') data.fill(1);
    else if (p.init === 'normal') {
      for (let i = 0; i < n; i++) data[i] = bf16 ? roundToBf16(std * rng.normal()) : std * rng.normal();
      if (p.name === 'model.embed_tokens.weight' && c.padTokenId !== null) {
        data.fill(0, c.padTokenId * c.hiddenSize, (c.padTokenId + 1) * c.hiddenSize);
      }
    }
    return { name: p.name, shape: p.shape, data };
  });
}
