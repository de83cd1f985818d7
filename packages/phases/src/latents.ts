// The cache-latents core (spec §3.7, HEAD): run the Phase-1 encoder (+ its LoRA, eval mode) on a batch
// and keep, per latent slot, the top-k of the logits h·Wᵀ (W = the decoder's input embedding [V,d])
// renormalised by a softmax over those k (T = 1): (probs [m,k], ids [m,k]) per example. k ≥ V stores the
// full-vocabulary distribution (ids 0..V−1), as `--full_vocab`.
// Graph inputs: `encoder.<hf name>` (vocabulary V+1), `encoder.<peft name>` when a LoRA is given,
// `decoder.model.embed_tokens.weight`, and the encoder batch inputs of collateEncoder. Outputs
// `latent_probs` [B,m,k] and `latent_indices` [B,m,k] int64. Forward only; no gradients.
// latent 'hidden' (the "- Hidden State" ablation, spec §7): no W input; the output is `latent_hidden`
// [B,m,d], the encoder's final normed hidden state at each compress position, i.e. exactly the vector
// phase 1 (latent kind hidden) fed to the decoder.
// compute float16 / bfloat16 (the 16-bit path, phase 1's frozen bases at that compute): the encoder's base
// weights and W are inputs in that dtype (a 16-bit checkpoint goes to the device as stored), the encoder
// runs as phase 1's does (models.decoder: matrix products in 16 bits, norms and softmax in float32, h
// widened to float32), the LoRA stays float32 (cast in-graph) and the logits h·Wᵀ, top-k and softmax are
// float32 on W widened exactly, as phase 1's latents. The outputs keep their float32 / int64 format.
import { inputError } from '@latent-sft/core';
import { Graph, type Tensor } from '@latent-sft/graph';
import { gLatentLogits, gSoftEmbeddingTopK } from '@latent-sft/latent';
import type { ComputeDtype, LoraConfig, ModelConfig } from '@latent-sft/models';
import type { HostTensor, Session } from '@latent-sft/runtime';
import type { SequenceParts } from './examples.js';
import { numbers } from './host.js';
import type { HiddenTeacherLatents, TeacherLatents } from './phase2.js';
import { DECODER_PREFIX, ENCODER_PREFIX, type Phase1CollateOptions, collateEncoder, encoderBatchSpecs, encoderConfig, encoderStates } from './phase1.js';
import { type FrozenDtype, type ParamDtype, checkLoraTask, loraSpecs, weightSpecs } from './specs.js';

/** Options of buildLatentCacheGraph. */
export interface LatentCacheOptions {
  /** Top-k width (10 in the scripts); k ≥ V keeps the full distribution. Unused by 'hidden'. */
  k: number;
  /** 'soft' (default): top-k distributions over h·Wᵀ; 'hidden': the states h themselves. */
  latent?: 'soft' | 'hidden';
  /** The encoder's LoRA (FEATURE_EXTRACTION), applied without dropout; omit for a merged encoder. */
  lora?: LoraConfig;
  /** Dtype of the batch masks and the LoRA tensors (default float32). */
  dtype?: ParamDtype;
  /**
   * Compute dtype of the encoder (default: dtype). float16 / bfloat16 also declare the encoder's base
   * weights and W in that dtype (see the file header); the outputs are unchanged in format.
   */
  compute?: ComputeDtype;
}

const COMPUTE_DTYPES: readonly ComputeDtype[] = ['float32', 'float64', 'float16', 'bfloat16'];

/** The forward-only latent-cache graph (see the file header). */
export function buildLatentCacheGraph(config: ModelConfig, opts: LatentCacheOptions): Graph {
  const dtype = opts.dtype ?? 'float32';
  const latent = opts.latent ?? 'soft';
  if (latent !== 'soft' && latent !== 'hidden') throw inputError({ field: 'latent' }, `expected 'soft' or 'hidden', got ${JSON.stringify(latent)}`);
  if (latent === 'soft' && (!Number.isInteger(opts.k) || opts.k < 1)) throw inputError({ field: 'k' }, `must be a positive integer, got ${opts.k}`);
  if (opts.lora !== undefined) checkLoraTask('lora', opts.lora, 'FEATURE_EXTRACTION');
  const compute = opts.compute ?? dtype;
  if (!COMPUTE_DTYPES.includes(compute)) throw inputError({ field: 'compute' }, `expected one of ${COMPUTE_DTYPES.join(', ')}, got ${JSON.stringify(compute)}`);
  // Stored weights: 16 bits at a 16-bit compute (phase 1's frozenDtype), else the parameter dtype.
  const stored: FrozenDtype = compute === 'float16' || compute === 'bfloat16' ? compute : dtype;
  const g = new Graph('latent_cache');
  const enc = encoderConfig(config);
  const declare = (specs: Record<string, { dtype: import('@latent-sft/graph').DType; shape: readonly (number | string)[] }>): Record<string, Tensor> =>
    Object.fromEntries(Object.entries(specs).map(([n, s]) => [n, g.input(n, s.dtype, s.shape)]));
  const params = {
    ...declare(weightSpecs(enc, stored, ENCODER_PREFIX, false)),
    ...(opts.lora !== undefined ? declare(loraSpecs(enc, opts.lora, dtype, ENCODER_PREFIX)) : {}),
  };
  const W = latent === 'soft' ? g.input(`${DECODER_PREFIX}model.embed_tokens.weight`, stored, [config.vocabSize, config.hiddenSize]) : null;
  const inputs = declare(encoderBatchSpecs(dtype));
  const lora = opts.lora !== undefined ? { config: opts.lora, mode: 'eval' as const } : undefined;
  const h = encoderStates(g, config, inputs, lora, (name) => params[ENCODER_PREFIX + name], compute); // [B,m,d] in float32 (float64)
  if (W === null) {
    g.output(h, 'latent_hidden');
    g.prune();
    return g;
  }
  const Wh = g.cast(W, h.dtype); // a no-op unless W is 16-bit: then widened exactly, as phase 1 does
  const { indices, probs } = gSoftEmbeddingTopK(g, gLatentLogits(g, h, Wh), Wh, Math.min(opts.k, config.vocabSize));
  g.output(probs, 'latent_probs');
  g.output(indices, 'latent_indices');
  g.prune();
  return g;
}

/**
 * Runs a session of buildLatentCacheGraph on `examples` and splits the result per example:
 * `weights` holds the graph's weight inputs by name; the encoder batch comes from collateEncoder.
 */
export async function computeLatents(
  session: Pick<Session, 'run'>,
  weights: Readonly<Record<string, HostTensor>>,
  examples: readonly SequenceParts[],
  opts: Pick<Phase1CollateOptions, 'r' | 'compressId' | 'padId' | 'ltim' | 'dtype'>,
): Promise<TeacherLatents[]> {
  const batch = collateEncoder(examples, opts);
  const out = await session.run({ ...weights, ...batch.feeds }, ['latent_probs', 'latent_indices']);
  const probs = out.latent_probs;
  const ids = out.latent_indices;
  if (probs === undefined || ids === undefined) throw new Error('computeLatents: the session returned no latent_probs / latent_indices');
  const [, M, k] = probs.dims as [number, number, number];
  const p = numbers(probs);
  const ix = numbers(ids);
  return batch.m.map((m, b) => ({
    m,
    k,
    probs: Float32Array.from(p.slice(b * M * k, (b * M + m) * k)),
    indices: Int32Array.from(ix.slice(b * M * k, (b * M + m) * k)),
  }));
}

/**
 * The hidden-state variant of computeLatents (a session of buildLatentCacheGraph with latent
 * 'hidden'): per example its m encoder states [m,d] (float32).
 */
export async function computeHiddenLatents(
  session: Pick<Session, 'run'>,
  weights: Readonly<Record<string, HostTensor>>,
  examples: readonly SequenceParts[],
  opts: Pick<Phase1CollateOptions, 'r' | 'compressId' | 'padId' | 'ltim' | 'dtype'>,
): Promise<HiddenTeacherLatents[]> {
  const batch = collateEncoder(examples, opts);
  const out = await session.run({ ...weights, ...batch.feeds }, ['latent_hidden']);
  const h = out.latent_hidden;
  if (h === undefined) throw new Error('computeHiddenLatents: the session returned no latent_hidden');
  const [, M, d] = h.dims as [number, number, number];
  const v = numbers(h);
  return batch.m.map((m, b) => ({ kind: 'hidden', m, d, hidden: Float32Array.from(v.slice(b * M * d, (b * M + m) * d)) }));
}
