import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llama32_1b, tinyLlama, tinyQwen3 } from './config.js';
import type { NamedTensor } from './init.js';
import { initParameters } from './init.js';
import { loadAdapter, loraParameterShapes, loraScaling, mergeLora, parseAdapterConfig, saveAdapter, type LoraConfig } from './lora.js';

const EXACT = { atol: 0, rtol: 0 };
const F32 = { atol: 1e-7, rtol: 1e-6 };
const ALL: LoraConfig['targetModules'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('LoRA shapes and names', () => {
  it('uses PEFT names for CAUSAL_LM and FEATURE_EXTRACTION', () => {
    const dec = loraParameterShapes(llama32_1b(), { r: 64, alpha: 128, dropout: 0.1, targetModules: ALL, bias: 'none', taskType: 'CAUSAL_LM' });
    expect(dec.length).toBe(16 * 7 * 2);
    expect(dec.slice(0, 2)).toEqual([
      {
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
        shape: [64, 2048],
        baseName: 'model.layers.0.self_attn.q_proj.weight',
        kind: 'A',
      },
      {
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
        shape: [2048, 64],
        baseName: 'model.layers.0.self_attn.q_proj.weight',
        kind: 'B',
      },
    ]);
    expect(dec.find((p) => p.name.includes('k_proj.lora_B'))?.shape).toEqual([512, 64]);
    expect(dec.find((p) => p.name.includes('down_proj.lora_A'))?.shape).toEqual([64, 8192]);
    const enc = loraParameterShapes(llama32_1b(), {
      r: 64,
      alpha: 128,
      dropout: 0.1,
      targetModules: [...ALL, 'embed_tokens'],
      bias: 'none',
      taskType: 'FEATURE_EXTRACTION',
    });
    expect(enc.slice(0, 3).map((p) => `${p.name} [${p.shape}]`)).toEqual([
      'base_model.model.embed_tokens.lora_embedding_A [64,128256]',
      'base_model.model.embed_tokens.lora_embedding_B [2048,64]',
      'base_model.model.layers.0.self_attn.q_proj.lora_A.weight [64,2048]',
    ]);
    // Trainable LoRA parameters of the Latent-SFT decoder (r 64 on all 7 projections of Llama-3.2-1B).
    expect(dec.reduce((n, p) => n + p.shape[0]! * p.shape[1]!, 0)).toBe(45_088_768);
    expect(loraScaling({ r: 64, alpha: 128 })).toBe(2);
    expect(loraScaling({ r: 64, alpha: 128, useRslora: true })).toBe(16);
  });

  it('rejects unsupported settings in one line', () => {
    const l: LoraConfig = { r: 0, alpha: 1, dropout: 0, targetModules: ['q_proj'], bias: 'none', taskType: 'CAUSAL_LM' };
    expect(() => loraParameterShapes(tinyLlama(), l)).toThrow("adapter_config.json: field 'r': expected a positive integer, got 0");
    expect(() => loraParameterShapes(tinyLlama(), { ...l, r: 2, targetModules: ['lm_head' as 'q_proj'] })).toThrow(
      `field 'target_modules': unsupported module "lm_head"`,
    );
  });
});

function tensor(name: string, shape: number[], values: number[]): NamedTensor {
  return { name, shape, data: new Float32Array(values) };
}

describe('mergeLora', () => {
  it('adds (alpha/r)·B·A to a Linear weight and (alpha/r)·(B·A)ᵀ to the embedding', () => {
    // vocab 3, hidden 2, one layer, r = 1, alpha = 2 -> scaling 2.
    const c = tinyLlama({ hiddenSize: 2, intermediateSize: 2, numHiddenLayers: 1, numAttentionHeads: 1, numKeyValueHeads: 1, vocabSize: 3 });
    const lora: LoraConfig = { r: 1, alpha: 2, dropout: 0, targetModules: ['q_proj', 'embed_tokens'], bias: 'none', taskType: 'CAUSAL_LM' };
    const base = initParameters(c, { seed: 5 });
    const W = base.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight') as NamedTensor;
    const E = base[0] as NamedTensor;
    const adapter = [
      tensor('base_model.model.model.embed_tokens.lora_embedding_A', [1, 3], [1, 2, 3]), // A: [r, V]
      tensor('base_model.model.model.embed_tokens.lora_embedding_B', [2, 1], [10, 100]), // B: [D, r]
      tensor('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [1, 2], [1, -1]), // [r, in]
      tensor('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [2, 1], [3, 5]), // [out, r]
    ];
    const merged = mergeLora(c, base, adapter, lora);
    // q: B·A = [[3, -3], [5, -5]], times 2.
    const w = [...W.data];
    expect(merged.find((t) => t.name === W.name)?.data).toBeAllclose([w[0]! + 6, w[1]! - 6, w[2]! + 10, w[3]! - 10], F32);
    // embed: B·A = [[10, 20, 30], [100, 200, 300]] ([D, V]); transposed to [V, D], times 2.
    const e = [...E.data];
    expect(merged[0]?.data).toBeAllclose([e[0]! + 20, e[1]! + 200, e[2]! + 40, e[3]! + 400, e[4]! + 60, e[5]! + 600], F32);
    // Untouched tensors are passed through.
    const k = base.find((t) => t.name.endsWith('k_proj.weight'));
    expect(merged.find((t) => t.name.endsWith('k_proj.weight'))).toBe(k);
    expect(() => mergeLora(c, base, adapter.slice(1), lora)).toThrow("adapter: field 'base_model.model.model.embed_tokens.lora_embedding_A': missing tensor");
  });
});

describe('PEFT adapter folders', () => {
  it('writes adapter_config.json with PEFT fields and round-trips the tensors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-'));
    const c = tinyLlama();
    const lora: LoraConfig = {
      r: 4,
      alpha: 8,
      dropout: 0.1,
      targetModules: ['v_proj', 'q_proj'],
      bias: 'none',
      taskType: 'CAUSAL_LM',
      baseModelNameOrPath: 'base',
    };
    const tensors = loraParameterShapes(c, lora).map((p, i) => ({
      name: p.name,
      shape: p.shape,
      data: new Float32Array(p.shape[0]! * p.shape[1]!).fill(i / 8),
    }));
    saveAdapter(dir, lora, tensors, { model: c });
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.1,
      target_modules: ['q_proj', 'v_proj'],
      bias: 'none',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'base',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
    });
    const back = loadAdapter(dir, { model: c });
    expect(back.config).toEqual({ ...lora, targetModules: ['q_proj', 'v_proj'], useRslora: false });
    expect(back.tensors.map((t) => t.name).sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) expect(back.tensors.find((b) => b.name === t.name)?.data).toBeAllclose(t.data, EXACT);
    expect(() => loadAdapter(dir, { model: tinyLlama({ hiddenSize: 32 }) })).toThrow(
      "field 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': shape [4,16], expected [4,32]",
    );
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, use_dora: true }));
    expect(() => loadAdapter(dir)).toThrow(
      `${join(dir, 'adapter_config.json')}: field 'use_dora': true is not supported; expected false (DoRA is not supported)`,
    );
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, layers_to_transform: [0] }));
    expect(() => loadAdapter(dir)).toThrow("field 'layers_to_transform': [0] is not supported; expected null (every layer is adapted)");
    expect(loadAdapter(dir, { allowConfigFields: ['layers_to_transform'] }).config.r).toBe(4);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: 'q_proj|v_proj' }));
    expect(() => loadAdapter(dir)).toThrow(`field 'target_modules': expected a list of module names, got "q_proj|v_proj"`);
    expect(() => loadAdapter(join(dir, 'nope'))).toThrow('adapter_config.json: not found: not a PEFT adapter folder');
  });
});

describe('adapter_config.json fields', () => {
  // As PEFT 0.17 writes it for a Qwen3 model (the inert keys of newer PEFT versions included).
  const PEFT = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: 'Qwen/Qwen3-0.6B',
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 16,
    lora_bias: false,
    lora_dropout: 0.05,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    qalora_group_size: 16,
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
  };

  it('reads a PEFT-written config and gives Qwen3 (explicit head_dim) its adapter shapes', () => {
    const l = parseAdapterConfig(PEFT);
    expect([l.r, l.alpha, l.dropout, l.targetModules]).toEqual([8, 16, 0.05, ['q_proj', 'k_proj', 'v_proj', 'o_proj']]);
    const c = tinyQwen3({ hiddenSize: 16, numAttentionHeads: 2, numHiddenLayers: 1 }); // head_dim 8: q is [16, 16]
    const shapes = loraParameterShapes(c, l).map((p) => `${p.name} [${p.shape}]`);
    expect(shapes.slice(0, 4)).toEqual([
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [8,16]',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight [16,8]',
      'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight [8,16]',
      'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight [16,8]',
    ]);
  });

  it.each([
    [{ modules_to_save: ['lm_head'] }, `field 'modules_to_save': ["lm_head"] is not supported; expected null`],
    [{ lora_bias: true }, "field 'lora_bias': true is not supported; expected false"],
    [{ rank_pattern: { q_proj: 4 } }, `field 'rank_pattern': {"q_proj":4} is not supported`],
    [{ trainable_token_indices: [5] }, "field 'trainable_token_indices': [5] is not supported"],
    [{ use_qalora: true }, "field 'use_qalora': true is not supported"],
    [{ new_peft_feature: 1 }, "field 'new_peft_feature': unknown field (it may change the model)"],
  ])('refuses %j', (patch, message) => {
    expect(() => parseAdapterConfig({ ...PEFT, ...patch }, 'a/adapter_config.json')).toThrow(`a/adapter_config.json: ${message}`);
    const field = Object.keys(patch)[0] as string;
    expect(parseAdapterConfig({ ...PEFT, ...patch }, 'a/adapter_config.json', [field]).r).toBe(8);
  });
});
