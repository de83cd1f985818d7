// Config-level refusals of the phase apps that need no model: a loss that trains nothing, the
// run-control flags every resumable app has.
import { configHash, loadConfig } from '@latent-sft/config';
import { describe, expect, it } from 'vitest';
import { RUN_CONTROL_KEYS } from './run-dir.js';
import { cacheLatentsConfig, cotSftConfig, phase1EncoderConfig, phase1UnionConfig, phase2Config } from './schemas.js';

describe('phase app schemas', () => {
  it('phase 2 refuses ceWeight 0 with klWeight 0 (by flag or file), accepts either alone', () => {
    const base = { out: 'o', model: 'm', cache: 'c' };
    expect(() => loadConfig({ schema: phase2Config, overrides: { ...base, ceWeight: 0, klWeight: 0 } })).toThrow(
      "flag '--klWeight': ceWeight and klWeight are both 0: the loss would train nothing; give one of them a positive weight",
    );
    expect(loadConfig({ schema: phase2Config, overrides: { ...base, ceWeight: 0 } }).klWeight).toBe(1);
    expect(loadConfig({ schema: phase2Config, overrides: { ...base, klWeight: 0 } }).ceWeight).toBe(1);
  });

  it('cot-sft refuses bfloat16 parameters without bfloat16 compute; float32 masters are the default', () => {
    expect(() => loadConfig({ schema: cotSftConfig, overrides: { out: 'o', params: 'bfloat16' } })).toThrow(
      "flag '--params': bfloat16 parameters need compute bfloat16 (the forward reads them as they are)",
    );
    expect(loadConfig({ schema: cotSftConfig, overrides: { out: 'o', params: 'bfloat16', compute: 'bfloat16' } }).params).toBe('bfloat16');
    expect(loadConfig({ schema: cotSftConfig, overrides: { out: 'o' } }).params).toBe('float32');
  });

  it('the training apps take --recompute none (default) | layers, a run-control key (same config hash); another value is a one-line error naming the flag', () => {
    const base = { out: 'o', model: 'm', cache: 'c' };
    const [none, layers] = [
      loadConfig({ schema: phase2Config, overrides: base }),
      loadConfig({ schema: phase2Config, overrides: { ...base, recompute: 'layers' } }),
    ];
    expect([none.recompute, layers.recompute]).toEqual(['none', 'layers']);
    expect(configHash(layers, RUN_CONTROL_KEYS)).toBe(configHash(none, RUN_CONTROL_KEYS));
    expect(() => loadConfig({ schema: phase2Config, overrides: { ...base, recompute: 'all' } })).toThrow(
      /^flag '--recompute': Invalid option: expected one of "none"\|"layers"$/,
    );
    for (const schema of [cotSftConfig, phase1EncoderConfig, phase1UnionConfig, phase2Config]) {
      expect(schema.fields.find((f) => f.path === 'recompute')).toMatchObject({ defaultValue: 'none' });
    }
  });

  it('cache-latents takes --compute float32 (default) | float16 | bfloat16 (CUDA only); other values are one-line errors naming the flag', () => {
    const base = { out: 'o', encoder: 'e', decoder: 'd' };
    expect(loadConfig({ schema: cacheLatentsConfig, overrides: base }).compute).toBe('float32');
    expect(loadConfig({ schema: cacheLatentsConfig, overrides: { ...base, compute: 'float16' } }).compute).toBe('float16');
    expect(loadConfig({ schema: cacheLatentsConfig, overrides: { ...base, compute: 'bfloat16', device: 'cuda' } }).compute).toBe('bfloat16');
    expect(() => loadConfig({ schema: cacheLatentsConfig, overrides: { ...base, compute: 'bf16' } })).toThrow(
      /^flag '--compute': Invalid option: expected one of "float32"\|"float16"\|"bfloat16"$/,
    );
    expect(() => loadConfig({ schema: cacheLatentsConfig, overrides: { ...base, compute: 'bfloat16' } })).toThrow(
      "flag '--compute': bfloat16 needs --device cuda (ONNX Runtime's CPU provider lacks bfloat16 kernels: MatMul, Mul); use float16 or float32 on the CPU",
    );
  });

  it('every resumable app takes --allowConfigChange (default false)', () => {
    for (const schema of [cotSftConfig, phase1EncoderConfig, cacheLatentsConfig, phase2Config]) {
      expect(schema.fields.find((f) => f.path === 'allowConfigChange')).toMatchObject({ type: 'boolean', defaultValue: false });
    }
  });
});
