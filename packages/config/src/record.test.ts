import { describe, expect, it } from 'vitest';
import { canonicalJson } from './record.js';
import { configDiff, configHash, configRecord } from './index.js';
import { closest, levenshtein } from './suggest.js';

describe('configRecord', () => {
  it('records app, version, time and a key-order independent hash', () => {
    const r = configRecord({ b: 1, a: { d: [1, 2], c: 'x' } }, { app: 'train-cot', version: 2, createdAt: new Date(0) });
    expect(r).toEqual({
      app: 'train-cot',
      schemaVersion: 2,
      createdAt: '1970-01-01T00:00:00.000Z',
      configHash: configHash({ a: { c: 'x', d: [1, 2] }, b: 1 }),
      config: { b: 1, a: { d: [1, 2], c: 'x' } },
    });
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,2]},"b":1}');
    expect(r.configHash).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash({ a: 1 })).not.toBe(configHash({ a: 2 }));
    expect(() => configRecord({}, { app: 'x', version: 0, createdAt: 'now' })).toThrow('schema version');
  });

  it('leaves run-control keys out of the hash and lists the fields that really changed', () => {
    const meta = { app: 'a', version: 1, createdAt: 'now', ignore: ['resume', 'out'] };
    const first = configRecord({ out: '/a', resume: false, train: { lr: 1, steps: 3 } }, meta);
    const resumed = configRecord({ out: '/b', resume: true, train: { lr: 1, steps: 3 } }, meta);
    const changed = configRecord({ out: '/a', resume: true, train: { lr: 2, steps: 3 }, seed: 5 }, meta);
    expect(resumed.configHash).toBe(first.configHash);
    expect(changed.configHash).not.toBe(first.configHash);
    expect(configRecord({ resume: true }, { ...meta, ignore: [] }).configHash).not.toBe(configRecord({ resume: false }, { ...meta, ignore: [] }).configHash);
    expect(configDiff(first.config, resumed.config, meta.ignore)).toEqual([]);
    expect(configDiff(first.config, changed.config, meta.ignore)).toEqual(['seed: unset → 5', 'train.lr: 1 → 2']);
  });
});

describe('suggestions', () => {
  it('levenshtein counts edits and closest keeps within the threshold', () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(closest('optim.lrr', ['optim.lr', 'seed'])).toBe('optim.lr');
    expect(closest('zzzzzz', ['optim.lr', 'seed'])).toBeUndefined();
  });
});
