import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deepseekR1DistillQwen7b, llama32_1b, modelConfigToJson, parseModelConfig, ropeInvFreq, tinyLlama, tinyQwen2, writeModelConfig,
} from './config.js';
import { parameterCount, parameterShapes } from './params.js';

const EXACT = { atol: 0, rtol: 0 };
const F64 = { atol: 1e-15, rtol: 1e-12 };

describe('model configs', () => {
  it('has the spec §8 numbers', () => {
    const l = llama32_1b();
    expect([l.hiddenSize, l.intermediateSize, l.numHiddenLayers, l.numAttentionHeads, l.numKeyValueHeads, l.headDim, l.vocabSize])
      .toEqual([2048, 8192, 16, 32, 8, 64, 128256]);
    expect(l.ropeScaling).toEqual({ ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect([l.tieWordEmbeddings, l.attentionBias, l.bosTokenId, l.eosTokenId]).toEqual([true, false, 128000, [128001, 128008, 128009]]);
    const q = deepseekR1DistillQwen7b();
    expect([q.hiddenSize, q.intermediateSize, q.numHiddenLayers, q.numAttentionHeads, q.numKeyValueHeads, q.headDim, q.vocabSize])
      .toEqual([3584, 18944, 28, 28, 4, 128, 152064]);
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
      'model.layers.0.self_attn.q_proj.weight [16,16]', 'model.layers.0.self_attn.q_proj.bias [16]',
      'model.layers.0.self_attn.k_proj.weight [8,16]', 'model.layers.0.self_attn.k_proj.bias [8]',
      'model.layers.0.self_attn.v_proj.weight [8,16]', 'model.layers.0.self_attn.v_proj.bias [8]',
      'model.layers.0.self_attn.o_proj.weight [16,16]',
      'model.layers.0.mlp.gate_proj.weight [32,16]', 'model.layers.0.mlp.up_proj.weight [32,16]',
      'model.layers.0.mlp.down_proj.weight [16,32]',
      'model.layers.0.input_layernorm.weight [16]', 'model.layers.0.post_attention_layernorm.weight [16]',
      'model.norm.weight [16]', 'lm_head.weight [64,16]',
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
    const c = parseModelConfig({ ...base, torch_dtype: undefined, dtype: 'bfloat16',
      rope_scaling: { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } });
    expect([c.torchDtype, c.ropeScaling?.factor]).toEqual(['bfloat16', 8]);
    const noHead = parseModelConfig({ ...base, head_dim: undefined });
    expect(noHead.headDim).toBe(4);
  });

  it.each([
    [{ model_type: 'mistral' }, `c.json: field 'model_type': expected "llama" or "qwen2", got "mistral"`],
    [{ hidden_size: 0 }, "c.json: field 'hidden_size': expected a positive integer, got 0"],
    [{ num_key_value_heads: 3 }, "c.json: field 'num_key_value_heads': 3 does not divide num_attention_heads 4"],
    [{ rms_norm_eps: -1 }, "c.json: field 'rms_norm_eps': expected a positive number, got -1"],
    [{ eos_token_id: [] }, "c.json: field 'eos_token_id': expected a token id or a non-empty list of ids, got []"],
    [{ torch_dtype: 'int8' }, `c.json: field 'torch_dtype': expected float32, bfloat16 or float16, got "int8"`],
    [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, `c.json: field 'rope_scaling.rope_type': only "llama3" is supported, got "yarn"`],
    [{ rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
      "c.json: field 'rope_scaling.original_max_position_embeddings': expected a positive number, got undefined"],
    [{ tie_word_embeddings: 'yes' }, `c.json: field 'tie_word_embeddings': expected true or false, got "yes"`],
    [{ pad_token_id: 64 }, "c.json: field 'pad_token_id': 64 is not below vocab_size 64"],
    [{ hidden_act: 'gelu' }, `c.json: field 'hidden_act': only "silu" is supported, got "gelu"`],
  ])('rejects %j', (patch, message) => {
    expect(() => parseModelConfig({ ...modelConfigToJson(tinyLlama()), ...patch }, 'c.json')).toThrow(message);
  });
});

describe('ropeInvFreq', () => {
  it('is 1/theta^(2i/d) without scaling', () => {
    const f = ropeInvFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: null });
    expect(f).toBeAllclose([1, 0.1, 0.01, 0.001], F64);
  });

  it('applies the llama3 rule: high band kept, low band / factor, medium band smoothed', () => {
    // inv = [1, 0.1, 0.01, 0.001], wavelen = 2π/inv = [6.28, 62.8, 628, 6283];
    // old_ctx 64: low_freq_wavelen 64 (factor 1), high_freq_wavelen 16 (factor 4); factor 8.
    const f = ropeInvFreq({ headDim: 8, ropeTheta: 10000,
      ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } });
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
