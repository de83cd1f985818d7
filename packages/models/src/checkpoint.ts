// HF checkpoint folders: config.json + model.safetensors (+ generation_config.json), the layout
// `AutoModelForCausalLM.from_pretrained(dir)` loads unchanged. Loading accepts one file or a sharded
// `model.safetensors.index.json` and checks every tensor name and shape against the config.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputError, writeJsonAtomic } from '@latent-sft/core';
import { modelConfigToJson, parseModelConfig, type ModelConfig, type ParseConfigOptions } from './config.js';
import type { NamedTensor } from './init.js';
import { parameterShapes } from './params.js';
import { openSafetensors, openShardedSafetensors, writeSafetensors, type Dtype, type TensorSource } from './safetensors.js';
import { checkFinite16, checkFiniteTensors } from './finite.js';

const STORAGE: Record<ModelConfig['torchDtype'], Dtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

/** Checks that `tensors` are exactly the config's parameters with their shapes; `where` names the source. */
export function checkTensorsMatchConfig(c: ModelConfig, tensors: ReadonlyArray<{ name: string; shape: readonly number[] }>, where: string): void {
  const expected = new Map(parameterShapes(c).map((p) => [p.name, p.shape]));
  const seen = new Set<string>();
  for (const t of tensors) {
    // Tolerated extras: old checkpoints' rotary buffers, a tied lm_head saved anyway.
    if (t.name.endsWith('.rotary_emb.inv_freq') || (c.tieWordEmbeddings && t.name === 'lm_head.weight')) continue;
    const shape = expected.get(t.name);
    if (shape === undefined) throw inputError({ file: where, field: t.name }, `unexpected tensor for a ${c.numHiddenLayers}-layer ${c.modelType} config`);
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
      throw inputError({ file: where, field: t.name }, `shape [${t.shape}] but the config needs [${shape}]`);
    }
    seen.add(t.name);
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) {
    throw inputError({ file: where, field: missing[0] as string }, `missing tensor${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
  }
}

/** Options of saveCheckpoint. */
export interface SaveCheckpointOptions {
  /** Storage dtype; default the config's torch_dtype. */
  dtype?: ModelConfig['torchDtype'];
}

/** Writes config.json, generation_config.json and model.safetensors (format "pt") atomically. */
export function saveCheckpoint(dir: string, config: ModelConfig, tensors: readonly NamedTensor[], opts: SaveCheckpointOptions = {}): void {
  const dtype = opts.dtype ?? config.torchDtype;
  checkTensorsMatchConfig(config, tensors, join(dir, 'model.safetensors'));
  writeSafetensors(
    join(dir, 'model.safetensors'),
    tensors.map((t) => ({ name: t.name, dtype: STORAGE[dtype], shape: t.shape, data: t.data })),
    { format: 'pt' },
  );
  const gen: Record<string, unknown> = { _from_model_config: true, bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId };
  if (config.padTokenId !== null) gen['pad_token_id'] = config.padTokenId;
  writeJsonAtomic(join(dir, 'generation_config.json'), gen);
  writeJsonAtomic(join(dir, 'config.json'), { ...modelConfigToJson(config), [config.layout.dtypeKey]: dtype });
}

/** A loaded checkpoint: config and a lazy tensor source. */
export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  tensors: TensorSource;
  /** Reads every parameter (parameterShapes order) as float32; a NaN/±Inf is a one-line error naming the tensor. */
  readAll(): NamedTensor[];
  /**
   * Reads one parameter as 16-bit float bits straight from its file (stored in `dtype`: as stored; else rounded
   * once), without a float32 copy of the checkpoint; a NaN/±Inf is a one-line error naming the tensor.
   */
  read16(name: string, dtype: 'bfloat16' | 'float16'): Uint16Array;
  /** Reads one parameter as float32 (widened exactly from 16 bits), without reading the others; a NaN/±Inf is a one-line error naming it. */
  read32(name: string): Float32Array;
}

/** Opens an HF checkpoint folder and validates it against its config.json (`opts`: parseModelConfig's). */
export function loadCheckpoint(dir: string, opts: ParseConfigOptions = {}): LoadedCheckpoint {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw inputError({ file: cfgPath }, 'not found: not an HF checkpoint folder');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw inputError({ file: cfgPath }, `not JSON (${(e as Error).message})`);
  }
  const config = parseModelConfig(json, cfgPath, opts);
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  let tensors: TensorSource;
  let where: string;
  if (existsSync(single)) [tensors, where] = [openSafetensors(single), single];
  else if (existsSync(index)) [tensors, where] = [openShardedSafetensors(index), index];
  else throw inputError({ file: single }, 'not found (nor model.safetensors.index.json)');
  checkTensorsMatchConfig(config, tensors.tensors, where);
  return {
    dir,
    config,
    tensors,
    readAll: () => {
      const all = parameterShapes(config).map((p) => ({
        name: p.name,
        shape: p.shape,
        data: tensors.readTensor(p.name, { as: 'float32' }) as Float32Array,
      }));
      checkFiniteTensors(all, where);
      return all;
    },
    read16: (name, dtype) => {
      if (!tensors.has(name)) throw inputError({ file: where, field: name }, 'tensor not in the checkpoint');
      const data = tensors.readTensor(name, { as: dtype }) as Uint16Array;
      checkFinite16(data, dtype, name, where);
      return data;
    },
    read32: (name) => {
      if (!tensors.has(name)) throw inputError({ file: where, field: name }, 'tensor not in the checkpoint');
      const data = tensors.readTensor(name, { as: 'float32' }) as Float32Array;
      checkFiniteTensors([{ name, data }], where);
      return data;
    },
  };
}
