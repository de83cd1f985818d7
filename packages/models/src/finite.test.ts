// NaN / ±Inf weights are refused at load (checkpoint readAll: merge-lora, cache-latents, phases,
// eval/generate, inspect; PEFT adapters) in one line naming the file and the tensor.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { oneLineError } from '@latent-sft/testing';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { tinyLlama } from './config.js';
import { firstNonFinite } from './finite.js';
import { initParameters } from './init.js';
import { type LoraConfig, loadAdapter, loraParameterShapes, saveAdapter } from './lora.js';

/** The one-line UserError `fn` throws. */
function errorOf(fn: () => unknown): string {
  expect(fn).toThrow(UserError);
  return oneLineError(fn);
}

describe('finite weights at load', () => {
  it('finds the first NaN or ±Inf', () => {
    expect(firstNonFinite(new Float32Array([1, -2, 3e38]))).toBe(-1);
    expect(firstNonFinite(new Float32Array([1, Number.NaN, Infinity]))).toBe(1);
    expect(firstNonFinite(new Float32Array([0, 0, -Infinity]))).toBe(2);
    expect(firstNonFinite(new Float32Array(0))).toBe(-1);
  });

  it('a checkpoint or an adapter holding a NaN is a one-line error naming the tensor', () => {
    const c = tinyLlama();
    const dir = mkdtempSync(join(tmpdir(), 'nan-ckpt-'));
    const tensors = initParameters(c, { seed: 1 });
    saveCheckpoint(dir, c, tensors, { dtype: 'float32' });
    expect(loadCheckpoint(dir).readAll().length).toBe(tensors.length);
    const bad = tensors.find((t) => t.name === 'model.layers.0.mlp.up_proj.weight')!;
    bad.data[5] = Number.NaN;
    saveCheckpoint(dir, c, tensors, { dtype: 'float32' });
    expect(errorOf(() => loadCheckpoint(dir).readAll())).toBe(
      `${join(dir, 'model.safetensors')}: field 'model.layers.0.mlp.up_proj.weight': tensor holds NaN at element 5: the weights are damaged or come from a diverged run`,
    );

    const adir = mkdtempSync(join(tmpdir(), 'nan-adapter-'));
    const lora: LoraConfig = { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], bias: 'none', taskType: 'CAUSAL_LM' };
    const ad = loraParameterShapes(c, lora).map((p) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.shape[0]! * p.shape[1]!) }));
    ad[1]!.data[0] = -Infinity;
    saveAdapter(adir, lora, ad, { model: c });
    expect(errorOf(() => loadAdapter(adir, { model: c }))).toMatch(
      new RegExp(`^${join(adir, 'adapter_model.safetensors')}: field '${ad[1]!.name.replaceAll('.', '\\.')}': tensor holds -Infinity at element 0`),
    );
  });
});
