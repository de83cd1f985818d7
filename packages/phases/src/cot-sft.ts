// Explicit CoT SFT (spec §1: base → M0) and its No-CoT baseline as an Objective, plus collation.
//   ids    = P <think> CoT </think> ANS        (No-CoT: P <think> </think> ANS)
//   labels = ign on P and <think>; the ids on CoT, </think> and ANS (ANS includes EOS)
//   loss   = mean shifted CE over the supervised tokens of the batch (HF causal-LM loss)
// Plain causal attention with right padding (int64 attention_mask [B,T]), contiguous positions.
// Full fine-tuning when no LoRA is given (every weight trainable), else LoRA on the base (frozen).
// Shapes: B batch, T longest sequence.
import { inputError } from '@latent-sft/core';
import { padBatch } from '@latent-sft/data';
import type { Graph, Tensor, ValueSpec } from '@latent-sft/graph';
import { type ComputeDtype, type LoraConfig, type ModelConfig, causalLmLoss, decoder, embed, paddingBias, viewWeights } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import type { SequenceParts } from './examples.js';
import { modelLora, modelWeights } from './graph-parts.js';
import { i64 } from './host.js';
import type { Objective } from './objective.js';
import { type FrozenDtype, type ParamDtype, checkLoraTask, loraSpecs, need, weightSpecs } from './specs.js';

/** Options of cotSftObjective. */
export interface CotSftOptions {
  /** LoRA (CAUSAL_LM) on the frozen base; omitted: full fine-tuning. */
  lora?: LoraConfig;
  /** Weight and float I/O dtype (default float32). */
  dtype?: ParamDtype;
  /** Compute dtype (default: dtype); bf16/fp16 cast the float32 masters in-graph. */
  compute?: ComputeDtype;
  /** With a LoRA: storage dtype of the frozen base weights (default: dtype); see FrozenDtype. */
  frozenDtype?: FrozenDtype;
}

/** True when the LoRA config applies dropout, i.e. the graph takes an int64 `dropout_seed`. */
export function usesDropout(lora: LoraConfig | undefined): boolean {
  return lora !== undefined && lora.dropout > 0;
}

/** The CoT-SFT / No-CoT objective (the variant is chosen by the collation). */
export function cotSftObjective(config: ModelConfig, opts: CotSftOptions = {}): Objective {
  const dtype = opts.dtype ?? 'float32';
  const lora = opts.lora;
  if (lora !== undefined) checkLoraTask('lora', lora, 'CAUSAL_LM');
  if (lora === undefined && opts.frozenDtype !== undefined && opts.frozenDtype !== dtype)
    throw inputError({ field: 'frozenDtype' }, 'applies to the frozen base of a LoRA run; full fine-tuning trains every weight');
  const trainable = lora === undefined ? weightSpecs(config, dtype, '', true) : loraSpecs(config, lora, dtype, '');
  const frozen = lora === undefined ? {} : weightSpecs(config, opts.frozenDtype ?? dtype, '', true);
  const seq: ValueSpec = { dtype: 'int64', shape: ['batch', 'seq'] };
  const batch: Record<string, ValueSpec> = { input_ids: seq, attention_mask: seq, position_ids: seq, labels: seq };
  if (usesDropout(lora)) batch.dropout_seed = { dtype: 'int64', shape: [] };
  return {
    trainable,
    frozen,
    batch,
    buildLoss(g: Graph, tr: Record<string, Tensor>, inputs: Record<string, Tensor>) {
      const fn = 'cotSftObjective';
      const compute = opts.compute ?? dtype;
      const bind = (name: string): Tensor | undefined => tr[name] ?? inputs[name];
      const weights = viewWeights(g, modelWeights(config, true, bind), compute); // one Cast of W for embed and the tied head
      const l = lora === undefined ? undefined : modelLora(config, lora, bind, usesDropout(lora) ? need(inputs, 'dropout_seed', fn) : undefined);
      const positions = need(inputs, 'position_ids', fn);
      const x = embed(g, config, weights, need(inputs, 'input_ids', fn), { dtype: compute, ...(l !== undefined ? { lora: l } : {}) });
      const { logits } = decoder(g, config, weights, x, {
        bias: paddingBias(g, need(inputs, 'attention_mask', fn), positions),
        positions,
        dtype: compute,
        outputs: ['logits'],
        ...(l !== undefined ? { lora: l } : {}),
      });
      const labels = need(inputs, 'labels', fn);
      if (logits === null) throw new Error(`${fn}: the decoder has no logits`);
      const ce = causalLmLoss(g, logits, labels);
      return { loss: ce, metrics: { ce } };
    },
  };
}

/** Options of collateCotSft. */
export interface CotSftCollateOptions {
  padId: number;
  /** 'no-cot': the baseline without CoT tokens between the markers (default 'cot'). */
  variant?: 'cot' | 'no-cot';
  /** Fed as `dropout_seed` when given (objectives whose LoRA has dropout need it every step). */
  dropoutSeed?: number;
  ignoreIndex?: number;
}

/** A collated batch: feeds by batch-input name and each row's unpadded length. */
export interface CollatedBatch {
  feeds: Record<string, HostTensor>;
  lengths: number[];
}

/** Right-padded CoT-SFT feeds: input_ids, attention_mask (1 on real tokens), position_ids 0..T−1, labels. */
export function collateCotSft(examples: readonly SequenceParts[], opts: CotSftCollateOptions): CollatedBatch {
  if (examples.length === 0) throw inputError({ field: 'examples' }, 'need at least one example');
  const ignore = opts.ignoreIndex ?? -100;
  const variant = opts.variant ?? 'cot';
  if (variant !== 'cot' && variant !== 'no-cot') throw inputError({ field: 'variant' }, `expected 'cot' or 'no-cot', got ${JSON.stringify(variant)}`);
  const ids: number[][] = [];
  const labels: number[][] = [];
  examples.forEach((ex, b) => {
    if (ex.answerIds.length === 0) throw inputError({ field: `examples[${b}].answerIds` }, 'must not be empty');
    const cot = variant === 'cot' ? ex.cotIds : [];
    const head = [...ex.prefixIds, ...ex.thinkIds];
    const tail = [...cot, ...ex.endThinkIds, ...ex.answerIds];
    ids.push([...head, ...tail]);
    labels.push([...new Array<number>(head.length).fill(ignore), ...tail]);
  });
  const pid = padBatch(ids, opts.padId);
  const [B, T] = pid.shape;
  const mask = new Array<number>(B * T).fill(0);
  const pos = new Array<number>(B * T).fill(0);
  pid.lengths.forEach((L, b) => {
    for (let t = 0; t < L; t++) mask[b * T + t] = 1;
    for (let t = 0; t < T; t++) pos[b * T + t] = t;
  });
  const feeds: Record<string, HostTensor> = {
    input_ids: i64([B, T], pid.data),
    attention_mask: i64([B, T], mask),
    position_ids: i64([B, T], pos),
    labels: i64([B, T], padBatch(labels, ignore).data),
  };
  if (opts.dropoutSeed !== undefined) feeds.dropout_seed = i64([], [opts.dropoutSeed]);
  return { feeds, lengths: pid.lengths };
}
