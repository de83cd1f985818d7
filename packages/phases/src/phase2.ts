// Phase 2 (spec §4): the LLM learns to produce the latent tokens itself, teacher-forced with the cached
// encoder distributions.
//   ids    = P <think> Z x m </think> ANS (data.buildLatentSequence), Z = -100 → pad id in input_ids
//   z_t    = Σ_j p_tj W[idx_tj] (soft-topk, HEAD) or p_t · W (soft-full, v1) at the slots, W = the model's
//            input embedding behind g.stopGradient (detached; also frozen: LoRA never targets embed_tokens)
//   logits = decoder + LoRA over inputs_embeds, causal + padding attention (int64 [B,T], ids != pad by
//            value with the -100 slots counted as real), contiguous positions
//   loss   = ceWeight · CE(</think>, ANS, EOS; shifted, mean over tokens)
//          + klWeight · KL(teacher ‖ student) where the student distribution of slot t is the logits at
//            the PREVIOUS position s+t−1 (spec §4.4); gKlTopK (sparse, over the k stored ids) or gKlFull.
//   Weights 1 and 1 (all scripts). Metrics: ce, kl.
// The previous-position rows are gathered at latent_positions − 1 (the same rows gShiftedSlotLogits
// picks for s−1 … s+m−2) so that the padded latent count m stays a run-time dim.
// Gumbel perturbation of the targets (§4.3, HEAD) is a host transform (perturbTeacher): fresh noise per
// epoch from Rng.fromSeed(seed).fork(epoch).fork(exampleIndex), independent of batch order.
// "- Hidden State" ablation (spec §7, latent 'hidden'): the cache holds the encoder's final normed hidden
// state h_t [d] per latent. Those vectors are fed as the input embeddings of the slots (teacher forcing,
// instead of Σ p W[idx]), and the KL term becomes a regression of the student's final normed hidden
// state at the PREVIOUS position s+t−1 onto h_t:
//   mse    = mean over examples of (mean over its valid latents and the d dims of (ĥ_{s+t−1} − h_t)²)
//   loss   = ceWeight · CE + klWeight · mse          metrics: ce, mse
// The paper does not specify the Phase-2 loss of the hidden-state ablation: this MSE is our choice, in
// the spirit of CoLaR / Coconut (the model regresses its own next latent state, which is what inference
// feeds back). The CE, the `</think>` handling and the sequence layout are the soft path's.
// Shapes: B batch, T longest sequence, m latent slots (padded), k stored top-k width, V vocabulary, d hidden size.
import { Rng, inputError } from '@latent-sft/core';
import { buildLatentSequence, padBatch } from '@latent-sft/data';
import type { Graph, Tensor, ValueSpec } from '@latent-sft/graph';
import { gKlFull, gKlTopK, gScatterLatents, gWeightedEmbedding, gumbelPerturb, matrix } from '@latent-sft/latent';
import { type ComputeDtype, type LoraConfig, type ModelConfig, causalLmLoss, decoder, lmHead, paddingBias } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import type { CollatedBatch } from './cot-sft.js';
import type { SequenceParts } from './examples.js';
import { gatherRows, modelLora, modelWeights } from './graph-parts.js';
import { bool, float, i64 } from './host.js';
import type { Objective } from './objective.js';
import { type FrozenDtype, type ParamDtype, checkLoraTask, checkNoEmbedLora, loraSpecs, need, weightSpecs } from './specs.js';

/** What the cache holds per latent: top-k / full-vocabulary distributions or hidden states. */
export type Phase2Latent = 'soft-topk' | 'soft-full' | 'hidden';

const PHASE2_LATENTS: readonly Phase2Latent[] = ['soft-topk', 'soft-full', 'hidden'];

/** Options of phase2Objective. */
export interface Phase2Options {
  /** soft-topk: teacher (probs, ids) [B,m,k]; soft-full: teacher probs [B,m,V]; hidden: teacher states [B,m,d]. */
  latent: Phase2Latent;
  /** The new LoRA (CAUSAL_LM, no embed_tokens). */
  lora: LoraConfig;
  ceWeight?: number;
  klWeight?: number;
  dtype?: ParamDtype;
  /** Compute dtype of the decoder (default: dtype); bf16/fp16 cast the float32 masters in-graph. */
  compute?: ComputeDtype;
  /** Storage dtype of the frozen base weights (default: dtype); see FrozenDtype. */
  frozenDtype?: FrozenDtype;
}

/** The Phase-2 objective (see the file header). Names: base weights and LoRA tensors by HF / PEFT name. */
export function phase2Objective(config: ModelConfig, opts: Phase2Options): Objective {
  const dtype = opts.dtype ?? 'float32';
  const { latent, lora } = opts;
  if (!PHASE2_LATENTS.includes(latent)) throw inputError({ field: 'latent' }, `expected 'soft-topk', 'soft-full' or 'hidden', got ${JSON.stringify(latent)}`);
  if (lora === undefined) throw inputError({ field: 'lora' }, 'phase 2 trains a new LoRA; give its config');
  checkLoraTask('lora', lora, 'CAUSAL_LM');
  checkNoEmbedLora('lora', lora);
  const ceW = opts.ceWeight ?? 1;
  const klW = opts.klWeight ?? 1;
  for (const [f, v] of [
    ['ceWeight', ceW],
    ['klWeight', klW],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw inputError({ field: f }, `must be a finite number >= 0, got ${v}`);
  }
  const seq: ValueSpec = { dtype: 'int64', shape: ['batch', 'seq'] };
  const slots = ['batch', 'latents'] as const;
  const batch: Record<string, ValueSpec> = {
    input_ids: seq,
    attention_mask: seq,
    position_ids: seq,
    labels: seq,
    latent_positions: { dtype: 'int64', shape: slots },
    latent_valid: { dtype: 'bool', shape: slots },
  };
  if (latent === 'hidden') batch.teacher_hidden = { dtype, shape: [...slots, config.hiddenSize] };
  else batch.teacher_probs = { dtype, shape: [...slots, latent === 'soft-topk' ? 'topk' : config.vocabSize] };
  if (latent === 'soft-topk') batch.teacher_indices = { dtype: 'int64', shape: [...slots, 'topk'] };
  if (lora.dropout > 0) batch.dropout_seed = { dtype: 'int64', shape: [] };
  return {
    trainable: loraSpecs(config, lora, dtype, ''),
    frozen: weightSpecs(config, opts.frozenDtype ?? dtype, '', true),
    batch,
    buildLoss(g: Graph, tr: Record<string, Tensor>, inputs: Record<string, Tensor>): { loss: Tensor; metrics: Record<string, Tensor> } {
      if (latent === 'hidden') {
        const { ce, mse } = phase2HiddenTerms(g, config, opts, tr, inputs);
        const c = ce.dtype;
        const loss = g.add(g.mul(ce, g.scalar(ceW, c)), g.mul(g.cast(mse, c), g.scalar(klW, c)));
        return { loss, metrics: { ce, mse } };
      }
      const { ce, kl } = phase2Terms(g, config, opts, tr, inputs);
      const c = ce.dtype;
      const loss = g.add(g.mul(ce, g.scalar(ceW, c)), g.mul(g.cast(kl, c), g.scalar(klW, c)));
      return { loss, metrics: { ce, kl } };
    },
  };
}

/** The decoder over inputs_embeds (ids' rows of W with z scattered in at the slots): logits (and hidden), CE. */
function phase2Forward(
  g: Graph,
  config: ModelConfig,
  opts: Pick<Phase2Options, 'lora' | 'dtype' | 'compute'>,
  tr: Record<string, Tensor>,
  inputs: Record<string, Tensor>,
  W: Tensor,
  z: Tensor,
  withHidden: boolean,
): { logits: Tensor; hidden: Tensor | null; ce: Tensor } {
  const fn = 'phase2Objective';
  const dtype = opts.dtype ?? 'float32';
  const tokens = g.cast(g.gather(W, need(inputs, 'input_ids', fn), 0), dtype); // a 16-bit W's rows widened exactly
  const embeds = gScatterLatents(g, tokens, z, need(inputs, 'latent_positions', fn), need(inputs, 'latent_valid', fn));
  const bind = (name: string): Tensor | undefined => tr[name] ?? inputs[name];
  const positions = need(inputs, 'position_ids', fn);
  const seed = opts.lora.dropout > 0 ? need(inputs, 'dropout_seed', fn) : undefined;
  const { logits, hidden } = decoder(g, config, modelWeights(config, true, bind), embeds, {
    bias: paddingBias(g, need(inputs, 'attention_mask', fn), positions),
    positions,
    dtype: opts.compute ?? dtype,
    outputs: withHidden ? ['logits', 'hidden'] : ['logits'],
    lora: modelLora(config, opts.lora, bind, seed),
  });
  if (logits === null) throw new Error(`${fn}: the decoder has no logits`);
  if (withHidden && hidden === null) throw new Error(`${fn}: the decoder has no hidden states`);
  return { logits, hidden, ce: causalLmLoss(g, logits, need(inputs, 'labels', fn)) };
}

/** The Phase-2 forward: decoder logits [B,T,V], the previous-position student logits [B,m,V], CE and KL. */
export function phase2Terms(
  g: Graph,
  config: ModelConfig,
  opts: Pick<Phase2Options, 'latent' | 'lora' | 'dtype' | 'compute'>,
  tr: Record<string, Tensor>,
  inputs: Record<string, Tensor>,
): { logits: Tensor; student: Tensor; ce: Tensor; kl: Tensor } {
  const fn = 'phase2Objective';
  if (opts.latent === 'hidden') throw new Error(`${fn}: phase2Terms is the soft path; use phase2HiddenTerms for hidden latents`);
  const W = g.stopGradient(need(inputs, 'model.embed_tokens.weight', fn)); // detached, as the reference's .detach()
  const probs = need(inputs, 'teacher_probs', fn);
  const valid = need(inputs, 'latent_valid', fn);
  const lpos = need(inputs, 'latent_positions', fn);
  const idx = opts.latent === 'soft-topk' ? need(inputs, 'teacher_indices', fn) : null;
  const z = idx !== null ? gWeightedEmbedding(g, idx, probs, W) : g.matmul(probs, g.cast(W, probs.dtype));
  const { logits, hidden, ce } = phase2Forward(g, config, opts, tr, inputs, W, z, true);
  // [B,m,V]: position s+t−1 predicts slot t. The head runs again on those m rows of the final hidden states
  // instead of gathering rows of the [B,T,V] logits, so that the logits feed the cross-entropy alone (and
  // fuseLinearCrossEntropy chunks it over the vocabulary) and no [B,T,V] gradient is scattered for the KL.
  const bind = (name: string): Tensor | undefined => tr[name] ?? inputs[name];
  const student = lmHead(g, config, modelWeights(config, true, bind), gatherRows(g, hidden as Tensor, lpos, -1), opts.compute ?? opts.dtype ?? 'float32');
  const kl = (idx !== null ? gKlTopK(g, probs, idx, student, valid) : gKlFull(g, probs, student, valid)).loss;
  return { logits, student, ce, kl };
}

/**
 * mean_b [ Σ_t valid_bt · mean_d (s_btd − h_btd)² / max(Σ_t valid_bt, 1) ]: student s and teacher h
 * [B,m,d] (h cast to s's dtype; float32 for 16-bit s), valid [B,m] bool. Padded slots never enter the
 * value or the gradient (Where); an example without a valid slot contributes 0 and still counts in B,
 * as the KL of the soft path (latent.gKlTopK).
 */
export function gHiddenMse(g: Graph, student: Tensor, teacher: Tensor, valid: Tensor): Tensor {
  const fn = 'gHiddenMse';
  if (student.rank !== 3 || teacher.rank !== 3)
    throw new Error(`${fn}: student and teacher must be [B, m, d], got ${student.shapeText} and ${teacher.shapeText}`);
  if (student.shape[2] !== teacher.shape[2]) throw new Error(`${fn}: hidden sizes differ: student ${student.shapeText}, teacher ${teacher.shapeText}`);
  if (valid.rank !== 2 || valid.dtype !== 'bool') throw new Error(`${fn}: valid must be bool [B, m], got ${valid.dtype}${valid.shapeText}`);
  const c = student.dtype === 'float16' || student.dtype === 'bfloat16' ? 'float32' : student.dtype;
  const s = g.cast(student, c);
  const diff = g.sub(s, g.cast(teacher, c));
  const zero = g.scalar(0, c);
  const perSlot = g.where(valid, g.reduceMean(g.mul(diff, diff), [2], false), zero); // [B,m]
  const count = g.reduceSum(g.cast(valid, c), [1], false);
  const one = g.scalar(1, c);
  const perSample = g.div(g.reduceSum(perSlot, [1], false), g.where(g.op1('Less', [count, one]), one, count));
  return g.reduceMean(perSample, [0], false);
}

/**
 * The hidden-state Phase-2 forward (see the file header): the cached teacher states [B,m,d] fed at
 * the slots; decoder logits [B,T,V] and final normed hidden states [B,T,d]; the student states at the
 * previous positions [B,m,d]; CE and the MSE regression term.
 */
export function phase2HiddenTerms(
  g: Graph,
  config: ModelConfig,
  opts: Pick<Phase2Options, 'lora' | 'dtype' | 'compute'>,
  tr: Record<string, Tensor>,
  inputs: Record<string, Tensor>,
): { logits: Tensor; hidden: Tensor; student: Tensor; ce: Tensor; mse: Tensor } {
  const fn = 'phase2Objective';
  const W = g.stopGradient(need(inputs, 'model.embed_tokens.weight', fn));
  const teacher = need(inputs, 'teacher_hidden', fn); // a batch input: no gradient reaches it
  const valid = need(inputs, 'latent_valid', fn);
  const lpos = need(inputs, 'latent_positions', fn);
  const { logits, hidden, ce } = phase2Forward(g, config, opts, tr, inputs, W, g.cast(teacher, opts.dtype ?? 'float32'), true);
  const student = gatherRows(g, hidden as Tensor, lpos, -1); // [B,m,d]: position s+t−1 regresses onto h_t
  return { logits, hidden: hidden as Tensor, student, ce, mse: gHiddenMse(g, student, teacher, valid) };
}

// ---- teacher targets and collation -----------------------------------------------------------------------

/** The cached latents of one example: probs [m,k] row-major and, for top-k, their vocabulary ids [m,k]. */
export interface TeacherLatents {
  /** Absent or 'soft' (distributions). */
  kind?: 'soft';
  m: number;
  k: number;
  probs: Float32Array | Float64Array;
  /** Vocabulary ids of the probs (top-k teachers); absent for full-vocabulary teachers (k = V). */
  indices?: Int32Array;
}

/** The cached latents of one example for the hidden-state ablation: the encoder's final normed states [m,d] row-major. */
export interface HiddenTeacherLatents {
  kind: 'hidden';
  m: number;
  d: number;
  hidden: Float32Array | Float64Array;
}

/** Either kind of cached latents. */
export type Phase2Teacher = TeacherLatents | HiddenTeacherLatents;

/** A Phase-2 example: the id parts (the CoT is not used) and its teacher latents (soft by default). */
export type Phase2Example<T extends Phase2Teacher = TeacherLatents> = Omit<SequenceParts, 'cotIds'> & { teacher: T };

/** True for hidden-state teachers. */
export function isHiddenTeacher(t: Phase2Teacher): t is HiddenTeacherLatents {
  return t.kind === 'hidden';
}

/** Options of perturbTeacher (spec §4.3). */
export interface GumbelTeacherOptions {
  seed: number;
  epoch: number;
  /** The example's dataset index (its noise stream). */
  index: number;
  /** First id of `</think>`: draws whose argmax is this id for any latent are redrawn (up to 100 tries). */
  latentEndId: number;
  /** noise_scale (default 1). */
  scale?: number;
  /** gumbel_temperature (default 1). */
  temperature?: number;
}

/**
 * The teacher with clamped Gumbel noise on its top-k distribution (latent.gumbelPerturb), drawn from
 * Rng.fromSeed(seed).fork(epoch).fork(index); `guardFailed` reports that every draw hit the end id.
 */
export function perturbTeacher(t: Phase2Teacher, opts: GumbelTeacherOptions): { teacher: TeacherLatents; redraws: number; guardFailed: boolean } {
  if (isHiddenTeacher(t))
    throw inputError({ field: 'teacher' }, 'Gumbel perturbation needs top-k teachers, not hidden states (turn it off for the hidden-state ablation)');
  if (t.indices === undefined) throw inputError({ field: 'teacher.indices' }, 'Gumbel perturbation needs top-k teachers (probs with their ids)');
  for (const f of ['seed', 'epoch', 'index'] as const) {
    if (!Number.isSafeInteger(opts[f]) || opts[f] < 0) throw inputError({ field: f }, `must be a non-negative integer, got ${opts[f]}`);
  }
  const rng = Rng.fromSeed(opts.seed).fork(opts.epoch).fork(opts.index);
  const res = gumbelPerturb(matrix(t.probs, t.m, t.k), matrix(t.indices, t.m, t.k), {
    rng,
    latentEndId: opts.latentEndId,
    scale: opts.scale ?? 1,
    temperature: opts.temperature ?? 1,
  });
  return { teacher: { m: t.m, k: t.k, probs: res.probs.data, indices: t.indices }, redraws: res.redraws, guardFailed: res.guardFailed };
}

/** Options of collatePhase2. */
export interface Phase2CollateOptions {
  padId: number;
  latent: Phase2Latent;
  /** Vocabulary size V: bounds the teacher ids; the width of full-vocabulary teachers. */
  vocabSize: number;
  /** Hidden size d of hidden-state teachers (checked when given; default: the first teacher's). */
  hiddenSize?: number;
  dtype?: ParamDtype;
  dropoutSeed?: number;
  placeholder?: number;
  ignoreIndex?: number;
}

/**
 * A Phase-2 batch: input_ids (slots → pad id), attention_mask (ids != pad, slots real), contiguous
 * position_ids, labels, latent_positions / latent_valid [B,m], teacher_probs [B,m,k|V] and
 * teacher_indices [B,m,k] (soft), or teacher_hidden [B,m,d] (hidden); zeros on padded slots. Also
 * returns each example's latentStart.
 */
export function collatePhase2(
  examples: readonly Phase2Example<Phase2Teacher>[],
  opts: Phase2CollateOptions,
): CollatedBatch & { latentStart: number[]; m: number[] } {
  if (examples.length === 0) throw inputError({ field: 'examples' }, 'need at least one example');
  const dtype = opts.dtype ?? 'float32';
  const placeholder = opts.placeholder ?? -100;
  const ignore = opts.ignoreIndex ?? -100;
  const V = opts.vocabSize;
  const hiddenKind = opts.latent === 'hidden';
  const topk = opts.latent === 'soft-topk';
  const first = (examples[0] as Phase2Example<Phase2Teacher>).teacher;
  const k = hiddenKind ? (opts.hiddenSize ?? (isHiddenTeacher(first) ? first.d : 0)) : topk ? (first as TeacherLatents).k : V;
  examples.forEach(({ teacher: t }, b) => {
    const at = `examples[${b}].teacher`;
    if (!Number.isSafeInteger(t.m) || t.m < 1) throw inputError({ field: `${at}.m` }, `must be an integer >= 1, got ${t.m}`);
    if (hiddenKind !== isHiddenTeacher(t)) {
      throw inputError(
        { field: `${at}.kind` },
        `${isHiddenTeacher(t) ? 'hidden-state' : 'distribution'} latents, but the batch is collated for ${opts.latent}`,
      );
    }
    if (isHiddenTeacher(t)) {
      if (t.d !== k) throw inputError({ field: `${at}.d` }, `hidden size ${t.d}, but the batch uses ${k}`);
      if (t.hidden.length !== t.m * t.d) throw inputError({ field: `${at}.hidden` }, `has ${t.hidden.length} values, expected m*d = ${t.m}*${t.d}`);
      return;
    }
    if (t.k !== k) throw inputError({ field: `${at}.k` }, `${t.k} entries per latent, but the batch uses ${k}${topk ? '' : ' (the vocabulary size)'}`);
    if (t.probs.length !== t.m * t.k) throw inputError({ field: `${at}.probs` }, `has ${t.probs.length} values, expected m*k = ${t.m}*${t.k}`);
    if (topk) {
      if (t.indices === undefined || t.indices.length !== t.m * t.k)
        throw inputError({ field: `${at}.indices` }, `expected m*k = ${t.m}*${t.k} vocabulary ids`);
      const bad = t.indices.findIndex((v) => !(v >= 0 && v < V));
      if (bad >= 0) throw inputError({ field: `${at}.indices[${bad}]` }, `id ${t.indices[bad]} outside the vocabulary [0, ${V})`);
    }
  });
  const seqs = examples.map((ex) => buildLatentSequence({ ...ex, m: ex.teacher.m, placeholder, ignoreIndex: ignore }));
  const ids = padBatch(
    seqs.map((s) => s.inputIds.map((v) => (v === placeholder ? opts.padId : v))),
    opts.padId,
  );
  const [B, T] = ids.shape;
  const mask = new Array<number>(B * T).fill(0);
  const pos = new Array<number>(B * T).fill(0);
  seqs.forEach((s, b) => {
    s.inputIds.forEach((v, t) => {
      mask[b * T + t] = v === opts.padId ? 0 : 1;
    });
    for (let t = 0; t < T; t++) pos[b * T + t] = t;
  });
  const m = examples.map((ex) => ex.teacher.m);
  const M = Math.max(...m);
  const lpos = new Array<number>(B * M).fill(0);
  const valid = new Array<number>(B * M).fill(0);
  const probs = new Float64Array(B * M * k);
  const idx = new Array<number>(B * M * k).fill(0);
  examples.forEach(({ teacher: t }, b) => {
    const values = isHiddenTeacher(t) ? t.hidden : t.probs;
    const vocabIds = isHiddenTeacher(t) ? undefined : t.indices;
    for (let i = 0; i < t.m; i++) {
      lpos[b * M + i] = (seqs[b] as { latentStart: number }).latentStart + i;
      valid[b * M + i] = 1;
      for (let j = 0; j < k; j++) {
        probs[(b * M + i) * k + j] = values[i * k + j] as number;
        if (vocabIds !== undefined) idx[(b * M + i) * k + j] = vocabIds[i * k + j] as number;
      }
    }
  });
  const feeds: Record<string, HostTensor> = {
    input_ids: i64([B, T], ids.data),
    attention_mask: i64([B, T], mask),
    position_ids: i64([B, T], pos),
    labels: i64(
      [B, T],
      padBatch(
        seqs.map((s) => s.labels),
        ignore,
      ).data,
    ),
    latent_positions: i64([B, M], lpos),
    latent_valid: bool([B, M], valid),
    [hiddenKind ? 'teacher_hidden' : 'teacher_probs']: float(dtype, [B, M, k], probs),
  };
  if (topk) feeds.teacher_indices = i64([B, M, k], idx);
  if (opts.dropoutSeed !== undefined) feeds.dropout_seed = i64([], [opts.dropoutSeed]);
  return { feeds, lengths: ids.lengths, latentStart: seqs.map((s) => s.latentStart), m };
}
