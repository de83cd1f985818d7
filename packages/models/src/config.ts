// HF config.json for Llama ("llama") and Qwen2 ("qwen2") decoders: parsing with one-line errors,
// the two reference models of the spec (§8), tiny test configs, writing, and the llama3 RoPE rule.
import { inputError, writeJsonAtomic } from '@latent-sft/core';

/** HF `rope_scaling` of rope_type 'llama3' (the only scaling supported here). */
export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Storage dtype named by config.json (`torch_dtype`, or `dtype` in transformers >= 4.56). */
export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

/** A validated decoder config (camelCase of the HF fields). */
export interface ModelConfig {
  modelType: 'llama' | 'qwen2';
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v (Qwen2: always; Llama: `attention_bias`, which also gives o_proj a bias). */
  attentionBias: boolean;
  /** Llama `mlp_bias` (bias on gate/up/down); false for Qwen2. */
  mlpBias: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** As written in config.json: one id or a list. */
  eosTokenId: number | number[];
  padTokenId: number | null;
  torchDtype: TorchDtype;
  initializerRange: number;
  hiddenAct: 'silu';
  /** Other config.json fields, kept so that writing gives them back (e.g. use_sliding_window). */
  extra: Record<string, unknown>;
  qkNorm?: boolean;
}

const KNOWN = new Set([
  'model_type', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
  'head_dim', 'vocab_size', 'rms_norm_eps', 'rope_theta', 'rope_scaling', 'tie_word_embeddings', 'attention_bias',
  'mlp_bias', 'max_position_embeddings', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'torch_dtype', 'dtype',
  'initializer_range', 'hidden_act', 'architectures',
]);

/** Parses and validates an HF config.json object; `file` names the source in errors. */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw inputError({ file }, 'not a JSON object');
  const o = json as Record<string, unknown>;
  const err = (field: string, msg: string) => inputError({ file, field }, msg);
  const posInt = (field: string, fallback?: number): number => {
    const v = o[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw err(field, `expected a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const posNum = (field: string, fallback?: number): number => {
    const v = o[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw err(field, `expected a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = o[field] ?? fallback;
    if (typeof v !== 'boolean') throw err(field, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const optId = (field: string): number | null => {
    const v = o[field] ?? null;
    if (v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) throw err(field, `expected a token id or null, got ${JSON.stringify(v)}`);
    return v;
  };

  const modelType = o['model_type'];
  if (modelType !== 'llama' && modelType !== 'qwen2') throw err('model_type', `expected "llama" or "qwen2", got ${JSON.stringify(modelType)}`);
  const hiddenSize = posInt('hidden_size');
  const numAttentionHeads = posInt('num_attention_heads');
  const numKeyValueHeads = posInt('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw err('num_key_value_heads', `${numKeyValueHeads} does not divide num_attention_heads ${numAttentionHeads}`);
  }
  if (o['head_dim'] === undefined && hiddenSize % numAttentionHeads !== 0) {
    throw err('num_attention_heads', `${numAttentionHeads} does not divide hidden_size ${hiddenSize} (and no head_dim)`);
  }
  const headDim = posInt('head_dim', hiddenSize / numAttentionHeads);
  if (headDim % 2 !== 0) throw err('head_dim', `must be even for RoPE, got ${headDim}`);
  const vocabSize = posInt('vocab_size');

  const eos = o['eos_token_id'];
  const isId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!(isId(eos) || (Array.isArray(eos) && eos.length > 0 && eos.every(isId)))) {
    throw err('eos_token_id', `expected a token id or a non-empty list of ids, got ${JSON.stringify(eos)}`);
  }
  const dtypeRaw = o['torch_dtype'] ?? o['dtype'] ?? 'float32';
  if (dtypeRaw !== 'float32' && dtypeRaw !== 'bfloat16' && dtypeRaw !== 'float16') {
    throw err(o['torch_dtype'] !== undefined ? 'torch_dtype' : 'dtype', `expected float32, bfloat16 or float16, got ${JSON.stringify(dtypeRaw)}`);
  }
  const act = o['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw err('hidden_act', `only "silu" is supported, got ${JSON.stringify(act)}`);

  let ropeScaling: Llama3RopeScaling | null = null;
  const rs = o['rope_scaling'];
  if (rs !== null && rs !== undefined) {
    if (typeof rs !== 'object' || Array.isArray(rs)) throw err('rope_scaling', 'expected an object or null');
    const r = rs as Record<string, unknown>;
    const type = r['rope_type'] ?? r['type'];
    if (type !== 'llama3') throw err('rope_scaling.rope_type', `only "llama3" is supported, got ${JSON.stringify(type)}`);
    const num = (k: string): number => {
      const v = r[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw err(`rope_scaling.${k}`, `expected a positive number, got ${JSON.stringify(v)}`);
      return v;
    };
    ropeScaling = {
      ropeType: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'), originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
    };
    if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor) {
      throw err('rope_scaling.high_freq_factor', `must exceed low_freq_factor ${ropeScaling.lowFreqFactor}`);
    }
  }
  const padTokenId = optId('pad_token_id');
  if (padTokenId !== null && padTokenId >= vocabSize) throw err('pad_token_id', `${padTokenId} is not below vocab_size ${vocabSize}`);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!KNOWN.has(k)) extra[k] = v;

  return {
    modelType, hiddenSize, intermediateSize: posInt('intermediate_size'), numHiddenLayers: posInt('num_hidden_layers'),
    numAttentionHeads, numKeyValueHeads, headDim, vocabSize,
    rmsNormEps: posNum('rms_norm_eps', 1e-6), ropeTheta: posNum('rope_theta', 10000), ropeScaling,
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias: modelType === 'qwen2' ? true : bool('attention_bias', false),
    mlpBias: modelType === 'qwen2' ? false : bool('mlp_bias', false),
    maxPositionEmbeddings: posInt('max_position_embeddings', 2048),
    bosTokenId: optId('bos_token_id'), eosTokenId: eos as number | number[], padTokenId,
    torchDtype: dtypeRaw, initializerRange: posNum('initializer_range', 0.02), hiddenAct: 'silu', extra,
  };
}

/** The config.json object HF `from_pretrained` reads (snake_case; extra fields written back). */
export function modelConfigToJson(c: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [c.modelType === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'],
    model_type: c.modelType,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    hidden_act: c.hiddenAct,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling === null ? null : {
      rope_type: 'llama3', factor: c.ropeScaling.factor, low_freq_factor: c.ropeScaling.lowFreqFactor,
      high_freq_factor: c.ropeScaling.highFreqFactor,
      original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
    },
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    initializer_range: c.initializerRange,
    torch_dtype: c.torchDtype,
  };
  if (c.padTokenId !== null) json['pad_token_id'] = c.padTokenId;
  if (c.modelType === 'llama') {
    json['attention_bias'] = c.attentionBias;
    json['mlp_bias'] = c.mlpBias;
  }
  return { ...json, ...c.extra };
}

/** Writes config.json atomically. */
export function writeModelConfig(path: string, c: ModelConfig): void {
  writeJsonAtomic(path, modelConfigToJson(c));
}

/** meta-llama/Llama-3.2-1B-Instruct (spec §8). */
export function llama32_1b(): ModelConfig {
  return parseModelConfig({
    model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32,
    num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072, rms_norm_eps: 1e-5,
    rope_theta: 500000.0, rope_scaling: {
      rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192,
    },
    tie_word_embeddings: true, attention_bias: false, mlp_bias: false, bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009], torch_dtype: 'bfloat16', initializer_range: 0.02, hidden_act: 'silu',
    attention_dropout: 0.0, pretraining_tp: 1, use_cache: true,
  }, 'llama32_1b');
}

/** deepseek-ai/DeepSeek-R1-Distill-Qwen-7B (spec §8; Qwen2 architecture). */
export function deepseekR1DistillQwen7b(): ModelConfig {
  return parseModelConfig({
    model_type: 'qwen2', hidden_size: 3584, intermediate_size: 18944, num_hidden_layers: 28, num_attention_heads: 28,
    num_key_value_heads: 4, vocab_size: 152064, max_position_embeddings: 131072, rms_norm_eps: 1e-6, rope_theta: 10000,
    rope_scaling: null, tie_word_embeddings: false, bos_token_id: 151646, eos_token_id: 151643, torch_dtype: 'bfloat16',
    initializer_range: 0.02, hidden_act: 'silu', use_sliding_window: false, sliding_window: 4096, max_window_layers: 28,
    attention_dropout: 0.0, use_cache: true,
  }, 'deepseekR1DistillQwen7b');
}

/** Options of the tiny test configs. */
export interface TinyConfigOptions {
  hiddenSize?: number;
  intermediateSize?: number;
  numHiddenLayers?: number;
  numAttentionHeads?: number;
  numKeyValueHeads?: number;
  vocabSize?: number;
  tieWordEmbeddings?: boolean;
  torchDtype?: TorchDtype;
}

function tiny(modelType: 'llama' | 'qwen2', o: TinyConfigOptions): ModelConfig {
  return parseModelConfig({
    model_type: modelType, hidden_size: o.hiddenSize ?? 16, intermediate_size: o.intermediateSize ?? 32,
    num_hidden_layers: o.numHiddenLayers ?? 2, num_attention_heads: o.numAttentionHeads ?? 4,
    num_key_value_heads: o.numKeyValueHeads ?? 2, vocab_size: o.vocabSize ?? 64, max_position_embeddings: 256,
    rms_norm_eps: 1e-5, rope_theta: modelType === 'llama' ? 500000 : 10000,
    rope_scaling: modelType === 'llama'
      ? { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 }
      : null,
    tie_word_embeddings: o.tieWordEmbeddings ?? modelType === 'llama', bos_token_id: 1, eos_token_id: 2,
    torch_dtype: o.torchDtype ?? 'float32', initializer_range: 0.02,
  }, `tiny-${modelType}`);
}

/** A small Llama config for tests (tied embeddings and llama3 RoPE scaling by default). */
export function tinyLlama(o: TinyConfigOptions = {}): ModelConfig {
  return tiny('llama', o);
}

/** A small Qwen2 config for tests (untied, q/k/v bias). */
export function tinyQwen2(o: TinyConfigOptions = {}): ModelConfig {
  return tiny('qwen2', o);
}

/**
 * RoPE inverse frequencies (headDim/2 values), in float64. Base: 1 / theta^(2i/headDim). With llama3
 * scaling this is HF's `_compute_llama3_parameters`:
 *   wavelen = 2π / inv_freq; low_freq_wavelen = old_ctx / low_freq_factor;
 *   high_freq_wavelen = old_ctx / high_freq_factor;
 *   inv_freq_llama = where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
 *   smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
 *   smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama;
 *   is_medium = !(wavelen < high_freq_wavelen) & !(wavelen > low_freq_wavelen);
 *   inv_freq = where(is_medium, smoothed, inv_freq_llama).
 * HF evaluates this in float32, so its values differ from these in the last float32 bits (rel ~1e-7).
 */
export function ropeInvFreq(c: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const half = c.headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s === null) return out;
  const oldCtx = s.originalMaxPositionEmbeddings;
  const lowFreqWavelen = oldCtx / s.lowFreqFactor;
  const highFreqWavelen = oldCtx / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = out[i] as number;
    const wavelen = (2 * Math.PI) / f;
    const llama = wavelen > lowFreqWavelen ? f / s.factor : f;
    const smooth = (oldCtx / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    const smoothed = ((1 - smooth) * llama) / s.factor + smooth * llama;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    out[i] = isMedium ? smoothed : llama;
  }
  return out;
}
