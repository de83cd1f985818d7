// LoRA adapters in PEFT's on-disk format (adapter_config.json + adapter_model.safetensors, PEFT
// 0.15) and merging them into base weights.
// Names: PEFT wraps the model as `base_model.model.<module path>` and drops the adapter name on save:
//   CAUSAL_LM (XForCausalLM):        base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
//   FEATURE_EXTRACTION (AutoModel):  base_model.model.layers.0.self_attn.q_proj.lora_A.weight
// Linear: lora_A.weight [r, in], lora_B.weight [out, r]; delta = scaling · B·A ([out, in]).
// Embedding: lora_embedding_A [r, num_embeddings], lora_embedding_B [embedding_dim, r] (no `.weight`:
// they are ParameterDict entries); PEFT's Embedding.get_delta_weight is transpose(B @ A) · scaling,
// i.e. delta = scaling · (B·A)ᵀ ([num_embeddings, embedding_dim]), matching its forward
// embedding(x, Aᵀ) @ Bᵀ. scaling = alpha / r (alpha / sqrt(r) with use_rslora).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputError, writeJsonAtomic } from '@latent-sft/core';
import type { ModelConfig } from './config.js';
import type { NamedTensor } from './init.js';
import { openSafetensors, writeSafetensors } from './safetensors.js';
import { checkFiniteTensors } from './finite.js';

/** Modules a LoRA may target. */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'embed_tokens'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** A LoRA configuration (the PEFT fields used by Latent-SFT: r 64, alpha 128, dropout 0.1, bias none). */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: LoraTarget[];
  bias: 'none';
  taskType: 'CAUSAL_LM' | 'FEATURE_EXTRACTION';
  useRslora?: boolean;
  baseModelNameOrPath?: string | null;
}

/** One LoRA tensor: PEFT name, shape, and the HF (CausalLM) name of the base weight it adapts. */
export interface LoraParameterShape {
  name: string;
  shape: number[];
  baseName: string;
  kind: 'A' | 'B';
}

/** alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(l: Pick<LoraConfig, 'r' | 'alpha' | 'useRslora'>): number {
  return l.useRslora === true ? l.alpha / Math.sqrt(l.r) : l.alpha / l.r;
}

function checkLora(l: LoraConfig, file = 'adapter_config.json'): void {
  if (!Number.isSafeInteger(l.r) || l.r <= 0) throw inputError({ file, field: 'r' }, `expected a positive integer, got ${l.r}`);
  if (!Number.isFinite(l.alpha) || l.alpha <= 0) throw inputError({ file, field: 'lora_alpha' }, `expected a positive number, got ${l.alpha}`);
  if (!(l.dropout >= 0 && l.dropout < 1)) throw inputError({ file, field: 'lora_dropout' }, `expected 0 <= p < 1, got ${l.dropout}`);
  if (l.bias !== 'none') throw inputError({ file, field: 'bias' }, `only "none" is supported, got ${JSON.stringify(l.bias)}`);
  if (l.taskType !== 'CAUSAL_LM' && l.taskType !== 'FEATURE_EXTRACTION') {
    throw inputError({ file, field: 'task_type' }, `expected CAUSAL_LM or FEATURE_EXTRACTION, got ${JSON.stringify(l.taskType)}`);
  }
  if (l.targetModules.length === 0) throw inputError({ file, field: 'target_modules' }, 'empty');
  for (const m of l.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(m)) throw inputError({ file, field: 'target_modules' }, `unsupported module ${JSON.stringify(m)}`);
  }
}

/** The PEFT tensors of `lora` on model `c`, in module order. */
export function loraParameterShapes(c: ModelConfig, lora: LoraConfig): LoraParameterShape[] {
  checkLora(lora);
  const prefix = lora.taskType === 'CAUSAL_LM' ? 'base_model.model.model.' : 'base_model.model.';
  const t = new Set(lora.targetModules);
  const r = lora.r;
  const out: LoraParameterShape[] = [];
  if (t.has('embed_tokens')) {
    const baseName = 'model.embed_tokens.weight';
    out.push({ name: `${prefix}embed_tokens.lora_embedding_A`, shape: [r, c.vocabSize], baseName, kind: 'A' });
    out.push({ name: `${prefix}embed_tokens.lora_embedding_B`, shape: [c.hiddenSize, r], baseName, kind: 'B' });
  }
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const mods: Array<[LoraTarget, string, number, number]> = [
    ['q_proj', 'self_attn', q, c.hiddenSize],
    ['k_proj', 'self_attn', kv, c.hiddenSize],
    ['v_proj', 'self_attn', kv, c.hiddenSize],
    ['o_proj', 'self_attn', c.hiddenSize, q],
    ['gate_proj', 'mlp', c.intermediateSize, c.hiddenSize],
    ['up_proj', 'mlp', c.intermediateSize, c.hiddenSize],
    ['down_proj', 'mlp', c.hiddenSize, c.intermediateSize],
  ];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const [m, block, o, inp] of mods) {
      if (!t.has(m)) continue;
      const path = `layers.${i}.${block}.${m}`;
      const baseName = `model.${path}.weight`;
      out.push({ name: `${prefix}${path}.lora_A.weight`, shape: [r, inp], baseName, kind: 'A' });
      out.push({ name: `${prefix}${path}.lora_B.weight`, shape: [o, r], baseName, kind: 'B' });
    }
  }
  return out;
}

/** adapter_config.json as PEFT 0.15 writes it (target_modules sorted). */
export function adapterConfigJson(lora: LoraConfig): Record<string, unknown> {
  checkLora(lora);
  return {
    alpha_pattern: {},
    base_model_name_or_path: lora.baseModelNameOrPath ?? null,
    bias: lora.bias,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: lora.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...lora.targetModules].sort(),
    task_type: lora.taskType,
    use_dora: false,
    use_rslora: lora.useRslora ?? false,
  };
}

/** Options of saveAdapter / loadAdapter. */
export interface AdapterOptions {
  /** Model config to check tensor names and shapes against. */
  model?: ModelConfig;
  /** Storage dtype of the adapter weights (default F32). */
  dtype?: 'F32' | 'BF16';
  /** adapter_config.json fields to accept and ignore although unknown or unsupported (see parseAdapterConfig). */
  allowConfigFields?: readonly string[];
}

/** Writes adapter_config.json + adapter_model.safetensors atomically (tensors checked when `model` is given). */
export function saveAdapter(dir: string, lora: LoraConfig, tensors: readonly NamedTensor[], opts: AdapterOptions = {}): void {
  const file = join(dir, 'adapter_model.safetensors');
  if (opts.model !== undefined) checkAdapterTensors(opts.model, lora, tensors, file);
  writeSafetensors(
    file,
    tensors.map((t) => ({ name: t.name, dtype: opts.dtype ?? 'F32', shape: t.shape, data: t.data })),
    { format: 'pt' },
  );
  writeJsonAtomic(join(dir, 'adapter_config.json'), adapterConfigJson(lora));
}

function checkAdapterTensors(c: ModelConfig, lora: LoraConfig, tensors: ReadonlyArray<{ name: string; shape: readonly number[] }>, file: string): void {
  const expected = new Map(loraParameterShapes(c, lora).map((p) => [p.name, p.shape]));
  const seen = new Set<string>();
  for (const t of tensors) {
    const s = expected.get(t.name);
    if (s === undefined) throw inputError({ file, field: t.name }, 'not a tensor of this LoRA config');
    if (s.length !== t.shape.length || s.some((d, i) => d !== t.shape[i])) throw inputError({ file, field: t.name }, `shape [${t.shape}], expected [${s}]`);
    seen.add(t.name);
  }
  const missing = [...expected.keys()].find((n) => !seen.has(n));
  if (missing !== undefined) throw inputError({ file, field: missing }, 'missing tensor');
}

const empty = (v: unknown) =>
  v === undefined ||
  v === null ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

/** adapter_config.json fields read into LoraConfig. */
const ADAPTER_KNOWN = new Set(['peft_type', 'r', 'lora_alpha', 'lora_dropout', 'target_modules', 'bias', 'task_type', 'use_rslora', 'base_model_name_or_path']);
/** Fields that change nothing once the adapter is trained (initialisation, bookkeeping). */
const ADAPTER_INERT = new Set([
  'inference_mode',
  'init_lora_weights',
  'revision',
  'auto_mapping',
  'peft_version',
  'runtime_config',
  'megatron_core',
  'loftq_config',
  'eva_config',
  'corda_config',
  'qalora_group_size',
  'ensure_weight_tying',
]);
/** Fields that PEFT writes at a neutral value; any other value changes the model and is not implemented. */
const ADAPTER_NEUTRAL: Record<string, { ok: (v: unknown) => boolean; need: string }> = {
  fan_in_fan_out: { ok: (v) => v === false || v === undefined, need: 'false' },
  use_dora: { ok: (v) => v === false || v === undefined || v === null, need: 'false (DoRA is not supported)' },
  lora_bias: { ok: (v) => v === false || v === undefined, need: 'false (LoRA biases are not supported)' },
  use_qalora: { ok: (v) => v === false || v === undefined, need: 'false (QA-LoRA is not supported)' },
  rank_pattern: { ok: empty, need: '{} (per-module ranks are not supported)' },
  alpha_pattern: { ok: empty, need: '{} (per-module alphas are not supported)' },
  layers_to_transform: { ok: empty, need: 'null (every layer is adapted)' },
  layers_pattern: { ok: (v) => empty(v) || v === 'layers', need: 'null' },
  modules_to_save: { ok: empty, need: 'null (fully trained extra modules are not supported)' },
  exclude_modules: { ok: empty, need: 'null' },
  target_parameters: { ok: empty, need: 'null' },
  trainable_token_indices: { ok: empty, need: 'null' },
  layer_replication: { ok: empty, need: 'null' },
  megatron_config: { ok: empty, need: 'null' },
  alora_invocation_tokens: { ok: empty, need: 'null' },
  arrow_config: { ok: empty, need: 'null' },
};

/**
 * Parses adapter_config.json (PEFT) into a LoraConfig. An unknown field, or a known one at a value that
 * changes the model (layers_to_transform, modules_to_save, DoRA, ...), is a one-line error unless named
 * in `allowConfigFields` (then ignored).
 */
export function parseAdapterConfig(json: unknown, file = 'adapter_config.json', allowConfigFields: readonly string[] = []): LoraConfig {
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (o['peft_type'] !== 'LORA') throw inputError({ file, field: 'peft_type' }, `expected "LORA", got ${JSON.stringify(o['peft_type'])}`);
  const allowed = new Set(allowConfigFields);
  for (const [k, v] of Object.entries(o)) {
    if (ADAPTER_KNOWN.has(k) || ADAPTER_INERT.has(k) || allowed.has(k)) continue;
    const rule = ADAPTER_NEUTRAL[k];
    if (rule === undefined) throw inputError({ file, field: k }, 'unknown field (it may change the model); list it in allowConfigFields to load anyway');
    if (!rule.ok(v)) throw inputError({ file, field: k }, `${JSON.stringify(v)} is not supported; expected ${rule.need}`);
  }
  const targets = o['target_modules'];
  if (!Array.isArray(targets) || !targets.every((x) => typeof x === 'string')) {
    throw inputError({ file, field: 'target_modules' }, `expected a list of module names, got ${JSON.stringify(targets)}`);
  }
  const lora: LoraConfig = {
    r: o['r'] as number,
    alpha: o['lora_alpha'] as number,
    dropout: (o['lora_dropout'] ?? 0) as number,
    targetModules: targets as LoraTarget[],
    bias: o['bias'] as 'none',
    taskType: o['task_type'] as LoraConfig['taskType'],
    useRslora: o['use_rslora'] === true,
    baseModelNameOrPath: typeof o['base_model_name_or_path'] === 'string' ? (o['base_model_name_or_path'] as string) : null,
  };
  checkLora(lora, file);
  return lora;
}

/** A loaded adapter: config and float32 tensors. */
export interface LoadedAdapter {
  config: LoraConfig;
  tensors: NamedTensor[];
}

/** Reads a PEFT adapter folder (tensors checked when `model` is given). */
export function loadAdapter(dir: string, opts: AdapterOptions = {}): LoadedAdapter {
  const cfgPath = join(dir, 'adapter_config.json');
  const file = join(dir, 'adapter_model.safetensors');
  if (!existsSync(cfgPath)) throw inputError({ file: cfgPath }, 'not found: not a PEFT adapter folder');
  if (!existsSync(file)) throw inputError({ file }, 'not found');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw inputError({ file: cfgPath }, `not JSON (${(e as Error).message})`);
  }
  const config = parseAdapterConfig(json, cfgPath, opts.allowConfigFields);
  const st = openSafetensors(file);
  if (opts.model !== undefined) checkAdapterTensors(opts.model, config, st.tensors, file);
  const tensors = st.tensors.map((t) => ({ name: t.name, shape: t.shape, data: st.readTensor(t.name, { as: 'float32' }) as Float32Array }));
  checkFiniteTensors(tensors, file);
  return { config, tensors };
}

/**
 * Base weights with the adapter merged: W + scaling·B·A for Linear, W + scaling·(B·A)ᵀ for the
 * embedding. `base` uses HF CausalLM names (model.layers...); tensors not adapted are returned as is
 * (same objects). Computed in float64 per element, stored as float32.
 */
export function mergeLora(c: ModelConfig, base: readonly NamedTensor[], adapter: readonly NamedTensor[], lora: LoraConfig): NamedTensor[] {
  const shapes = loraParameterShapes(c, lora);
  checkAdapterTensors(c, lora, adapter, 'adapter');
  const byName = new Map(adapter.map((t) => [t.name, t]));
  const pairs = new Map<string, { a: NamedTensor; b: NamedTensor }>();
  for (let i = 0; i < shapes.length; i += 2) {
    const a = byName.get((shapes[i] as LoraParameterShape).name) as NamedTensor;
    const b = byName.get((shapes[i + 1] as LoraParameterShape).name) as NamedTensor;
    pairs.set((shapes[i] as LoraParameterShape).baseName, { a, b });
  }
  const scaling = loraScaling(lora);
  const r = lora.r;
  const found = new Set<string>();
  const out = base.map((w) => {
    const p = pairs.get(w.name);
    if (p === undefined) return w;
    found.add(w.name);
    const [rows, cols] = w.shape as [number, number];
    const merged = new Float32Array(w.data);
    const A = p.a.data;
    const B = p.b.data;
    if (w.name === 'model.embed_tokens.weight') {
      // delta[v, d] = scaling · Σ_k A[k, v] · B[d, k]   (A: [r, V], B: [D, r]); Aᵀ copied once.
      const At = new Float64Array(rows * r);
      for (let k = 0; k < r; k++) for (let v = 0; v < rows; v++) At[v * r + k] = A[k * rows + v] as number;
      for (let v = 0; v < rows; v++) {
        for (let d = 0; d < cols; d++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += (At[v * r + k] as number) * (B[d * r + k] as number);
          merged[v * cols + d] = (w.data[v * cols + d] as number) + scaling * s;
        }
      }
    } else {
      // delta[o, i] = scaling · Σ_k B[o, k] · A[k, i]   (A: [r, in], B: [out, r]); row-wise accumulation.
      const acc = new Float64Array(cols);
      for (let o = 0; o < rows; o++) {
        acc.fill(0);
        for (let k = 0; k < r; k++) {
          const b = B[o * r + k] as number;
          const off = k * cols;
          for (let i = 0; i < cols; i++) acc[i] = (acc[i] as number) + b * (A[off + i] as number);
        }
        for (let i = 0; i < cols; i++) merged[o * cols + i] = (w.data[o * cols + i] as number) + scaling * (acc[i] as number);
      }
    }
    return { name: w.name, shape: w.shape, data: merged };
  });
  const absent = [...pairs.keys()].find((n) => !found.has(n));
  if (absent !== undefined) throw inputError({ field: absent }, 'adapted base weight is missing from the base tensors');
  return out;
}
