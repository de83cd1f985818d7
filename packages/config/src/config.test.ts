import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineConfig, loadConfig } from './index.js';

const schema = z.object({
  name: z.string().describe('run name'),
  seed: z.number().int().default(42).describe('random seed'),
  bf16: z.boolean().default(true).describe('use bfloat16'),
  optim: z
    .object({
      lr: z.number().positive().default(1e-4).describe('peak learning rate'),
      weightDecay: z.number().min(0).default(0.01).describe('decoupled weight decay'),
    })
    .prefault({})
    .describe('optimizer'),
  schedule: z.enum(['linear', 'cosine', 'constant']).default('linear').describe('LR schedule'),
  mode: z
    .discriminatedUnion('kind', [
      z.object({ kind: z.literal('cot') }),
      z.object({ kind: z.literal('latent'), r: z.number().int().positive().describe('CoT tokens per latent') }),
    ])
    .default({ kind: 'cot' })
    .describe('training mode'),
});
const def = defineConfig(schema);

function tmpFile(value: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
  const file = join(dir, 'run.json');
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain('\n');
    return e as UserError;
  }
  throw new Error('expected an error');
}

describe('defineConfig', () => {
  it('flattens fields with dotted paths, union discriminators and defaults', () => {
    expect(def.fields.map((f) => f.path)).toEqual(['name', 'seed', 'bf16', 'optim.lr', 'optim.weightDecay', 'schedule', 'mode.kind', 'mode.r']);
    const byPath = Object.fromEntries(def.fields.map((f) => [f.path, f]));
    expect(byPath['mode.kind']).toMatchObject({ type: 'string', choices: ['cot', 'latent'], defaultValue: 'cot' });
    expect(byPath['mode.r']).toMatchObject({ type: 'number', when: { discriminator: 'mode.kind', values: ['latent'] } });
    expect(byPath['optim.lr']).toMatchObject({ hasDefault: true, defaultValue: 1e-4 });
    expect(byPath['name']?.hasDefault).toBe(false);
  });

  it('rejects a field without a description and unsupported types', () => {
    expect(() => defineConfig(z.object({ a: z.object({ b: z.number().describe('b') }).describe('a'), c: z.number() }))).toThrow(
      "config field 'c' has no description",
    );
    expect(() => defineConfig(z.object({ xs: z.array(z.number()).describe('xs') }))).toThrow("'xs': unsupported schema type 'array'");
  });
});

describe('loadConfig', () => {
  it('applies defaults, then the file, then flags, and freezes the result', () => {
    const file = tmpFile({ name: 'from-file', optim: { lr: 3e-4 }, mode: { kind: 'latent', r: 4 } });
    const c = loadConfig({ schema: def, file, overrides: { 'optim.weightDecay': 0, seed: 7 } });
    expect(c).toEqual({
      name: 'from-file',
      seed: 7,
      bf16: true,
      optim: { lr: 3e-4, weightDecay: 0 },
      schedule: 'linear',
      mode: { kind: 'latent', r: 4 },
    });
    expect(Object.isFrozen(c) && Object.isFrozen(c.optim)).toBe(true);
    const d = loadConfig({ schema: def, overrides: { name: 'x' } });
    expect(d.optim).toEqual({ lr: 1e-4, weightDecay: 0.01 });
    expect(d.mode).toEqual({ kind: 'cot' });
  });

  it('a flag overrides the same key in the file', () => {
    const file = tmpFile({ name: 'a', optim: { lr: 3e-4 } });
    expect(loadConfig({ schema: def, file, overrides: { 'optim.lr': 5e-5 } }).optim.lr).toBe(5e-5);
  });

  it('an unknown key in the file names the file and the key and suggests the closest', () => {
    const file = tmpFile({ name: 'a', optim: { lrr: 1 } });
    const e = errorOf(() => loadConfig({ schema: def, file, fileLabel: 'run.json', overrides: {} }));
    expect(e.message).toBe("run.json: field 'optim.lrr': unknown key (did you mean 'optim.lr'?)");
  });

  it('keys that name Object.prototype members are unknown keys, at any depth and in any variant', () => {
    const cases: Array<[string, string]> = [
      ['{"name":"a","__proto__":{"polluted":1}}', '__proto__'],
      ['{"name":"a","constructor":1}', 'constructor'],
      ['{"name":"a","toString":"x"}', 'toString'],
      ['{"name":"a","optim":{"hasOwnProperty":1}}', 'optim.hasOwnProperty'],
      ['{"name":"a","mode":{"kind":"latent","r":2,"valueOf":1}}', 'mode.valueOf'],
      ['{"name":"a","mode":{"kind":"cot","__proto__":{}}}', 'mode.__proto__'],
    ];
    for (const [text, field] of cases) {
      expect(errorOf(() => loadConfig({ schema: def, file: tmpFile(text), fileLabel: 'run.json' })).message).toMatch(
        new RegExp(`^run\\.json: field '${field.replace('.', '\\.')}': unknown key`),
      );
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(errorOf(() => loadConfig({ schema: def, overrides: { name: 'a', toString: 1 } })).message).toMatch(/^unknown flag '--toString'/);
  });

  it('an unknown flag names it and suggests the closest', () => {
    const e = errorOf(() => loadConfig({ schema: def, overrides: { name: 'a', 'optim.wieghtDecay': 0 } }));
    expect(e.message).toBe("unknown flag '--optim.wieghtDecay' (did you mean '--optim.weightDecay'?)");
  });

  it('a variant field under the wrong kind says which kind it belongs to', () => {
    const file = tmpFile({ name: 'a', mode: { kind: 'cot', r: 2 } });
    const e = errorOf(() => loadConfig({ schema: def, file, fileLabel: 'run.json' }));
    expect(e.message).toBe("run.json: field 'mode.r': unknown key: only valid when mode.kind is latent");
  });

  it('type errors name the field and the file or the flag', () => {
    const file = tmpFile({ name: 'a', optim: { lr: 'big' } });
    expect(errorOf(() => loadConfig({ schema: def, file, fileLabel: 'run.json' })).message).toMatch(
      /^run\.json: field 'optim\.lr': .*expected number, received string$/,
    );
    expect(errorOf(() => loadConfig({ schema: def, overrides: { name: 'a', seed: 1.5 } })).message).toMatch(/^flag '--seed': .*expected int/);
    expect(errorOf(() => loadConfig({ schema: def, overrides: { name: 'a', 'optim.lr': Number.NaN } })).message).toBe("flag '--optim.lr': not a number");
    expect(errorOf(() => loadConfig({ schema: def, overrides: { name: 'a', 'mode.kind': 'latent' } })).message).toMatch(
      /^config: field 'mode\.r': .*; set it in the config file or with --mode\.r$/,
    );
  });

  it('a missing required field and a bad file are one-line errors', () => {
    expect(errorOf(() => loadConfig({ schema: def })).message).toMatch(/^config: field 'name': .*with --name$/);
    expect(errorOf(() => loadConfig({ schema: def, file: tmpFile('{"name": '), fileLabel: 'bad.json' })).message).toMatch(/^bad\.json: invalid JSON/);
    expect(errorOf(() => loadConfig({ schema: def, file: '/nonexistent/run.json' })).message).toBe('/nonexistent/run.json: cannot read config file (ENOENT)');
    expect(errorOf(() => loadConfig({ schema: def, file: tmpFile([1]), fileLabel: 'arr.json' })).message).toBe(
      'arr.json: a config file must hold a JSON object',
    );
  });
});
