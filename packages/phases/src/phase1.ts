// Phase 1 (spec §3): the Latent Token Encoder E and the decoder D in one loss graph, for the three
// optimisation steps, with the LTIM / LTSuM ablations and the latent kinds of @latent-sft/latent.
//   E  = D's architecture with vocabulary V+1 (<|compress_token|> = row V), run over
//        P <think> S_1 L S_2 L ... S_m L </think> with the LTIM additive mask (ltim=false: causal+padding),
//        contiguous positions; h_i = final normed hidden state at the i-th compress position.
//   z_i = gLatentEmbedding(h_i, W, kind), W = D's input embedding [V,d] (its 128256 rows, not E's extra
//        one) behind g.stopGradient: detached even if a caller trained it (it is frozen in every step here).
//   D  reads inputs_embeds = W[ids] with z scattered in at the -100 slots (gScatterLatents), the LTSuM
//        additive mask (ltsum=false: causal+padding) and dual-track positions (v2; 'contiguous' = v1)
//        → logits → mean shifted CE over labels (spacers S_2..S_m, </think>, answer, EOS).
// Trainable per step (spec §3.6): 'encoder' E's LoRA (FEATURE_EXTRACTION, normally incl. embed_tokens);
// 'decoder' D's LoRA (CAUSAL_LM); 'union' new LoRAs on both. Every base weight is frozen; the 'decoder'
// step takes E's merged Step-1 weights and no E LoRA.
// Names: base weights `encoder.<hf name>` / `decoder.<hf name>`, LoRA `encoder.<peft name>` /
// `decoder.<peft name>`. Batch inputs: see PHASE1_BATCH below. With LoRA dropout the decoder's seed is
// dropout_seed + 7919, so encoder and decoder modules of equal shape get different masks.
// Shapes: B batch, Te encoder length, T decoder length, m latent slots (padded to the batch's largest).
import { inputError } from '@latent-sft/core';
import { buildDecoderSequence, buildEncoderSequence, buildLatentSequence, padBatch } from '@latent-sft/data';
import type { Graph, Tensor, ValueSpec } from '@latent-sft/graph';
import { type LatentKind, gLatentEmbedding, gScatterLatents } from '@latent-sft/latent';
import { FP32_MIN, batchMasks, batchPositions, contiguousPositions, dualTrackPositions, inductionMask, supervisionMask, toAdditive } from '@latent-sft/masks';
import { type ComputeDtype, type LoraConfig, type ModelConfig, causalLmLoss, decoder, embed, viewWeights } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import type { CollatedBatch } from './cot-sft.js';
import type { SequenceParts } from './examples.js';
import { gatherRows, modelLora, modelWeights, sequenceExactMatch } from './graph-parts.js';
import { bool, float, i64 } from './host.js';
import type { Objective } from './objective.js';
import { type FrozenDtype, type ParamDtype, checkLoraTask, checkNoEmbedLora, loraSpecs, need, weightSpecs } from './specs.js';

/** The three Phase-1 optimisation steps. */
export type Phase1Step = 'encoder' | 'decoder' | 'union';

/** Options of phase1Objective. */
export interface Phase1Options {
  step: Phase1Step;
  /** soft-full (v1), soft-topk (v2, k = 10 in the scripts) or hidden (ablation). */
  latent: LatentKind;
  /** Encoder mask: LTIM (true) or plain causal+padding (false); only the collation differs. */
  ltim: boolean;
  /** Decoder mask: LTSuM (true) or plain causal+padding (false); only the collation differs. */
  ltsum: boolean;
  /** LoRA of E (needed by 'encoder' and 'union') and of D (needed by 'decoder' and 'union'). */
  lora: { encoder?: LoraConfig; decoder?: LoraConfig };
  dtype?: ParamDtype;
  /** Storage dtype of the frozen encoder and decoder base weights (default: dtype); see FrozenDtype. */
  frozenDtype?: FrozenDtype;
  /** Compute dtype of both decoders (default: dtype); bf16/fp16 cast the float32 masters in-graph. */
  compute?: ComputeDtype;
  /**
   * Forward-only evaluation (train's Evaluator, e.g. on collatePhase1GoldCot batches): the LoRAs without
   * dropout (no `dropout_seed` input) and the extra metric `exact` (sequenceExactMatch of the labels).
   */
  evaluation?: boolean;
}

/** Prefixes of the two models' inputs. */
export const ENCODER_PREFIX = 'encoder.';
export const DECODER_PREFIX = 'decoder.';

/** E's config: D's with one more vocabulary row (<|compress_token|> = id config.vocabSize). */
export function encoderConfig(config: ModelConfig): ModelConfig {
  return { ...config, vocabSize: config.vocabSize + 1 };
}

/** Batch inputs of the encoder half (shared with the latent cache). */
export function encoderBatchSpecs(dtype: ParamDtype): Record<string, ValueSpec> {
  return {
    encoder_input_ids: { dtype: 'int64', shape: ['batch', 'enc_seq'] },
    encoder_attention_mask: { dtype, shape: ['batch', 1, 'enc_seq', 'enc_seq'] },
    encoder_position_ids: { dtype: 'int64', shape: ['batch', 'enc_seq'] },
    compress_positions: { dtype: 'int64', shape: ['batch', 'latents'] },
    latent_valid: { dtype: 'bool', shape: ['batch', 'latents'] },
  };
}

function checkKind(config: ModelConfig, kind: LatentKind): void {
  if (kind.kind === 'soft-topk' && (!Number.isInteger(kind.k) || kind.k < 1 || kind.k > config.vocabSize)) {
    throw inputError({ field: 'latent.k' }, `top-k width must be an integer in [1, ${config.vocabSize}], got ${kind.k}`);
  }
  if (!['soft-full', 'soft-topk', 'hidden'].includes(kind.kind)) throw inputError({ field: 'latent' }, `unknown latent kind ${JSON.stringify(kind)}`);
}

/**
 * Runs E (models.decoder, compute dtype `compute`) on the encoder batch inputs and returns h at the compress
 * positions [B,m,d]. `bindParam` resolves E's parameter and LoRA names (without the prefix).
 */
export function encoderStates(
  g: Graph,
  config: ModelConfig,
  inputs: Record<string, Tensor>,
  lora: { config: LoraConfig; mode: 'train' | 'eval' } | undefined,
  bindParam: (name: string) => Tensor | undefined,
  compute: ComputeDtype,
): Tensor {
  const fn = 'phase1 encoder';
  const enc = encoderConfig(config);
  const weights = viewWeights(g, modelWeights(enc, false, bindParam), compute);
  const seed = lora !== undefined && lora.mode === 'train' && lora.config.dropout > 0 ? need(inputs, 'dropout_seed', fn) : undefined;
  const l = lora === undefined ? undefined : modelLora(enc, lora.config, bindParam, seed);
  const positions = need(inputs, 'encoder_position_ids', fn);
  const x = embed(g, enc, weights, need(inputs, 'encoder_input_ids', fn), { dtype: compute, ...(l !== undefined ? { lora: l } : {}) });
  const { hidden } = decoder(g, enc, weights, x, {
    bias: need(inputs, 'encoder_attention_mask', fn),
    positions,
    dtype: compute,
    outputs: ['hidden'],
    ...(l !== undefined ? { lora: l } : {}),
  });
  if (hidden === null) throw new Error(`${fn}: no hidden states`);
  return gatherRows(g, hidden, need(inputs, 'compress_positions', fn));
}

/** The Phase-1 objective of one step (see the file header). */
export function phase1Objective(config: ModelConfig, opts: Phase1Options): Objective {
  const dtype = opts.dtype ?? 'float32';
  const { step, latent } = opts;
  if (!['encoder', 'decoder', 'union'].includes(step)) throw inputError({ field: 'step' }, `expected encoder, decoder or union, got ${JSON.stringify(step)}`);
  checkKind(config, latent);
  const encLora = step === 'decoder' ? undefined : opts.lora.encoder;
  const decLora = step === 'encoder' ? undefined : opts.lora.decoder;
  if (step !== 'decoder' && encLora === undefined) throw inputError({ field: 'lora.encoder' }, `step '${step}' trains a LoRA on the encoder; give its config`);
  if (step !== 'encoder' && decLora === undefined) throw inputError({ field: 'lora.decoder' }, `step '${step}' trains a LoRA on the decoder; give its config`);
  if (encLora !== undefined) checkLoraTask('lora.encoder', encLora, 'FEATURE_EXTRACTION');
  if (decLora !== undefined) {
    checkLoraTask('lora.decoder', decLora, 'CAUSAL_LM');
    checkNoEmbedLora('lora.decoder', decLora);
  }
  const enc = encoderConfig(config);
  const fd = opts.frozenDtype ?? dtype;
  const frozen = { ...weightSpecs(enc, fd, ENCODER_PREFIX, false), ...weightSpecs(config, fd, DECODER_PREFIX, true) };
  const trainable = {
    ...(encLora !== undefined ? loraSpecs(enc, encLora, dtype, ENCODER_PREFIX) : {}),
    ...(decLora !== undefined ? loraSpecs(config, decLora, dtype, DECODER_PREFIX) : {}),
  };
  const seq: ValueSpec = { dtype: 'int64', shape: ['batch', 'seq'] };
  const batch: Record<string, ValueSpec> = {
    ...encoderBatchSpecs(dtype),
    input_ids: seq,
    attention_mask: { dtype, shape: ['batch', 1, 'seq', 'seq'] },
    position_ids: seq,
    latent_positions: { dtype: 'int64', shape: ['batch', 'latents'] },
    labels: seq,
  };
  const evaluation = opts.evaluation === true;
  const dropout = !evaluation && ((encLora?.dropout ?? 0) > 0 || (decLora?.dropout ?? 0) > 0);
  if (dropout) batch.dropout_seed = { dtype: 'int64', shape: [] };

  return {
    trainable,
    frozen,
    batch,
    buildLoss(g: Graph, tr: Record<string, Tensor>, inputs: Record<string, Tensor>) {
      const fn = 'phase1Objective';
      const param =
        (prefix: string) =>
        (name: string): Tensor | undefined =>
          tr[prefix + name] ?? inputs[prefix + name];
      const h = encoderStates(
        g,
        config,
        inputs,
        encLora !== undefined ? { config: encLora, mode: evaluation ? 'eval' : 'train' } : undefined,
        param(ENCODER_PREFIX),
        opts.compute ?? dtype,
      );
      // W: D's input embedding, detached (also when a caller trains it elsewhere in the graph).
      const Wc = g.stopGradient(g.cast(need(inputs, `${DECODER_PREFIX}model.embed_tokens.weight`, fn), h.dtype));
      const z = gLatentEmbedding(g, h, Wc, latent).emb;
      const ids = need(inputs, 'input_ids', fn);
      const tokens = g.gather(Wc, ids, 0);
      const embeds = gScatterLatents(g, tokens, z, need(inputs, 'latent_positions', fn), need(inputs, 'latent_valid', fn));
      const decSeed = dropout ? g.add(need(inputs, 'dropout_seed', fn), g.scalar(7919, 'int64')) : undefined;
      const bindDec = param(DECODER_PREFIX);
      const { logits } = decoder(g, config, modelWeights(config, true, bindDec), embeds, {
        bias: need(inputs, 'attention_mask', fn),
        positions: need(inputs, 'position_ids', fn),
        dtype: opts.compute ?? dtype,
        outputs: ['logits'],
        ...(decLora !== undefined ? { lora: modelLora(config, decLora, bindDec, decSeed) } : {}),
      });
      if (logits === null) throw new Error(`${fn}: the decoder has no logits`);
      const labels = need(inputs, 'labels', fn);
      const ce = causalLmLoss(g, logits, labels);
      const metrics: Record<string, Tensor> = { ce };
      if (evaluation) metrics.exact = sequenceExactMatch(g, logits, labels);
      return { loss: ce, metrics };
    },
  };
}

// ---- collation ------------------------------------------------------------------------------------------

/** Options of the Phase-1 collation. */
export interface Phase1CollateOptions {
  /** Compression rate r (CoT tokens per latent). */
  r: number;
  /** <|compress_token|> id (= the decoder's vocabulary size). */
  compressId: number;
  padId: number;
  ltim: boolean;
  ltsum: boolean;
  /** Decoder positions: 'dual-track' (v2, default) or 'contiguous' (v1). */
  positions?: 'dual-track' | 'contiguous';
  /** Float dtype of the additive masks (default float32). */
  dtype?: ParamDtype;
  /** Fed as `dropout_seed` when given. */
  dropoutSeed?: number;
  placeholder?: number;
  ignoreIndex?: number;
}

/** Plain causal attention that blocks pad-valued positions as query and key (the reference's 2-D mask). */
function causalByValue(ids: readonly number[], padId: number): Uint8Array {
  const T = ids.length;
  const out = new Uint8Array(T * T);
  for (let q = 0; q < T; q++) {
    if (ids[q] === padId) continue;
    for (let k = 0; k <= q; k++) if (ids[k] !== padId) out[q * T + k] = 1;
  }
  return out;
}

function checkSpecialIds(opts: { compressId: number; padId: number }): void {
  for (const f of ['compressId', 'padId'] as const) {
    if (!Number.isSafeInteger(opts[f]) || opts[f] < 0) throw inputError({ field: f }, `must be a non-negative integer id, got ${opts[f]}`);
  }
}

/** The encoder half of a Phase-1 batch (also the latent-cache input): feeds and each example's m. */
export function collateEncoder(
  examples: readonly SequenceParts[],
  opts: Pick<Phase1CollateOptions, 'r' | 'compressId' | 'padId' | 'ltim' | 'dtype'>,
): CollatedBatch & { m: number[] } {
  if (examples.length === 0) throw inputError({ field: 'examples' }, 'need at least one example');
  checkSpecialIds(opts);
  const dtype = opts.dtype ?? 'float32';
  const seqs = examples.map((ex) => buildEncoderSequence({ ...ex, r: opts.r, compressId: opts.compressId }));
  const ids = padBatch(
    seqs.map((s) => s.ids),
    opts.padId,
  );
  const [B, Te] = ids.shape;
  const keep = opts.ltim
    ? batchMasks(
        seqs.map((s) => inductionMask(s.ids, { compressId: opts.compressId, padId: opts.padId })),
        ids.lengths,
        Te,
      )
    : batchMasks(
        seqs.map((s) => causalByValue(s.ids, opts.padId)),
        ids.lengths,
        Te,
      );
  const m = seqs.map((s) => s.m);
  const M = Math.max(...m);
  const cpos = new Array<number>(B * M).fill(0);
  const valid = new Array<number>(B * M).fill(0);
  seqs.forEach((s, b) =>
    s.compressPositions.forEach((p, i) => {
      cpos[b * M + i] = p;
      valid[b * M + i] = 1;
    }),
  );
  const feeds: Record<string, HostTensor> = {
    encoder_input_ids: i64([B, Te], ids.data),
    encoder_attention_mask: float(dtype, [B, 1, Te, Te], toAdditive(keep, Te, FP32_MIN)),
    encoder_position_ids: i64(
      [B, Te],
      batchPositions(
        ids.lengths.map(() => contiguousPositions(Te)),
        Te,
      ),
    ), // HF default arange, pads included
    compress_positions: i64([B, M], cpos),
    latent_valid: bool([B, M], valid),
  };
  return { feeds, lengths: ids.lengths, m };
}

/**
 * A Phase-1 batch: the encoder half (collateEncoder) and the decoder half — input_ids (placeholders
 * replaced by the pad id; their embeddings are overwritten), the LTSuM (or causal) additive mask
 * [B,1,T,T] built from the placeholder-holding ids, dual-track (or contiguous) positions, the slot
 * positions [B,m] and the labels. Throws when an example's compress and placeholder counts differ.
 */
export function collatePhase1(examples: readonly SequenceParts[], opts: Phase1CollateOptions): CollatedBatch & { m: number[]; encoderLengths: number[] } {
  const dtype = opts.dtype ?? 'float32';
  const placeholder = opts.placeholder ?? -100;
  const ignore = opts.ignoreIndex ?? -100;
  const positions = opts.positions ?? 'dual-track';
  if (positions !== 'dual-track' && positions !== 'contiguous')
    throw inputError({ field: 'positions' }, `expected 'dual-track' or 'contiguous', got ${JSON.stringify(positions)}`);
  const encoder = collateEncoder(examples, opts);
  const seqs = examples.map((ex) => buildDecoderSequence({ ...ex, r: opts.r, placeholder, ignoreIndex: ignore }));
  seqs.forEach((s, b) => {
    if (s.m !== encoder.m[b]) throw inputError({ field: `examples[${b}]` }, `${encoder.m[b]} compress tokens but ${s.m} placeholders`);
  });
  const ids = padBatch(
    seqs.map((s) => s.inputIds.map((v) => (v === placeholder ? opts.padId : v))),
    opts.padId,
  );
  const [B, T] = ids.shape;
  const keep = opts.ltsum
    ? batchMasks(
        seqs.map((s, b) => supervisionMask(s.inputIds, { placeholder, endThinkIds: [...(examples[b] as SequenceParts).endThinkIds], padId: opts.padId })),
        ids.lengths,
        T,
      )
    : batchMasks(
        seqs.map((s) => causalByValue(s.inputIds, opts.padId)),
        ids.lengths,
        T,
      );
  const pos = batchPositions(
    seqs.map((s) => (positions === 'dual-track' ? dualTrackPositions(s.inputIds, { placeholder }) : contiguousPositions(s.inputIds.length))),
    T,
  );
  const M = Math.max(...encoder.m);
  const lpos = new Array<number>(B * M).fill(0);
  seqs.forEach((s, b) =>
    s.latentPositions.forEach((p, i) => {
      lpos[b * M + i] = p;
    }),
  );
  const feeds: Record<string, HostTensor> = {
    ...encoder.feeds,
    input_ids: i64([B, T], ids.data),
    attention_mask: float(dtype, [B, 1, T, T], toAdditive(keep, T, FP32_MIN)),
    position_ids: i64([B, T], pos),
    latent_positions: i64([B, M], lpos),
    labels: i64(
      [B, T],
      padBatch(
        seqs.map((s) => s.labels),
        ignore,
      ).data,
    ),
  };
  if (opts.dropoutSeed !== undefined) feeds.dropout_seed = i64([], [opts.dropoutSeed]);
  return { feeds, lengths: ids.lengths, m: encoder.m, encoderLengths: encoder.lengths };
}

/**
 * A gold-CoT evaluation batch of Phase 1 (the official stage-1 evaluation): E encodes the gold CoT as in
 * training (collateEncoder), and D reads P <think> Z x m </think> ANS with no spacers (buildLatentSequence,
 * m = the example's compress count), causal + padding attention and contiguous positions (HF defaults, as
 * the official eval's generate call), supervised on `</think>` and the answer. With phase1Objective's
 * `evaluation`, metric `exact` is then the greedy answer accuracy given the gold latents and `ce` the
 * answer CE.
 */
export function collatePhase1GoldCot(
  examples: readonly SequenceParts[],
  opts: Pick<Phase1CollateOptions, 'r' | 'compressId' | 'padId' | 'ltim' | 'dtype' | 'placeholder' | 'ignoreIndex'>,
): CollatedBatch & { m: number[] } {
  const dtype = opts.dtype ?? 'float32';
  const placeholder = opts.placeholder ?? -100;
  const ignore = opts.ignoreIndex ?? -100;
  const encoder = collateEncoder(examples, opts);
  const seqs = examples.map((ex, b) => buildLatentSequence({ ...ex, m: encoder.m[b] as number, placeholder, ignoreIndex: ignore }));
  const ids = padBatch(
    seqs.map((s) => s.inputIds.map((v) => (v === placeholder ? opts.padId : v))),
    opts.padId,
  );
  const [B, T] = ids.shape;
  const keep = batchMasks(
    seqs.map((s) => causalByValue(s.inputIds, opts.padId)),
    ids.lengths,
    T,
  );
  const M = Math.max(...encoder.m);
  const labels = seqs.map((s) => s.labels);
  const lpos = new Array<number>(B * M).fill(0);
  seqs.forEach((s, b) => {
    for (let i = 0; i < s.latentEnd - s.latentStart; i++) lpos[b * M + i] = s.latentStart + i;
  });
  const feeds: Record<string, HostTensor> = {
    ...encoder.feeds,
    input_ids: i64([B, T], ids.data),
    attention_mask: float(dtype, [B, 1, T, T], toAdditive(keep, T, FP32_MIN)),
    position_ids: i64(
      [B, T],
      batchPositions(
        seqs.map((s) => contiguousPositions(s.inputIds.length)),
        T,
      ),
    ),
    latent_positions: i64([B, M], lpos),
    labels: i64([B, T], padBatch(labels, ignore).data),
  };
  return { feeds, lengths: ids.lengths, m: encoder.m };
}
