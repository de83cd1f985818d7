// summarizeProfile over a hand-written ORT trace: per-op and per-node totals after each node's first run,
// the first runs apart, runs counted, other events ignored.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarizeProfile } from './index.js';

describe('summarizeProfile', () => {
  it('sums kernel times per op type and per node after each first run, ignoring other events', () => {
    const ev = (name: string, op: string, ts: number, dur: number) => ({ cat: 'Node', name, ts, dur, args: { op_name: op } });
    const trace = [
      ev('mm1_kernel_time', 'MatMul', 30, 500),
      ev('mm1_kernel_time', 'MatMul', 10, 90000), // first run (listed out of order): cuBLAS set-up
      ev('mm1_kernel_time', 'MatMul', 50, 300),
      ev('mm2_kernel_time', 'MatMul', 11, 7),
      ev('mm2_kernel_time', 'MatMul', 31, 100),
      ev('add_kernel_time', 'Add', 12, 3),
      ev('add_kernel_time', 'Add', 32, 100),
      ev('add_fence_before', 'Add', 33, 9999),
      { cat: 'Session', name: 'model_run', ts: 0, dur: 5000 },
    ];
    const file = join(mkdtempSync(join(tmpdir(), 'prof-')), 'p.json');
    writeFileSync(file, JSON.stringify(trace));
    const s = summarizeProfile(file);
    expect(s.basis).toBe('after-first');
    expect(s.totalMs).toBe(1);
    expect(s.firstRunsMs).toBe(90);
    expect(s.top).toEqual([
      { op: 'MatMul', ms: 0.9, share: 0.9 },
      { op: 'Add', ms: 0.1, share: 0.1 },
    ]);
    expect(s.nodes).toEqual([
      { node: 'mm1', op: 'MatMul', ms: 0.8, share: 0.8, runs: 2, firstMs: 90 },
      { node: 'mm2', op: 'MatMul', ms: 0.1, share: 0.1, runs: 1, firstMs: 0 },
      { node: 'add', op: 'Add', ms: 0.1, share: 0.1, runs: 1, firstMs: 0 },
    ]);
  });

  it('sums the first runs when no node ran twice (a session run once), shares never NaN', () => {
    const trace = [
      { cat: 'Node', name: 'a_kernel_time', ts: 1, dur: 300, args: { op_name: 'MatMul' } },
      { cat: 'Node', name: 'b_kernel_time', ts: 2, dur: 100, args: { op_name: 'Add' } },
    ];
    const file = join(mkdtempSync(join(tmpdir(), 'prof-')), 'p.json');
    writeFileSync(file, JSON.stringify(trace));
    const s = summarizeProfile(file);
    expect([s.basis, s.totalMs, s.firstRunsMs]).toEqual(['first-runs', 0.4, 0.4]);
    expect(s.top).toEqual([
      { op: 'MatMul', ms: 0.3, share: 0.75 },
      { op: 'Add', ms: 0.1, share: 0.25 },
    ]);
  });
});
