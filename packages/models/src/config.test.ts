import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LAYOUT,
  deepseekR1DistillQwen7b,
  llama32_1b,
  modelConfigToJson,
  parseModelConfig,
  ropeInvFreq,
  tinyLlama,
  tinyQwen2,
  tinyQwen3,
  writeModelConfig,
} from './config.js';
import { parameterCount, parameterShapes } from './params.js';

const EXACT = { atol: 0, rtol: 0 };
const F64 = { atol: 1e-15, rtol: 1e-12 };

describe('model configs', () => {
  it('has the spec §8 numbers', () => {
    const l = llama32_1b();
    expect([l.hiddenSize, l.intermediateSize, l.numHiddenLayers, l.numAttentionHeads, l.numKeyValueHeads, l.headDim, l.vocabSize]).toEqual([
      2048, 8192, 16, 32, 8, 64, 128256,
    ]);
    expect(l.ropeScaling).toEqual({ ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect([l.tieWordEmbeddings, l.attentionBias, l.bosTokenId, l.eosTokenId]).toEqual([true, false, 128000, [128001, 128008, 128009]]);
    const q = deepseekR1DistillQwen7b();
    expect([q.hiddenSize, q.intermediateSize, q.numHiddenLayers, q.numAttentionHeads, q.numKeyValueHeads, q.headDim, q.vocabSize]).toEqual([
      3584, 18944, 28, 28, 4, 128, 152064,
    ]);
    expect([q.tieWordEmbeddings, q.attentionBias, q.ropeScaling, q.rmsNormEps, q.extra['use_sliding_window']]).toEqual([false, true, null, 1e-6, false]);
  });

  it('counts 1,235,814,400 parameters for Llama-3.2-1B', () => {
    expect(parameterCount(llama32_1b())).toBe(1_235_814_400);
    expect(parameterShapes(llama32_1b()).some((p) => p.name === 'lm_head.weight')).toBe(false);
  });

  it('names parameters as HF does, with Qwen2 q/k/v biases and an untied head', () => {
    const names = parameterShapes(tinyQwen2({ numHiddenLayers: 1 })).map((p) => `${p.name} [${p.shape}]`);
    expect(names).toEqual([
      'model.embed_tokens.weight [64,16]',
      'model.layers.0.self_attn.q_proj.weight [16,16]',
      'model.layers.0.self_attn.q_proj.bias [16]',
      'model.layers.0.self_attn.k_proj.weight [8,16]',
      'model.layers.0.self_attn.k_proj.bias [8]',
      'model.layers.0.self_attn.v_proj.weight [8,16]',
      'model.layers.0.self_attn.v_proj.bias [8]',
      'model.layers.0.self_attn.o_proj.weight [16,16]',
      'model.layers.0.mlp.gate_proj.weight [32,16]',
      'model.layers.0.mlp.up_proj.weight [32,16]',
      'model.layers.0.mlp.down_proj.weight [16,32]',
      'model.layers.0.input_layernorm.weight [16]',
      'model.layers.0.post_attention_layernorm.weight [16]',
      'model.norm.weight [16]',
      'lm_head.weight [64,16]',
    ]);
    // 7B: 7.6B parameters (the published figure is "7.62B").
    expect(parameterCount(deepseekR1DistillQwen7b())).toBe(7_615_616_512);
  });

  it('round-trips through config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    for (const c of [llama32_1b(), deepseekR1DistillQwen7b(), tinyLlama()]) {
      writeModelConfig(join(dir, 'config.json'), c);
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(parseModelConfig(json)).toEqual(c);
      expect(json).toEqual(modelConfigToJson(c));
    }
    const q = modelConfigToJson(deepseekR1DistillQwen7b());
    expect([q['architectures'], q['use_sliding_window'], q['attention_bias']]).toEqual([['Qwen2ForCausalLM'], false, undefined]);
  });

  it('accepts the transformers >= 4.56 `dtype` key and the old rope_scaling `type` key', () => {
    const base = modelConfigToJson(tinyLlama());
    const c = parseModelConfig({
      ...base,
      torch_dtype: undefined,
      dtype: 'bfloat16',
      rope_scaling: { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    });
    expect([c.torchDtype, c.ropeScaling?.factor]).toEqual(['bfloat16', 8]);
    const noHead = parseModelConfig({ ...base, head_dim: undefined });
    expect(noHead.headDim).toBe(4);
  });

  it.each([
    [{ model_type: 'mistral' }, `c.json: field 'model_type': expected "llama", "qwen2" or "qwen3", got "mistral"`],
    [{ hidden_size: 0 }, "c.json: field 'hidden_size': expected a positive integer, got 0"],
    [{ num_key_value_heads: 3 }, "c.json: field 'num_key_value_heads': 3 does not divide num_attention_heads 4"],
    [{ rms_norm_eps: -1 }, "c.json: field 'rms_norm_eps': expected a positive number, got -1"],
    [{ eos_token_id: [] }, "c.json: field 'eos_token_id': expected a token id or a non-empty list of ids, got []"],
    [{ torch_dtype: 'int8' }, `c.json: field 'torch_dtype': expected float32, bfloat16 or float16, got "int8"`],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, `c.json: field 'rope_scaling.rope_type': only "default" and "llama3" are supported, got "yarn"`],
    [
      { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
      "c.json: field 'rope_scaling.original_max_position_embeddings': expected a positive number, got undefined",
    ],
    [{ tie_word_embeddings: 'yes' }, `c.json: field 'tie_word_embeddings': expected true or false, got "yes"`],
    [{ pad_token_id: 64 }, "c.json: field 'pad_token_id': 64 is not below vocab_size 64"],
    [{ hidden_act: 'gelu' }, `c.json: field 'hidden_act': only "silu" is supported, got "gelu"`],
  ])('rejects %j', (patch, message) => {
    expect(() => parseModelConfig({ ...modelConfigToJson(tinyLlama()), ...patch }, 'c.json')).toThrow(message);
  });
});

// config.json of a Llama-3 as transformers 5 writes it (rope_parameters, dtype) and as 4.x writes it.
const LLAMA_COMMON = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 4,
  vocab_size: 64,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  attention_dropout: 0.0,
  pretraining_tp: 1,
  hidden_act: 'silu',
  initializer_range: 0.02,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
  use_cache: true,
  transformers_version: '5.17.0',
};
const LLAMA3_SCALING = { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32 };
const LLAMA_V5 = { ...LLAMA_COMMON, dtype: 'float32', rope_parameters: { rope_type: 'llama3', rope_theta: 500000.0, ...LLAMA3_SCALING } };
const LLAMA_V4 = { ...LLAMA_COMMON, torch_dtype: 'float32', rope_theta: 500000.0, rope_scaling: { rope_type: 'llama3', ...LLAMA3_SCALING } };
const QWEN3_V5 = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  vocab_size: 64,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  attention_bias: false,
  attention_dropout: 0.0,
  hidden_act: 'silu',
  initializer_range: 0.02,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
  use_cache: true,
  use_sliding_window: false,
  sliding_window: null,
  max_window_layers: 2,
  layer_types: ['full_attention', 'full_attention'],
  dtype: 'bfloat16',
  rope_parameters: { rope_type: 'default', rope_theta: 1000000.0 },
  transformers_version: '5.17.0',
};

describe('transformers 4.x and 5.x layouts', () => {
  it('reads the same RoPE from rope_parameters (5.x) and rope_theta + rope_scaling (4.x)', () => {
    const v5 = parseModelConfig(LLAMA_V5, 'v5.json');
    const v4 = parseModelConfig(LLAMA_V4, 'v4.json');
    const scaling = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 };
    expect([v5.ropeTheta, v5.ropeScaling, v5.layout]).toEqual([500000, scaling, { rope: 'rope_parameters', dtypeKey: 'dtype' }]);
    expect([v4.ropeTheta, v4.ropeScaling, v4.layout]).toEqual([500000, scaling, { rope: 'rope_scaling', dtypeKey: 'torch_dtype' }]);
    expect({ ...v5, layout: null, extra: null }).toEqual({ ...v4, layout: null, extra: null });
    // 5.x default rope: theta only.
    const q = parseModelConfig({ ...LLAMA_V5, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    expect([q.ropeTheta, q.ropeScaling]).toEqual([1e6, null]);
    // transformers 5 copies rope_theta into a 4.x rope_scaling dict; equal values are fine.
    const both = parseModelConfig({ ...LLAMA_V4, rope_scaling: { ...LLAMA_V4.rope_scaling, rope_theta: 500000 } });
    expect([both.ropeTheta, both.ropeScaling]).toEqual([500000, scaling]);
  });

  it('writes back the layout it read, and the 4.x layout (read by 4.4x and 5.x) for new configs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-layout-'));
    for (const [src, rope] of [
      [LLAMA_V5, 'rope_parameters'],
      [LLAMA_V4, 'rope_scaling'],
      [QWEN3_V5, 'rope_parameters'],
      [{ ...LLAMA_V4, rope_parameters: LLAMA_V5.rope_parameters }, 'both'],
    ] as const) {
      const c = parseModelConfig(src);
      expect(c.layout.rope).toBe(rope);
      writeModelConfig(join(dir, 'config.json'), c);
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(json).toEqual(src); // every key and value as read
      expect(parseModelConfig(json)).toEqual(c);
    }
    expect(tinyLlama().layout).toEqual(DEFAULT_LAYOUT);
    const fresh = modelConfigToJson(tinyLlama());
    expect([fresh['rope_theta'], fresh['rope_parameters'], fresh['torch_dtype'], (fresh['rope_scaling'] as { rope_type: string }).rope_type]).toEqual([
      500000,
      undefined,
      'float32',
      'llama3',
    ]);
  });

  it('reads Qwen3: explicit head_dim, q/k norm, no biases, tie as given', () => {
    const c = parseModelConfig(QWEN3_V5);
    expect([c.modelType, c.headDim, c.qkNorm, c.attentionBias, c.mlpBias, c.tieWordEmbeddings, c.ropeTheta, c.torchDtype]).toEqual([
      'qwen3',
      16,
      true,
      false,
      false,
      true,
      1e6,
      'bfloat16',
    ]);
    expect(parseModelConfig({ ...QWEN3_V5, head_dim: undefined }).headDim).toBe(128); // Qwen3Config's default
    expect([tinyLlama().qkNorm, tinyQwen2().qkNorm, tinyQwen3().qkNorm]).toEqual([false, false, true]);
    expect(modelConfigToJson(tinyQwen3())['architectures']).toEqual(['Qwen3ForCausalLM']);
  });

  it.each([
    [
      LLAMA_V5,
      { rope_parameters: { rope_type: 'yarn', rope_theta: 1e4, factor: 4, original_max_position_embeddings: 32 } },
      `field 'rope_parameters.rope_type': only "default" and "llama3" are supported, got "yarn"`,
    ],
    [
      LLAMA_V5,
      { rope_parameters: { ...LLAMA_V5.rope_parameters, partial_rotary_factor: 0.5 } },
      `field 'rope_parameters.partial_rotary_factor': not supported with rope_type "llama3"`,
    ],
    [
      LLAMA_V5,
      { rope_parameters: { ...LLAMA_V5.rope_parameters, rope_theta: 'big' } },
      `field 'rope_parameters.rope_theta': expected a positive number, got "big"`,
    ],
    [LLAMA_V5, { rope_theta: 10000 }, "field 'rope_theta': disagrees with rope_parameters"],
    [LLAMA_V4, { rope_scaling: { ...LLAMA_V4.rope_scaling, rope_theta: 10000 } }, "field 'rope_scaling.rope_theta': 10000 differs from rope_theta 500000"],
    [LLAMA_V4, { rope_scaling: { type: 'linear', factor: 2 } }, `field 'rope_scaling.rope_type': only "default" and "llama3" are supported, got "linear"`],
    [LLAMA_V4, { rope_scaling: { ...LLAMA_V4.rope_scaling, attention_factor: 1 } }, "field 'rope_scaling.attention_factor': not supported"],
    [LLAMA_V4, { quantization_config: { bits: 4 } }, "field 'quantization_config': unknown field (it may change the model)"],
    [LLAMA_V4, { partial_rotary_factor: 0.5 }, "field 'partial_rotary_factor': unknown field"],
    [LLAMA_V4, { attention_dropout: 0.1 }, "field 'attention_dropout': 0.1 is not supported; expected 0"],
    [LLAMA_V4, { pretraining_tp: 2 }, "field 'pretraining_tp': 2 is not supported; expected 1"],
    [LLAMA_V4, { architectures: ['MistralForCausalLM'] }, `field 'architectures': expected ["LlamaForCausalLM"] for model_type "llama"`],
    [LLAMA_V4, { dtype: 'bfloat16' }, `field 'dtype': "bfloat16" differs from torch_dtype "float32"`],
    [QWEN3_V5, { use_sliding_window: true, sliding_window: 16 }, "field 'use_sliding_window': true is not supported; expected false"],
    [QWEN3_V5, { layer_types: ['full_attention', 'sliding_attention'] }, 'field \'layer_types\': ["full_attention","sliding_attention"] is not supported'],
    [QWEN3_V5, { layer_types: ['full_attention'] }, 'field \'layer_types\': ["full_attention"] is not supported; expected one "full_attention" per layer'],
    [QWEN3_V5, { attention_bias: true }, `field 'attention_bias': true is not supported for model_type "qwen3"`],
    [QWEN3_V5, { mlp_bias: true }, `field 'mlp_bias': true is not supported for model_type "qwen3"`],
    [QWEN3_V5, { hidden_act: 'gelu_pytorch_tanh' }, `field 'hidden_act': only "silu" is supported, got "gelu_pytorch_tanh"`],
    [deepseekJson(), { attention_bias: false }, `field 'attention_bias': false is not supported for model_type "qwen2"`],
    [deepseekJson(), { use_sliding_window: true }, "field 'use_sliding_window': true is not supported"],
  ])('refuses %#: %j', (base, patch, message) => {
    expect(() => parseModelConfig({ ...base, ...patch }, 'x/config.json')).toThrow(`x/config.json: ${message}`);
  });

  it('takes fields named in allowConfigFields, keeps them in extra and writes them back', () => {
    const src = { ...LLAMA_V4, quantization_config: { bits: 4 }, attention_dropout: 0.1 };
    const opts = { allowConfigFields: ['quantization_config', 'attention_dropout'] };
    const c = parseModelConfig(src, 'x.json', opts);
    expect([c.extra['quantization_config'], c.extra['attention_dropout']]).toEqual([{ bits: 4 }, 0.1]);
    expect(modelConfigToJson(c)).toEqual(src);
    expect(() => parseModelConfig(src, 'x.json', { allowConfigFields: ['attention_dropout'] })).toThrow("field 'quantization_config'");
    const q = parseModelConfig({ ...QWEN3_V5, use_sliding_window: true, sliding_window: 8 }, 'q.json', {
      allowConfigFields: ['use_sliding_window', 'sliding_window'],
    });
    expect(q.extra['use_sliding_window']).toBe(true);
    expect(parseModelConfig({ ...QWEN3_V5, hidden_act: 'gelu' }, 'q.json', { allowConfigFields: ['hidden_act'] }).hiddenAct).toBe('silu');
  });

  it('accepts an unused sliding_window (Qwen2 4.x writes 4096 with use_sliding_window false)', () => {
    const c = parseModelConfig({ ...deepseekJson(), sliding_window: 4096, use_sliding_window: false, max_window_layers: 28 });
    expect([c.extra['sliding_window'], c.extra['max_window_layers']]).toEqual([4096, 28]);
  });
});

function deepseekJson(): Record<string, unknown> {
  return modelConfigToJson(deepseekR1DistillQwen7b());
}

describe('ropeInvFreq', () => {
  it('is 1/theta^(2i/d) without scaling', () => {
    const f = ropeInvFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: null });
    expect(f).toBeAllclose([1, 0.1, 0.01, 0.001], F64);
  });

  it('applies the llama3 rule: high band kept, low band / factor, medium band smoothed', () => {
    // inv = [1, 0.1, 0.01, 0.001], wavelen = 2π/inv = [6.28, 62.8, 628, 6283];
    // old_ctx 64: low_freq_wavelen 64 (factor 1), high_freq_wavelen 16 (factor 4); factor 8.
    const f = ropeInvFreq({
      headDim: 8,
      ropeTheta: 10000,
      ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    });
    // i=1 is medium: smooth = (64/62.83 - 1)/3 = 0.006197212; (1-s)*0.1/8 + s*0.1 = 0.0125 + 0.0875 s.
    expect(f).toBeAllclose([1, 0.013042256, 0.00125, 0.000125], { atol: 1e-9, rtol: 0 });
    const smooth = (64 / ((2 * Math.PI) / 0.1) - 1) / 3;
    expect(f[1]).toBeAllclose(0.0125 + 0.0875 * smooth, F64);
  });

  it('keeps Llama-3.2 frequencies above the 8192-token band and divides the lowest by 32', () => {
    const f = ropeInvFreq(llama32_1b());
    expect(f.length).toBe(32);
    expect(f[0]).toBeAllclose(1, EXACT);
    const base31 = 1 / 500000 ** (62 / 64);
    expect(f[31]).toBeAllclose(base31 / 32, F64); // wavelen 2π/base31 ≈ 2.0e6 > 8192
  });
});
