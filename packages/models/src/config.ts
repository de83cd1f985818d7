// HF config.json for Llama ("llama"), Qwen2 ("qwen2") and Qwen3 ("qwen3") decoders in the transformers
// 4.x and 5.x layouts: parsing with one-line errors (unknown fields too), the two reference models of
// the spec (§8), tiny test configs, writing in the layout read, and the llama3 RoPE rule.
import { inputError, writeJsonAtomic } from '@latent-sft/core';

/** RoPE scaling of rope_type 'llama3' (the only scaling supported here). */
export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Storage dtype named by config.json (`torch_dtype`, or `dtype` in transformers >= 4.56). */
export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

/**
 * How config.json spelled RoPE and dtype, so that writing gives the same layout back.
 * rope: 'rope_scaling' = transformers 4.x (`rope_theta` + `rope_scaling`; read by 4.4x and 5.x, the
 * default for new checkpoints); 'rope_parameters' = transformers 5.x (`rope_parameters` only; 4.x would
 * read it as theta 10000 without scaling); 'both' = both spellings, equal.
 */
export interface ConfigLayout {
  rope: 'rope_scaling' | 'rope_parameters' | 'both';
  dtypeKey: 'torch_dtype' | 'dtype';
}

/** The layout written for configs made here: read correctly by transformers 4.4x and 5.x. */
export const DEFAULT_LAYOUT: ConfigLayout = { rope: 'rope_scaling', dtypeKey: 'torch_dtype' };

/** A validated decoder config (camelCase of the HF fields). */
export interface ModelConfig {
  modelType: 'llama' | 'qwen2' | 'qwen3';
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
  /** Bias on q/k/v (Qwen2: always; Llama: `attention_bias`, which also gives o_proj a bias; Qwen3: never). */
  attentionBias: boolean;
  /** Llama `mlp_bias` (bias on gate/up/down); false for Qwen2 and Qwen3. */
  mlpBias: boolean;
  /** RMSNorm over each head of q and k before RoPE (Qwen3: `self_attn.q_norm` / `k_norm`, [headDim]). */
  qkNorm: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** As written in config.json: one id or a list. */
  eosTokenId: number | number[];
  padTokenId: number | null;
  torchDtype: TorchDtype;
  initializerRange: number;
  hiddenAct: 'silu';
  /** The spelling config.json used (written back by modelConfigToJson). */
  layout: ConfigLayout;
  /** Inert config.json fields (and fields let through by `allowConfigFields`), written back as read. */
  extra: Record<string, unknown>;
}

/** Options of parseModelConfig. */
export interface ParseConfigOptions {
  /**
   * Fields to accept although they are unknown or carry a value this implementation does not compute
   * (e.g. `use_sliding_window`). They are kept in `extra` and IGNORED: the model may then differ from HF's.
   */
  allowConfigFields?: readonly string[];
}

/** A comma-separated `allowConfigFields` CLI flag as a list ('' → []). */
export function configFieldList(flag: string): string[] {
  return flag
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

/** Fields read into ModelConfig (or checked and dropped: the RoPE spellings). */
const KNOWN = new Set([
  'model_type',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'vocab_size',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'rope_parameters',
  'tie_word_embeddings',
  'attention_bias',
  'mlp_bias',
  'max_position_embeddings',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'torch_dtype',
  'dtype',
  'initializer_range',
  'hidden_act',
  'architectures',
]);

/** Fields that do not change the math; kept in `extra` and written back. */
export const INERT_CONFIG_FIELDS: readonly string[] = [
  '_name_or_path',
  'transformers_version',
  'use_cache',
  'output_attentions',
  'output_hidden_states',
  'return_dict',
  'tokenizer_class',
  'keys_to_ignore_at_inference',
  'bad_words_ids',
  'decoder_start_token_id',
  'sep_token_id',
  // Which layers would slide: inert because use_sliding_window true and non-full layer_types are refused.
  'max_window_layers',
];

/**
 * Fields inert only at one value (or when another field makes them unused); any other value is an error.
 * `o` is the whole config.json object.
 */
const INERT_AT: Record<string, { ok: (v: unknown, o: Record<string, unknown>) => boolean; need: string }> = {
  attention_dropout: { ok: (v) => v === 0, need: '0 (attention dropout is not implemented)' },
  pretraining_tp: { ok: (v) => v === 1, need: '1 (tensor-parallel pretraining slices are not implemented)' },
  use_sliding_window: { ok: (v) => v === false, need: 'false (sliding-window attention is not implemented)' },
  sliding_window: {
    ok: (v, o) => v === null || o['use_sliding_window'] !== true,
    need: 'null or unused (use_sliding_window false)',
  },
  layer_types: {
    ok: (v, o) => Array.isArray(v) && v.length === o['num_hidden_layers'] && v.every((t) => t === 'full_attention'),
    need: 'one "full_attention" per layer (other attention types are not implemented)',
  },
};

const FAMILIES = {
  llama: { architecture: 'LlamaForCausalLM' },
  qwen2: { architecture: 'Qwen2ForCausalLM' },
  qwen3: { architecture: 'Qwen3ForCausalLM' },
} as const;

/** Parses and validates an HF config.json object; `file` names the source in errors. */
export function parseModelConfig(json: unknown, file = 'config.json', opts: ParseConfigOptions = {}): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw inputError({ file }, 'not a JSON object');
  const o = json as Record<string, unknown>;
  const allowed = new Set(opts.allowConfigFields ?? []);
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
  if (modelType !== 'llama' && modelType !== 'qwen2' && modelType !== 'qwen3') {
    throw err('model_type', `expected "llama", "qwen2" or "qwen3", got ${JSON.stringify(modelType)}`);
  }
  const arch = o['architectures'];
  if (arch !== undefined && arch !== null && !(Array.isArray(arch) && arch.length === 1 && arch[0] === FAMILIES[modelType].architecture)) {
    throw err('architectures', `expected ["${FAMILIES[modelType].architecture}"] for model_type "${modelType}", got ${JSON.stringify(arch)}`);
  }
  const hiddenSize = posInt('hidden_size');
  const numAttentionHeads = posInt('num_attention_heads');
  const numKeyValueHeads = posInt('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw err('num_key_value_heads', `${numKeyValueHeads} does not divide num_attention_heads ${numAttentionHeads}`);
  }
  // Qwen3Config's head_dim defaults to 128 (not hidden_size / heads), as in transformers.
  if (o['head_dim'] === undefined && modelType !== 'qwen3' && hiddenSize % numAttentionHeads !== 0) {
    throw err('num_attention_heads', `${numAttentionHeads} does not divide hidden_size ${hiddenSize} (and no head_dim)`);
  }
  const headDim = posInt('head_dim', modelType === 'qwen3' ? 128 : hiddenSize / numAttentionHeads);
  if (headDim % 2 !== 0) throw err('head_dim', `must be even for RoPE, got ${headDim}`);
  const vocabSize = posInt('vocab_size');
  const numHiddenLayers = posInt('num_hidden_layers');

  const eos = o['eos_token_id'];
  const isId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!(isId(eos) || (Array.isArray(eos) && eos.length > 0 && eos.every(isId)))) {
    throw err('eos_token_id', `expected a token id or a non-empty list of ids, got ${JSON.stringify(eos)}`);
  }
  const dtypeKey = o['torch_dtype'] === undefined && o['dtype'] !== undefined ? 'dtype' : 'torch_dtype';
  const dtypeRaw = o[dtypeKey] ?? 'float32';
  if (dtypeRaw !== 'float32' && dtypeRaw !== 'bfloat16' && dtypeRaw !== 'float16') {
    throw err(dtypeKey, `expected float32, bfloat16 or float16, got ${JSON.stringify(dtypeRaw)}`);
  }
  if (o['torch_dtype'] !== undefined && o['dtype'] !== undefined && o['dtype'] !== o['torch_dtype']) {
    throw err('dtype', `${JSON.stringify(o['dtype'])} differs from torch_dtype ${JSON.stringify(o['torch_dtype'])}`);
  }
  const act = o['hidden_act'] ?? 'silu';
  if (act !== 'silu' && !allowed.has('hidden_act')) throw err('hidden_act', `only "silu" is supported, got ${JSON.stringify(act)}`);

  const rope = parseRope(o, err);
  const padTokenId = optId('pad_token_id');
  if (padTokenId !== null && padTokenId >= vocabSize) throw err('pad_token_id', `${padTokenId} is not below vocab_size ${vocabSize}`);

  // Per family: which bias / norm fields exist and which values we implement.
  const onlyValue = (field: string, value: boolean, why: string): boolean => {
    const v = bool(field, value);
    if (v !== value && !allowed.has(field)) throw err(field, `${String(v)} is not supported for model_type "${modelType}" (${why})`);
    return value;
  };
  let attentionBias: boolean;
  let mlpBias: boolean;
  if (modelType === 'llama') {
    attentionBias = bool('attention_bias', false);
    mlpBias = bool('mlp_bias', false);
  } else if (modelType === 'qwen2') {
    attentionBias = onlyValue('attention_bias', true, 'Qwen2 always has q/k/v biases');
    mlpBias = onlyValue('mlp_bias', false, 'Qwen2 has no MLP biases');
  } else {
    attentionBias = onlyValue('attention_bias', false, 'q/k/v/o biases of Qwen3 are not implemented');
    mlpBias = onlyValue('mlp_bias', false, 'Qwen3 has no MLP biases');
  }

  const extra: Record<string, unknown> = {};
  const inert = new Set(INERT_CONFIG_FIELDS);
  for (const [k, v] of Object.entries(o)) {
    if (KNOWN.has(k)) continue;
    const rule = INERT_AT[k];
    if (!allowed.has(k)) {
      if (rule !== undefined && !rule.ok(v, o)) throw err(k, `${JSON.stringify(v)} is not supported; expected ${rule.need}`);
      if (rule === undefined && !inert.has(k)) {
        throw err(k, 'unknown field (it may change the model); list it in allowConfigFields to load anyway');
      }
    }
    extra[k] = v;
  }

  return {
    modelType,
    hiddenSize,
    intermediateSize: posInt('intermediate_size'),
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize,
    rmsNormEps: posNum('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias,
    mlpBias,
    qkNorm: modelType === 'qwen3',
    maxPositionEmbeddings: posInt('max_position_embeddings', modelType === 'llama' ? 2048 : 32768),
    bosTokenId: optId('bos_token_id'),
    eosTokenId: eos as number | number[],
    padTokenId,
    torchDtype: dtypeRaw,
    initializerRange: posNum('initializer_range', 0.02),
    hiddenAct: 'silu',
    layout: { rope: rope.layout, dtypeKey },
    extra,
  };
}

type ErrFn = (field: string, msg: string) => Error;

/** One RoPE dict (a 4.x `rope_scaling` or a 5.x `rope_parameters`): its theta (if any) and scaling. */
function parseRopeDict(r: Record<string, unknown>, where: string, err: ErrFn): { theta: number | undefined; scaling: Llama3RopeScaling | null } {
  const type = r['rope_type'] ?? r['type'] ?? 'default';
  if (r['rope_type'] !== undefined && r['type'] !== undefined && r['rope_type'] !== r['type']) {
    throw err(`${where}.type`, `${JSON.stringify(r['type'])} differs from rope_type ${JSON.stringify(r['rope_type'])}`);
  }
  if (type !== 'default' && type !== 'llama3') throw err(`${where}.rope_type`, `only "default" and "llama3" are supported, got ${JSON.stringify(type)}`);
  const allowedKeys =
    type === 'default'
      ? ['rope_type', 'type', 'rope_theta']
      : ['rope_type', 'type', 'rope_theta', 'factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'];
  for (const k of Object.keys(r)) {
    if (!allowedKeys.includes(k)) throw err(`${where}.${k}`, `not supported with rope_type ${JSON.stringify(type)}`);
  }
  const num = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw err(`${where}.${k}`, `expected a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const theta = r['rope_theta'] === undefined ? undefined : num('rope_theta');
  if (type === 'default') return { theta, scaling: null };
  const scaling: Llama3RopeScaling = {
    ropeType: 'llama3',
    factor: num('factor'),
    lowFreqFactor: num('low_freq_factor'),
    highFreqFactor: num('high_freq_factor'),
    originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) throw err(`${where}.high_freq_factor`, `must exceed low_freq_factor ${scaling.lowFreqFactor}`);
  return { theta, scaling };
}

/**
 * RoPE from either layout: 4.x `rope_theta` (default 10000) + `rope_scaling` (null or a dict, into
 * which transformers 5 also copies rope_theta), or 5.x `rope_parameters` {rope_type, rope_theta, ...}.
 * When both are present they must agree.
 */
function parseRope(o: Record<string, unknown>, err: ErrFn): { theta: number; scaling: Llama3RopeScaling | null; layout: ConfigLayout['rope'] } {
  const dict = (field: string): Record<string, unknown> | null => {
    const v = o[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) throw err(field, 'expected an object or null');
    return v as Record<string, unknown>;
  };
  const topTheta = o['rope_theta'];
  if (topTheta !== undefined && (typeof topTheta !== 'number' || !Number.isFinite(topTheta) || topTheta <= 0)) {
    throw err('rope_theta', `expected a positive number, got ${JSON.stringify(topTheta)}`);
  }
  const rs = dict('rope_scaling');
  const v4 = rs === null ? { theta: undefined, scaling: null } : parseRopeDict(rs, 'rope_scaling', err);
  if (v4.theta !== undefined && topTheta !== undefined && v4.theta !== topTheta) {
    throw err('rope_scaling.rope_theta', `${v4.theta} differs from rope_theta ${topTheta}`);
  }
  const v4Theta = (topTheta as number | undefined) ?? v4.theta ?? 10000;
  const rp = dict('rope_parameters');
  if (rp === null) return { theta: v4Theta, scaling: v4.scaling, layout: 'rope_scaling' };
  if (Object.keys(rp).length === 0) throw err('rope_parameters', 'empty');
  const v5 = parseRopeDict(rp, 'rope_parameters', err);
  const v5Theta = v5.theta ?? (topTheta as number | undefined) ?? 10000;
  const hasV4 = o['rope_theta'] !== undefined || o['rope_scaling'] !== undefined;
  if (hasV4 && (v5Theta !== v4Theta || JSON.stringify(v5.scaling) !== JSON.stringify(v4.scaling))) {
    throw err(v5Theta !== v4Theta ? 'rope_theta' : 'rope_scaling', 'disagrees with rope_parameters');
  }
  return { theta: v5Theta, scaling: v5.scaling, layout: hasV4 ? 'both' : 'rope_parameters' };
}

function ropeScalingJson(c: ModelConfig, withTheta: boolean): Record<string, unknown> {
  const s = c.ropeScaling;
  const theta = withTheta ? { rope_theta: c.ropeTheta } : {};
  if (s === null) return { rope_type: 'default', ...theta };
  return {
    rope_type: 'llama3',
    ...theta,
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/** The config.json object HF `from_pretrained` reads, in the config's layout (extra fields written back). */
export function modelConfigToJson(c: ModelConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [FAMILIES[c.modelType].architecture],
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
  };
  if (c.layout.rope !== 'rope_parameters') {
    json['rope_theta'] = c.ropeTheta;
    json['rope_scaling'] = c.ropeScaling === null ? null : ropeScalingJson(c, false);
  }
  if (c.layout.rope !== 'rope_scaling') json['rope_parameters'] = ropeScalingJson(c, true);
  Object.assign(json, {
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    pad_token_id: c.padTokenId,
    initializer_range: c.initializerRange,
    [c.layout.dtypeKey]: c.torchDtype,
  });
  if (c.modelType !== 'qwen2') json['attention_bias'] = c.attentionBias;
  if (c.modelType === 'llama') json['mlp_bias'] = c.mlpBias;
  return { ...json, ...c.extra };
}

/** Writes config.json atomically. */
export function writeModelConfig(path: string, c: ModelConfig): void {
  writeJsonAtomic(path, modelConfigToJson(c));
}

/** meta-llama/Llama-3.2-1B-Instruct (spec §8). */
export function llama32_1b(): ModelConfig {
  return parseModelConfig(
    {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000.0,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 32.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
      },
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      bos_token_id: 128000,
      eos_token_id: [128001, 128008, 128009],
      torch_dtype: 'bfloat16',
      initializer_range: 0.02,
      hidden_act: 'silu',
      attention_dropout: 0.0,
      pretraining_tp: 1,
      use_cache: true,
    },
    'llama32_1b',
  );
}

/** deepseek-ai/DeepSeek-R1-Distill-Qwen-7B (spec §8; Qwen2 architecture). */
export function deepseekR1DistillQwen7b(): ModelConfig {
  return parseModelConfig(
    {
      model_type: 'qwen2',
      hidden_size: 3584,
      intermediate_size: 18944,
      num_hidden_layers: 28,
      num_attention_heads: 28,
      num_key_value_heads: 4,
      vocab_size: 152064,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      rope_scaling: null,
      tie_word_embeddings: false,
      bos_token_id: 151646,
      eos_token_id: 151643,
      torch_dtype: 'bfloat16',
      initializer_range: 0.02,
      hidden_act: 'silu',
      use_sliding_window: false,
      sliding_window: 4096,
      max_window_layers: 28,
      attention_dropout: 0.0,
      use_cache: true,
    },
    'deepseekR1DistillQwen7b',
  );
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

function tiny(modelType: ModelConfig['modelType'], o: TinyConfigOptions): ModelConfig {
  const hiddenSize = o.hiddenSize ?? 16;
  const heads = o.numAttentionHeads ?? 4;
  return parseModelConfig(
    {
      model_type: modelType,
      hidden_size: hiddenSize,
      intermediate_size: o.intermediateSize ?? 32,
      num_hidden_layers: o.numHiddenLayers ?? 2,
      num_attention_heads: heads,
      head_dim: hiddenSize / heads,
      num_key_value_heads: o.numKeyValueHeads ?? 2,
      vocab_size: o.vocabSize ?? 64,
      max_position_embeddings: 256,
      rms_norm_eps: 1e-5,
      rope_theta: { llama: 500000, qwen2: 10000, qwen3: 1000000 }[modelType],
      rope_scaling:
        modelType === 'llama' ? { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } : null,
      tie_word_embeddings: o.tieWordEmbeddings ?? modelType === 'llama',
      bos_token_id: 1,
      eos_token_id: 2,
      torch_dtype: o.torchDtype ?? 'float32',
      initializer_range: 0.02,
    },
    `tiny-${modelType}`,
  );
}

/** A small Llama config for tests (tied embeddings and llama3 RoPE scaling by default). */
export function tinyLlama(o: TinyConfigOptions = {}): ModelConfig {
  return tiny('llama', o);
}

/** A small Qwen2 config for tests (untied, q/k/v bias). */
export function tinyQwen2(o: TinyConfigOptions = {}): ModelConfig {
  return tiny('qwen2', o);
}

/** A small Qwen3 config for tests (untied, q/k RMSNorm, no biases, theta 1e6). */
export function tinyQwen3(o: TinyConfigOptions = {}): ModelConfig {
  return tiny('qwen3', o);
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
