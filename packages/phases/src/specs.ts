// Input specs shared by the objectives: base-weight and LoRA specs of a model under a name prefix,
// the LoRA option checks, and the spec defaults (LoRA r 64, alpha 128, dropout 0.1; spec §3.6, §4.5).
// Internal to @latent-sft/phases except the defaults.
import { inputError } from '@latent-sft/core';
import type { ValueSpec } from '@latent-sft/graph';
import { type LoraConfig, type LoraTarget, type ModelConfig, loraParameterShapes, parameterShapes } from '@latent-sft/models';

/** Parameter dtype of the objectives' weight inputs (the trainer may cast trainables to bf16/fp16). */
export type ParamDtype = 'float32' | 'float64';

/**
 * Storage dtype of the frozen base weights: the parameter dtype, or 16 bits (a bf16 checkpoint kept as
 * it is: half the device memory, and no per-step Cast when it equals the compute dtype).
 */
export type FrozenDtype = ParamDtype | 'float16' | 'bfloat16';

const LINEAR: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Spec LoRA settings: r 64, alpha 128 (= 2r), dropout 0.1, attention + MLP projections. */
export function defaultLora(taskType: LoraConfig['taskType'], opts: { r?: number; alpha?: number; dropout?: number; embedTokens?: boolean } = {}): LoraConfig {
  const r = opts.r ?? 64;
  return {
    r,
    alpha: opts.alpha ?? 2 * r,
    dropout: opts.dropout ?? 0.1,
    bias: 'none',
    taskType,
    targetModules: opts.embedTokens === true ? [...LINEAR, 'embed_tokens'] : [...LINEAR],
  };
}

/** Phase-1 LoRAs per spec §3.6: encoder FEATURE_EXTRACTION incl. embed_tokens, decoder CAUSAL_LM. */
export function phase1LoraDefaults(opts: { r?: number; alpha?: number; dropout?: number } = {}): { encoder: LoraConfig; decoder: LoraConfig } {
  return { encoder: defaultLora('FEATURE_EXTRACTION', { ...opts, embedTokens: true }), decoder: defaultLora('CAUSAL_LM', opts) };
}

/** Base-weight specs of `config` as `${prefix}${hfName}`; lm_head only when the logits are computed. */
export function weightSpecs(config: ModelConfig, dtype: FrozenDtype, prefix: string, withHead: boolean): Record<string, ValueSpec> {
  const out: Record<string, ValueSpec> = {};
  for (const p of parameterShapes(config)) {
    if (p.name === 'lm_head.weight' && !withHead) continue;
    out[`${prefix}${p.name}`] = { dtype, shape: p.shape };
  }
  return out;
}

/** LoRA tensor specs as `${prefix}${peftName}`. */
export function loraSpecs(config: ModelConfig, lora: LoraConfig, dtype: ParamDtype, prefix: string): Record<string, ValueSpec> {
  const out: Record<string, ValueSpec> = {};
  for (const s of loraParameterShapes(config, lora)) out[`${prefix}${s.name}`] = { dtype, shape: s.shape };
  return out;
}

/** Throws a one-line error unless `lora` has the task type its model needs. */
export function checkLoraTask(field: string, lora: LoraConfig, taskType: LoraConfig['taskType']): void {
  if (lora.taskType !== taskType) throw inputError({ field }, `LoRA task type must be ${taskType} (PEFT names depend on it), got ${lora.taskType}`);
}

/** Throws a one-line error when a LoRA targets embed_tokens where the model reads inputs_embeds. */
export function checkNoEmbedLora(field: string, lora: LoraConfig): void {
  if (lora.targetModules.includes('embed_tokens')) {
    throw inputError({ field }, 'embed_tokens may not be a LoRA target here: the latent slots use the detached input embedding W');
  }
}

/** The tensor `name` of a record; throws naming the record when it is missing. */
export function need(rec: Record<string, import('@latent-sft/graph').Tensor>, name: string, what: string): import('@latent-sft/graph').Tensor {
  const t = rec[name];
  if (t === undefined) throw new Error(`${what}: missing input '${name}'`);
  return t;
}
