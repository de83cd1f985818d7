import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelConfigToJson, parseModelConfig, tinyLlama, tinyQwen2 } from './config.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { float32ToBf16Bits, float32ToF16Bits, roundToBf16 } from './dtype.js';
import { initParameters } from './init.js';
import { parameterShapes } from './params.js';
import { writeSafetensors } from './safetensors.js';

const EXACT = { atol: 0, rtol: 0 };
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ckpt-'));

describe('initParameters', () => {
  it('follows HF: normal(0, 0.02) weights, zero biases, unit norms; deterministic per seed', () => {
    const c = tinyQwen2({ hiddenSize: 64, intermediateSize: 128, vocabSize: 512 });
    const p = initParameters(c, { seed: 7 });
    expect(p.map((t) => t.name)).toEqual(parameterShapes(c).map((s) => s.name));
    const all: number[] = [];
    for (const t of p) {
      if (t.name.endsWith('norm.weight')) expect([...t.data].every((x) => x === 1)).toBe(true);
      else if (t.name.endsWith('.bias')) expect([...t.data].every((x) => x === 0)).toBe(true);
      else for (const x of t.data) all.push(x);
    }
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length);
    // ~150k samples: standard error of the mean 0.02/sqrt(n) ≈ 5e-5, of the std ≈ 4e-5.
    expect(all.length).toBeGreaterThan(100_000);
    expect(mean).toBeAllclose(0, { atol: 3e-4, rtol: 0 });
    expect(std).toBeAllclose(0.02, { atol: 3e-4, rtol: 0 });
    const again = initParameters(c, { seed: 7 });
    for (let i = 0; i < p.length; i++) expect(again[i]?.data).toBeAllclose(p[i]?.data as Float32Array, EXACT);
    const other = initParameters(c, { seed: 8 });
    expect(other[0]?.data[0]).not.toBe(p[0]?.data[0]);
  });

  it('omits lm_head for tied models, zeroes the pad row, rounds to bf16 on request', () => {
    const tied = initParameters(tinyLlama(), { seed: 1 });
    expect(tied.some((t) => t.name === 'lm_head.weight')).toBe(false);
    const untied = initParameters(tinyLlama({ tieWordEmbeddings: false }), { seed: 1 });
    expect(untied.at(-1)?.name).toBe('lm_head.weight');
    const c = parseModelConfig({ ...modelConfigToJson(tinyLlama()), pad_token_id: 3 });
    const emb = initParameters(c, { seed: 1 })[0]?.data as Float32Array;
    expect([...emb.subarray(3 * 16, 4 * 16)].every((x) => x === 0)).toBe(true);
    expect([...emb.subarray(2 * 16, 3 * 16)].some((x) => x !== 0)).toBe(true);
    const b = initParameters(tinyLlama(), { seed: 1, dtype: 'bfloat16' });
    const w = b[1]?.data as Float32Array;
    expect(w).toBeAllclose([...w].map(roundToBf16), EXACT);
  });
});

describe('checkpoint folders', () => {
  it('saves config.json, generation_config.json and model.safetensors and loads them back', () => {
    const dir = tmp();
    const c = tinyQwen2({ torchDtype: 'bfloat16' });
    const p = initParameters(c, { seed: 3, dtype: 'bfloat16' });
    saveCheckpoint(dir, c, p);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect([cfg.architectures, cfg.model_type, cfg.torch_dtype]).toEqual([['Qwen2ForCausalLM'], 'qwen2', 'bfloat16']);
    expect(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'))).toEqual({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2 });
    const loaded = loadCheckpoint(dir);
    expect(loaded.config).toEqual(c);
    expect(loaded.tensors.metadata).toEqual({ format: 'pt' });
    expect(loaded.tensors.info('model.embed_tokens.weight').dtype).toBe('BF16');
    const back = loaded.readAll();
    for (let i = 0; i < p.length; i++) expect(back[i]?.data).toBeAllclose(p[i]?.data as Float32Array, EXACT);
  });

  it('read16: a bf16 checkpoint read as bf16 bit for bit, as float16 rounded once; a value float16 cannot hold is a one-line error', () => {
    const dir = tmp();
    const c = tinyQwen2({ torchDtype: 'bfloat16' });
    const p = initParameters(c, { seed: 4, dtype: 'bfloat16' });
    saveCheckpoint(dir, c, p);
    const ck = loadCheckpoint(dir);
    for (const t of p) {
      expect([...ck.read16(t.name, 'bfloat16')], t.name).toEqual([...t.data].map(float32ToBf16Bits));
      expect([...ck.read16(t.name, 'float16')], t.name).toEqual([...t.data].map(float32ToF16Bits));
    }
    const big = p.map((t) => (t.name === 'model.norm.weight' ? { ...t, data: t.data.map((v, i) => (i === 3 ? 1e5 : v)) } : t));
    const dir2 = tmp();
    saveCheckpoint(dir2, c, big, { dtype: 'float32' });
    expect(() => loadCheckpoint(dir2).read16('model.norm.weight', 'float16')).toThrow(
      /model\.safetensors.*model\.norm\.weight.*NaN or ±Inf as float16 at element 3/,
    );
    expect(loadCheckpoint(dir2).read16('model.norm.weight', 'bfloat16')[3]).toBe(float32ToBf16Bits(1e5));
    expect(() => ck.read16('lm_head.nope', 'bfloat16')).toThrow(/lm_head\.nope.*not in the checkpoint/);
  });

  it("read32: one parameter as float32 from its file, equal to readAll's; a missing name or a NaN is a one-line error", () => {
    const dir = tmp();
    const c = tinyQwen2({ torchDtype: 'bfloat16' });
    saveCheckpoint(dir, c, initParameters(c, { seed: 5, dtype: 'bfloat16' }));
    const ck = loadCheckpoint(dir);
    const all = ck.readAll();
    for (const t of all) expect(ck.read32(t.name), t.name).toBeAllclose(t.data, EXACT);
    expect(() => ck.read32('lm_head.nope')).toThrow(/lm_head\.nope.*not in the checkpoint/);
    const dir2 = tmp();
    const p = initParameters(c, { seed: 5 }).map((t) =>
      t.name === 'model.norm.weight' ? { ...t, data: t.data.map((v, i) => (i === 2 ? Number.NaN : v)) } : t,
    );
    saveCheckpoint(dir2, c, p, { dtype: 'float32' });
    expect(() => loadCheckpoint(dir2).read32('model.norm.weight')).toThrow(/model\.norm\.weight/);
    expect(loadCheckpoint(dir2).read32('model.embed_tokens.weight').length).toBeGreaterThan(0); // the others stay readable
  });

  it('reports missing files, missing and mismatched tensors in one line', () => {
    const dir = tmp();
    expect(() => loadCheckpoint(dir)).toThrow(`${join(dir, 'config.json')}: not found: not an HF checkpoint folder`);
    const c = tinyLlama();
    const p = initParameters(c, { seed: 1 });
    saveCheckpoint(dir, c, p);
    rmSync(join(dir, 'model.safetensors'));
    expect(() => loadCheckpoint(dir)).toThrow(`${join(dir, 'model.safetensors')}: not found (nor model.safetensors.index.json)`);
    const st = join(dir, 'model.safetensors');
    writeSafetensors(
      st,
      p.slice(1).map((t) => ({ ...t, dtype: 'F32' as const })),
    );
    expect(() => loadCheckpoint(dir)).toThrow(`${st}: field 'model.embed_tokens.weight': missing tensor`);
    writeSafetensors(
      st,
      p.map((t, i) => ({ ...t, dtype: 'F32' as const, ...(i === 2 ? { shape: [t.shape[1] as number, t.shape[0] as number] } : {}) })),
    );
    expect(() => loadCheckpoint(dir)).toThrow(`${st}: field 'model.layers.0.self_attn.k_proj.weight': shape [16,8] but the config needs [8,16]`);
    writeSafetensors(
      st,
      [...p, { name: 'model.layers.2.mlp.up_proj.weight', shape: [1], data: new Float32Array(1) }].map((t) => ({ ...t, dtype: 'F32' as const })),
    );
    expect(() => loadCheckpoint(dir)).toThrow(`${st}: field 'model.layers.2.mlp.up_proj.weight': unexpected tensor for a 2-layer llama config`);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...modelConfigToJson(c), num_hidden_layers: 0 }));
    expect(() => loadCheckpoint(dir)).toThrow(`${join(dir, 'config.json')}: field 'num_hidden_layers': expected a positive integer, got 0`);
    expect(() => saveCheckpoint(tmp(), c, p.slice(0, 3))).toThrow("field 'model.layers.0.self_attn.v_proj.weight': missing tensor (and");
  });
});

describe('HF-written fixtures (tools/reference/model_goldens.py, transformers save_pretrained)', () => {
  const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures');
  it.each(['tiny-llama', 'tiny-qwen2'])('%s loads, validates, and rewrites byte for byte', (name) => {
    const dir = join(fixtures, name);
    const loaded = loadCheckpoint(dir);
    expect(loaded.config.modelType).toBe(name === 'tiny-llama' ? 'llama' : 'qwen2');
    expect(loaded.config.tieWordEmbeddings).toBe(name === 'tiny-llama');
    const tensors = loaded.readAll();
    expect(tensors.map((t) => t.name)).toEqual(parameterShapes(loaded.config).map((p) => p.name));
    // All F32, so the safetensors writer's (alignment, name) order is our name order: identical bytes.
    const out = join(tmp(), 'model.safetensors');
    writeSafetensors(
      out,
      tensors.map((t) => ({ ...t, dtype: 'F32' as const })),
      { format: 'pt' },
    );
    expect(readFileSync(out).equals(readFileSync(join(dir, 'model.safetensors')))).toBe(true);
  });
});
