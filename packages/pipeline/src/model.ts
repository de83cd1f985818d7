// Model folders: HF checkpoints that carry their tokenizer files (as `save_pretrained` of model and
// tokenizer together), random-init bases, the compress-token resize of the encoder, LoRA init and
// host-tensor conversions.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { Rng, inputError } from '@latent-sft/core';
import {
  type LoraConfig,
  type ModelConfig,
  type NamedTensor,
  configFieldList,
  initParameters,
  loadCheckpoint,
  loraParameterShapes,
  parameterCount,
  parameterShapes,
  parseModelConfig,
  saveAdapter,
  saveCheckpoint,
} from '@latent-sft/models';
import { type LatentSpec, writeLatentSpec } from '@latent-sft/latent';
import type { HostTensor } from '@latent-sft/runtime';
import { type Tokenizer, type TokenizerName, VOCAB_SUBSET_FILE, loadTokenizer, materializeTokenizer } from '@latent-sft/tokenizer';
import { requireDir } from './run-dir.js';

/** A loaded model folder. */
export interface ModelDir {
  dir: string;
  config: ModelConfig;
  /** Every parameter as float32: read from the files on first use, then kept. */
  readonly tensors: NamedTensor[];
  /**
   * Host tensors for `specs` (graph inputs by name; each name minus `prefix` is a parameter of this folder) in
   * each spec's dtype: 16-bit ones read straight from the files (a checkpoint stored in that dtype as stored,
   * others rounded once), never through a float32 copy of the whole model; float32 ones from `tensors`.
   */
  readAs(specs: Readonly<Record<string, { dtype: string }>>, prefix?: string): Record<string, HostTensor>;
}

const TOKENIZER_FILE = /^(tokenizer(_config)?|special_tokens_map|vocab_subset)\.json$/;

/** Loads an HF checkpoint folder; `what` names it in errors (e.g. 'phase1 base (M0)'); `allow`: the allowConfigFields flag. */
export function loadModelDir(dir: string, what: string, allow = ''): ModelDir {
  requireDir(dir, what);
  const ck = loadCheckpoint(dir, { allowConfigFields: configFieldList(allow) });
  let all: NamedTensor[] | null = null;
  const m: ModelDir = {
    dir,
    config: ck.config,
    get tensors() {
      all ??= ck.readAll();
      return all;
    },
    readAs(specs, prefix = '') {
      const out: Record<string, HostTensor> = {};
      for (const [name, spec] of Object.entries(specs)) {
        if (!name.startsWith(prefix)) throw inputError({ field: name }, `expected a name under '${prefix}' for ${what}`);
        const hf = name.slice(prefix.length);
        const dims = [...ck.tensors.info(hf).shape];
        if (spec.dtype === 'bfloat16' || spec.dtype === 'float16') out[name] = { dtype: spec.dtype, dims, data: ck.read16(hf, spec.dtype) };
        else if (spec.dtype === 'float32') {
          // One tensor from its file (the whole model only when `tensors` already holds it).
          const data = all?.find((x) => x.name === hf)?.data ?? ck.read32(hf);
          out[name] = { dtype: 'float32', dims, data };
        } else throw inputError({ field: name }, `a ${spec.dtype} input cannot come from the weights of ${what}`);
      }
      return out;
    },
  };
  return m;
}

/** The tokenizer stored in a model folder; a folder without one is a one-line error. */
export async function loadModelTokenizer(dir: string, what: string): Promise<Tokenizer> {
  if (!existsSync(join(dir, 'tokenizer.json'))) throw inputError({ file: join(dir, 'tokenizer.json') }, `${what} has no tokenizer (missing tokenizer.json)`);
  return loadTokenizer(dir);
}

/** sha256 of a folder's tokenizer.json (+ vocab_subset.json if any): identifies the vocabulary in the latent-cache manifest. */
export function tokenizerSha(dir: string): string {
  const h = createHash('sha256').update(readFileSync(join(dir, 'tokenizer.json')));
  if (existsSync(join(dir, VOCAB_SUBSET_FILE))) h.update(readFileSync(join(dir, VOCAB_SUBSET_FILE)));
  return h.digest('hex');
}

/** Copies the tokenizer files of `from` into `to`. */
export function copyTokenizer(from: string, to: string): void {
  for (const f of readdirSync(from)) if (TOKENIZER_FILE.test(f)) copyFileSync(join(from, f), join(to, f));
}

/** Writes an HF checkpoint plus the tokenizer files of `tokenizerDir` (and the latent spec, if any) into `dir`. */
export function saveModelDir(dir: string, config: ModelConfig, tensors: readonly NamedTensor[], tokenizerDir: string, spec?: LatentSpec): void {
  saveCheckpoint(dir, config, tensors, { dtype: 'float32' });
  copyTokenizer(tokenizerDir, dir);
  if (spec !== undefined) writeLatentSpec(dir, spec);
}

/** Writes a PEFT adapter folder with the latent spec it was trained under (latent.json beside adapter_config.json). */
export function saveAdapterDir(dir: string, lora: LoraConfig, tensors: readonly NamedTensor[], o: { model: ModelConfig }, spec: LatentSpec): void {
  saveAdapter(dir, lora, tensors, o);
  writeLatentSpec(dir, spec);
}

/** A Llama-3-shaped config sized for CPU runs, with the tokenizer's vocabulary and special ids. */
export function tinyLlamaFor(tok: Tokenizer, o: { hiddenSize: number; intermediateSize: number; layers: number; heads: number; kvHeads: number }): ModelConfig {
  if (o.hiddenSize % o.heads !== 0) throw inputError({ field: 'base.heads' }, `hidden size ${o.hiddenSize} is not a multiple of ${o.heads} heads`);
  if (o.heads % o.kvHeads !== 0) throw inputError({ field: 'base.kvHeads' }, `${o.heads} heads are not a multiple of ${o.kvHeads} key/value heads`);
  return parseModelConfig(
    {
      model_type: 'llama',
      hidden_size: o.hiddenSize,
      intermediate_size: o.intermediateSize,
      num_hidden_layers: o.layers,
      num_attention_heads: o.heads,
      num_key_value_heads: o.kvHeads,
      head_dim: o.hiddenSize / o.heads,
      vocab_size: tok.vocabSize,
      max_position_embeddings: 4096,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      bos_token_id: tok.bosId ?? tok.eosId,
      eos_token_id: tok.eosId,
      torch_dtype: 'float32',
      initializer_range: 0.02,
      hidden_act: 'silu',
    },
    'tiny base',
  );
}

/**
 * Throws a one-line error naming the sizes when the float32 weights of `config` alone would not fit in
 * `memoryBytes` (default: this machine's memory), before anything is allocated.
 */
export function checkAllocatable(config: ModelConfig, field: string, memoryBytes = totalmem()): void {
  const sizes = `hidden ${config.hiddenSize}, MLP ${config.intermediateSize}, ${config.numHiddenLayers} layers and ${config.vocabSize} rows`;
  const largest = parameterShapes(config).reduce(
    (a, p) => (p.shape.reduce((x, y) => x * y, 1) > a.n ? { name: p.name, n: p.shape.reduce((x, y) => x * y, 1) } : a),
    { name: '', n: 0 },
  );
  if (largest.n > MAX_TENSOR_ELEMENTS) {
    throw inputError({ field }, `${sizes} make ${largest.name} ${largest.n.toExponential(2)} elements, more than one tensor can hold (${MAX_TENSOR_ELEMENTS})`);
  }
  const bytes = parameterCount(config) * 4;
  if (bytes > memoryBytes) {
    const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    throw inputError(
      { field },
      `${sizes} make ${parameterCount(config).toExponential(2)} parameters: ` +
        `${gb(bytes)} of float32 weights (about 4× that to train), more than the ${gb(memoryBytes)} of memory here`,
    );
  }
}

/** The longest typed array V8 allocates (2^32 − 1 elements). */
const MAX_TENSOR_ELEMENTS = 2 ** 32 - 1;

/** Throws unless `a` and `b` have the same architecture (vocabulary aside). */
export function checkSameArchitecture(a: ModelConfig, b: ModelConfig, what: string): void {
  for (const f of ['modelType', 'hiddenSize', 'intermediateSize', 'numHiddenLayers', 'numAttentionHeads', 'numKeyValueHeads', 'headDim'] as const) {
    if (a[f] !== b[f]) throw inputError({ field: what }, `${f} ${String(b[f])} differs from the base's ${String(a[f])}`);
  }
}

/**
 * E's weights: the base with one more embedding row for <|compress_token|> (id V), initialised to the
 * mean of the existing rows (transformers' resize_token_embeddings initialises new rows around that
 * mean; we take the mean itself: deterministic and in-distribution). An untied lm_head gets the same.
 */
export function resizeForCompress(config: ModelConfig, tensors: readonly NamedTensor[]): { config: ModelConfig; tensors: NamedTensor[] } {
  const V = config.vocabSize;
  const D = config.hiddenSize;
  const grow = (t: NamedTensor): NamedTensor => {
    const data = new Float32Array((V + 1) * D);
    data.set(t.data);
    const mean = new Float64Array(D);
    for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) mean[d] = (mean[d] as number) + (t.data[v * D + d] as number);
    for (let d = 0; d < D; d++) data[V * D + d] = (mean[d] as number) / V;
    return { name: t.name, shape: [V + 1, D], data };
  };
  const out = tensors.map((t) => (t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight' ? grow(t) : t));
  return { config: { ...config, vocabSize: V + 1 }, tensors: out };
}

/**
 * Fresh LoRA tensors as PEFT initialises them: linear A ~ U(±1/√in) (kaiming_uniform with a=√5),
 * B = 0; embedding A = 0, B ~ N(0, 1). The adapter starts as the identity change.
 */
export function initLora(config: ModelConfig, lora: LoraConfig, seed: number): NamedTensor[] {
  const root = Rng.fromSeed(seed);
  return loraParameterShapes(config, lora).map((s, i) => {
    const rng = root.fork(i);
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const embedding = s.name.includes('lora_embedding');
    if (embedding && s.kind === 'B') for (let j = 0; j < n; j++) data[j] = rng.normal();
    if (!embedding && s.kind === 'A') {
      const bound = 1 / Math.sqrt(s.shape[1] as number);
      for (let j = 0; j < n; j++) data[j] = (2 * rng.uniform() - 1) * bound;
    }
    return { name: s.name, shape: [...s.shape], data };
  });
}

/** Named float32 tensors as host tensors under `prefix`. */
export function toHost(tensors: readonly NamedTensor[], prefix = ''): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const t of tensors) out[prefix + t.name] = { dtype: 'float32', dims: [...t.shape], data: t.data };
  return out;
}

/** The tensors under `prefix` (prefix removed) of trained tensors. */
export function stripPrefix(tensors: readonly NamedTensor[], prefix: string): NamedTensor[] {
  return tensors.filter((t) => t.name.startsWith(prefix)).map((t) => ({ ...t, name: t.name.slice(prefix.length) }));
}

/** Only the weights a graph takes (a tied model's lm_head is never an input). */
export function withoutHead(config: ModelConfig, tensors: readonly NamedTensor[]): NamedTensor[] {
  return config.tieWordEmbeddings ? tensors.filter((t) => t.name !== 'lm_head.weight') : [...tensors];
}

/** The LoRA config of a phase from the app's lora block (alpha defaults to 2r as in the spec). */
export function loraOf(block: { r: number; alpha?: number | undefined; dropout: number }, taskType: LoraConfig['taskType'], embedTokens: boolean): LoraConfig {
  const targets: LoraConfig['targetModules'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  return {
    r: block.r,
    alpha: block.alpha ?? 2 * block.r,
    dropout: block.dropout,
    bias: 'none',
    taskType,
    targetModules: embedTokens ? [...targets, 'embed_tokens'] : targets,
  };
}

/** Sizes of a random-init Llama-3-shaped model. */
export interface TinySizes {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
}

/**
 * Writes a random-init model with the named tokenizer into `dir` (HF folder + tokenizer files) and
 * returns it: a base for cot-sft, and a stand-in M0 / M1 for tests of the later phases.
 */
export async function writeRandomModel(dir: string, tokenizer: TokenizerName, sizes: TinySizes, seed: number): Promise<ModelDir> {
  materializeTokenizer(tokenizer, dir);
  const tok = await loadTokenizer(dir);
  const config = tinyLlamaFor(tok, sizes);
  const tensors = initParameters(config, { seed });
  saveCheckpoint(dir, config, tensors, { dtype: 'float32' });
  return loadModelDir(dir, 'random model');
}
