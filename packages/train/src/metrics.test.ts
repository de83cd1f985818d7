import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsWriter, NonFiniteError, checkFinite } from './metrics.js';
import { readMetrics } from './index.js';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'metrics-')), 'metrics.jsonl');

describe('MetricsWriter', () => {
  it('appends one line per record, readable right away', () => {
    const path = tmp();
    const w = MetricsWriter.open(path);
    w.append({ step: 1, loss: 2.5, lr: 1e-4 });
    expect(readFileSync(path, 'utf8')).toBe('{"step":1,"loss":2.5,"lr":0.0001}\n');
    w.append({ step: 2, loss: 0.1 + 0.2 });
    w.close();
    expect(readMetrics(path)).toEqual([
      { step: 1, loss: 2.5, lr: 1e-4 },
      { step: 2, loss: 0.1 + 0.2 },
    ]);
  });

  it('refuses to overwrite a non-empty file unless resuming', () => {
    const path = tmp();
    writeFileSync(path, '{"step":1}\n');
    expect(() => MetricsWriter.open(path)).toThrow(`${path}: metrics file already exists`);
  });

  it('resume drops records after the resumed step and a torn last line', () => {
    const path = tmp();
    const w = MetricsWriter.open(path);
    for (let s = 1; s <= 5; s++) w.append({ step: s, loss: s });
    w.close();
    appendFileSync(path, '{"step":6,"lo');
    expect(readMetrics(path).map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    const r = MetricsWriter.open(path, { resumeStep: 3 });
    r.append({ step: 4, loss: 40 });
    r.close();
    expect(readMetrics(path)).toEqual([
      { step: 1, loss: 1 },
      { step: 2, loss: 2 },
      { step: 3, loss: 3 },
      { step: 4, loss: 40 },
    ]);
  });

  it('a corrupt line in the middle names the file and line', () => {
    const path = tmp();
    writeFileSync(path, '{"step":1}\nnot json\n{"step":3}\n');
    expect(() => readMetrics(path)).toThrow(`${path}:2: invalid JSON line`);
  });
});

describe('checkFinite', () => {
  it('passes finite values and names the step and the last good checkpoint otherwise', () => {
    expect(() => checkFinite({ step: 3, loss: 1, gradNorm: 2, lastGoodCheckpoint: null })).not.toThrow();
    const f = () => checkFinite({ step: 12, loss: 1, gradNorm: Number.POSITIVE_INFINITY, lastGoodCheckpoint: 'out/step-000010' });
    expect(f).toThrow(NonFiniteError);
    expect(f).toThrow('non-finite grad norm Infinity at step 12; last good checkpoint: out/step-000010');
  });
});
