import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llama32_1b, tinyLlama } from './config.js';
import type { NamedTensor } from './init.js';
import { initParameters } from './init.js';
import { loadAdapter, loraParameterShapes, loraScaling, mergeLora, saveAdapter, type LoraConfig } from './lora.js';

const EXACT = { atol: 0, rtol: 0 };
const F32 = { atol: 1e-7, rtol: 1e-6 };
const ALL: LoraConfig['targetModules'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('LoRA shapes and names', () => {
  it('uses PEFT names for CAUSAL_LM and FEATURE_EXTRACTION', () => {
    const dec = loraParameterShapes(llama32_1b(), { r: 64, alpha: 128, dropout: 0.1, targetModules: ALL, bias: 'none', taskType: 'CAUSAL_LM' });
    expect(dec.length).toBe(16 * 7 * 2);
    expect(dec.slice(0, 2)).toEqual([
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [64, 2048], baseName: 'model.layers.0.self_attn.q_proj.weight', kind: 'A' },
      { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', shape: [2048, 64], baseName: 'model.layers.0.self_attn.q_proj.weight', kind: 'B' },
    ]);
    expect(dec.find((p) => p.name.includes('k_proj.lora_B'))?.shape).toEqual([512, 64]);
    expect(dec.find((p) => p.name.includes('down_proj.lora_A'))?.shape).toEqual([64, 8192]);
    const enc = loraParameterShapes(llama32_1b(), { r: 64, alpha: 128, dropout: 0.1, targetModules: [...ALL, 'embed_tokens'], bias: 'none', taskType: 'FEATURE_EXTRACTION' });
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
    expect(() => loraParameterShapes(tinyLlama(), { ...l, r: 2, targetModules: ['lm_head' as 'q_proj'] }))
      .toThrow(`field 'target_modules': unsupported module "lm_head"`);
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
    const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: ['v_proj', 'q_proj'], bias: 'none', taskType: 'CAUSAL_LM', baseModelNameOrPath: 'base' };
    const tensors = loraParameterShapes(c, lora).map((p, i) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.shape[0]! * p.shape[1]!).fill(i / 8) }));
    saveAdapter(dir, lora, tensors, { model: c });
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'], bias: 'none',
      task_type: 'CAUSAL_LM', base_model_name_or_path: 'base', fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, modules_to_save: null });
    const back = loadAdapter(dir, { model: c });
    expect(back.config).toEqual({ ...lora, targetModules: ['q_proj', 'v_proj'], useRslora: false });
    expect(back.tensors.map((t) => t.name).sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) expect(back.tensors.find((b) => b.name === t.name)?.data).toBeAllclose(t.data, EXACT);
    expect(() => loadAdapter(dir, { model: tinyLlama({ hiddenSize: 32 }) })).toThrow("field 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': shape [4,16], expected [4,32]");
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, use_dora: true }));
    expect(() => loadAdapter(dir)).toThrow(`${join(dir, 'adapter_config.json')}: field 'use_dora': DoRA is not supported`);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: 'q_proj|v_proj' }));
    expect(() => loadAdapter(dir)).toThrow(`field 'target_modules': expected a list of module names, got "q_proj|v_proj"`);
    expect(() => loadAdapter(join(dir, 'nope'))).toThrow('adapter_config.json: not found: not a PEFT adapter folder');
  });
});
