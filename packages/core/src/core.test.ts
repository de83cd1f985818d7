import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AtomicWriter, writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { inputError, isUserError } from './errors.js';
import { createProgress, formatDuration } from './progress.js';
import type { Logger } from './logger.js';
import { LogOutput } from './terminal.js';

describe('atomic writes', () => {
  it('publishes only on commit and leaves the old file on abort', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'sub', 'out.json');
    writeJsonAtomic(target, { a: 1 });
    expect(JSON.parse(readFileSync(target, 'utf8'))).toEqual({ a: 1 });
    const w = new AtomicWriter(target);
    w.write('{"a": 2');
    expect(JSON.parse(readFileSync(target, 'utf8'))).toEqual({ a: 1 }); // not yet visible
    w.abort();
    expect(JSON.parse(readFileSync(target, 'utf8'))).toEqual({ a: 1 });
    expect(readdirSync(join(dir, 'sub'))).toEqual(['out.json']); // no temp file left
    writeFileAtomic(target, new Uint8Array([104, 105]));
    expect(readFileSync(target, 'utf8')).toBe('hi');
  });

  it('does not touch the target when the write fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'x.txt');
    writeFileSync(target, 'old');
    const w = new AtomicWriter(target);
    w.commit();
    expect(() => w.write('late')).toThrow(/closed/);
    expect(existsSync(target)).toBe(true);
  });
});

describe('errors', () => {
  it('formats file:line: field: message on one line', () => {
    const e = inputError({ file: 'data/x.jsonl', line: 3, field: 'answer' }, 'not a number:\n  "abc"');
    expect(e.message).toBe(`data/x.jsonl:3: field 'answer': not a number: "abc"`);
    expect(isUserError(e)).toBe(true);
    expect(isUserError(new Error('x'))).toBe(false);
  });
});

function recordingLogger(): { logger: Logger; records: Array<{ obj: Record<string, unknown>; msg?: string }> } {
  const records: Array<{ obj: Record<string, unknown>; msg?: string }> = [];
  const logger: Logger = {
    info: (obj, msg) => records.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }),
    warn() {},
    error() {},
    debug() {},
    child: () => logger,
  };
  return { logger, records };
}

describe('progress', () => {
  it('logs periodic records with rate and ETA when not on a TTY', () => {
    let t = 0;
    const { logger, records } = recordingLogger();
    const p = createProgress({ total: 10, label: 'train', logger, intervalMs: 1000, now: () => t });
    for (let i = 0; i < 10; i++) {
      t += 500;
      p.tick(1, { loss: 2 - i / 10 });
    }
    p.done();
    // Records at t=1000,2000,...,5000 plus the final one.
    expect(records.map((r) => r.msg)).toEqual(['progress', 'progress', 'progress', 'progress', 'progress', 'finished']);
    expect(records[0]?.obj).toMatchObject({ label: 'train', done: 2, total: 10, perSecond: 2, etaS: 4, loss: 1.9 });
    expect(records[5]?.obj).toMatchObject({ done: 10, etaS: 0 });
  });

  it('draws a bar with ETA on a TTY', () => {
    let t = 0;
    const out: string[] = [];
    const { logger: plain, records } = recordingLogger();
    const output = new LogOutput({ isTTY: true, columns: 200, write: (s: string) => out.push(s) });
    const logger: Logger = { ...plain, output };
    const p = createProgress({ total: 4, label: 'eval', logger, now: () => t });
    t = 1000;
    p.tick(1);
    t = 2000;
    p.tick(1);
    p.done();
    expect(records).toEqual([]);
    expect(out[1]).toContain('eval [############------------] 2/4 50% 1.00/s elapsed 0:02 ETA 0:02');
    expect(out.at(-1)).toBe('\n');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});
