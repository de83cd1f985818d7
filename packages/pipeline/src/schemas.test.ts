// Config-level refusals of the phase apps that need no model: a loss that trains nothing, the
// run-control flags every resumable app has.
import { loadConfig } from '@latent-sft/config';
import { describe, expect, it } from 'vitest';
import { cacheLatentsConfig, cotSftConfig, phase1EncoderConfig, phase2Config } from './schemas.js';

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

  it('every resumable app takes --allowConfigChange (default false)', () => {
    for (const schema of [cotSftConfig, phase1EncoderConfig, cacheLatentsConfig, phase2Config]) {
      expect(schema.fields.find((f) => f.path === 'allowConfigChange')).toMatchObject({ type: 'boolean', defaultValue: false });
    }
  });
});
