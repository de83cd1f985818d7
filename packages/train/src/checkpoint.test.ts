import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { rawCodec } from '../test/raw-codec.js';
import { CheckpointManager, diskWriteError, type LoopState, type RunRecord } from './index.js';
import { initLoopState } from './loop-state.js';

const record: RunRecord = { app: 'test-app', schemaVersion: 1, configHash: 'a'.repeat(64), createdAt: '2024-01-01T00:00:00.000Z', config: { lr: 1 } };
const tmp = () => mkdtempSync(join(tmpdir(), 'ckpt-'));
const open = (dir: string, over: Partial<Parameters<typeof CheckpointManager.open>[0]> = {}) =>
  CheckpointManager.open({
    dir,
    keepLast: 2,
    keepBest: true,
    metricMode: 'min',
    codec: rawCodec,
    record,
    resume: false,
    ...over,
  });
const stateAt = (step: number): LoopState => ({ ...initLoopState(42, ['optim.m.w']), step });
const tensorsAt = (step: number) => [
  { name: 'w', dtype: 'float64' as const, shape: [2], data: Float64Array.of(step, step + 0.5) },
  { name: 'optim.m.w', dtype: 'float32' as const, shape: [2], data: Float32Array.of(-step, 1) },
];

describe('CheckpointManager', () => {
  it('saves atomically with a manifest, loads back verified, tracks latest and best, prunes', () => {
    const dir = tmp();
    const m = open(dir);
    const metrics = [5, 2, 4, 3, 6];
    metrics.forEach((metric, i) => m.save({ step: i + 1, loopState: stateAt(i + 1), tensors: tensorsAt(i + 1), metric }));
    // keep the last 2 (4, 5) plus the best (step 2, metric 2)
    expect(m.steps()).toEqual([2, 4, 5]);
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(m.latest()).toEqual({ step: 5, dir: join(dir, 'step-000005'), metric: 6 });
    expect(m.best()).toEqual({ step: 2, dir: join(dir, 'step-000002'), metric: 2 });
    expect(JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))).toEqual({ step: 5, dir: 'step-000005' });
    const manifest = JSON.parse(readFileSync(join(dir, 'step-000004', 'manifest.json'), 'utf8')) as { files: Record<string, unknown> };
    expect(Object.keys(manifest.files).sort()).toEqual(['config.json', 'loop-state.json', 'tensors.bin', 'tensors.json']);
    const ck = m.load(4);
    expect(ck.loopState).toEqual(stateAt(4));
    expect(ck.record).toEqual(record);
    expect(ck.tensors.map((t) => [t.name, t.dtype, Array.from(t.data as Float64Array)])).toEqual([
      ['w', 'float64', [4, 4.5]],
      ['optim.m.w', 'float32', [-4, 1]],
    ]);
  });

  it('a corrupted file is a one-line error naming it; loadLatestValid falls back and says what it skipped', () => {
    const dir = tmp();
    const m = open(dir, { keepLast: 5 });
    for (const s of [1, 2, 3]) m.save({ step: s, loopState: stateAt(s), tensors: tensorsAt(s) });
    const bin = join(dir, 'step-000003', 'tensors.bin');
    const bytes = readFileSync(bin);
    bytes[0] = (bytes[0] as number) ^ 0xff;
    writeFileSync(bin, bytes);
    expect(() => m.load(3)).toThrow(UserError);
    expect(() => m.load(3)).toThrow(new RegExp(`^${bin}: corrupted: sha256 [0-9a-f]{12}… does not match manifest`));
    const { checkpoint, skipped } = m.loadLatestValid();
    expect(checkpoint?.step).toBe(2);
    expect(skipped.map((s) => s.step)).toEqual([3]);
    expect(skipped[0]?.reason).toContain('tensors.bin: corrupted');
    // Saving step 3 again (after resuming from 2) replaces the corrupted folder.
    m.save({ step: 3, loopState: stateAt(3), tensors: tensorsAt(3) });
    expect(m.load(3).step).toBe(3);
  });

  it('a truncated file and a missing manifest are reported with the file name', () => {
    const dir = tmp();
    const m = open(dir, { keepLast: 5 });
    for (const s of [1, 2]) m.save({ step: s, loopState: stateAt(s), tensors: tensorsAt(s) });
    writeFileSync(join(dir, 'step-000002', 'loop-state.json'), '{');
    expect(() => m.load(2)).toThrow(`${join(dir, 'step-000002', 'loop-state.json')}: corrupted: 1 bytes, manifest says`);
    mkdirSync(join(dir, 'step-000009'));
    expect(() => m.load(9)).toThrow(`${join(dir, 'step-000009', 'manifest.json')}: cannot read (ENOENT)`);
    const { checkpoint, skipped } = m.loadLatestValid();
    expect([checkpoint?.step, skipped.map((s) => s.step)]).toEqual([1, [9, 2]]);
  });

  it('refuses a dir holding another run, or checkpoints without resume; nothing is overwritten', () => {
    const dir = tmp();
    open(dir).save({ step: 1, loopState: stateAt(1), tensors: tensorsAt(1) });
    const before = readFileSync(join(dir, 'step-000001', 'manifest.json'), 'utf8');
    expect(() => open(dir, { record: { ...record, app: 'other-app' }, resume: true })).toThrow(
      `${join(dir, 'run.json')}: this dir holds a run of app 'test-app', not 'other-app'; choose another output dir`,
    );
    expect(() => open(dir, { record: { ...record, configHash: 'b'.repeat(64) } })).toThrow(
      /already holds checkpoints up to step 1 of another config \(hash aaaaaaaaaaaa, this run bbbbbbbbbbbb\)/,
    );
    expect(() => open(dir)).toThrow(/already holds checkpoints up to step 1 of the same config; resume that run/);
    expect(readFileSync(join(dir, 'step-000001', 'manifest.json'), 'utf8')).toBe(before);
    expect(open(dir, { resume: true }).latest()?.step).toBe(1);
  });

  it('a resume under a changed config (accepted by the caller) is recorded in run.json', () => {
    const dir = tmp();
    open(dir).save({ step: 1, loopState: stateAt(1), tensors: tensorsAt(1) });
    open(dir, { record: { ...record, configHash: 'b'.repeat(64), createdAt: '2024-01-02T00:00:00.000Z' }, resume: true });
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
    expect(run).toMatchObject({
      configHash: 'b'.repeat(64),
      createdAt: record.createdAt,
      configChanges: [{ at: '2024-01-02T00:00:00.000Z', from: 'a'.repeat(64), to: 'b'.repeat(64) }],
    });
  });

  it('a full or read-only disk during a save is one line naming the path; nothing half-written stays', () => {
    const dir = tmp();
    const m = open(dir);
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: join(dir, '.tmp-step-000001', 'x.bin') });
    expect(diskWriteError(full, dir, 'the checkpoint')).toEqual(
      new UserError(
        `${join(dir, '.tmp-step-000001', 'x.bin')}: cannot write the checkpoint (ENOSPC: no space left on the device); free space or fix the folder's permissions, then run again`,
      ),
    );
    const other = new Error('boom');
    expect(diskWriteError(other, dir, 'x')).toBe(other);
    // The disk fills while the tensors are written: one line, the .tmp folder removed.
    const fills = open(dir, {
      codec: {
        ...rawCodec,
        write: () => {
          throw full;
        },
      },
      resume: true,
    });
    expect(() => fills.save({ step: 1, loopState: stateAt(1), tensors: tensorsAt(1) })).toThrow(
      new UserError(
        `${join(dir, '.tmp-step-000001', 'x.bin')}: cannot write the checkpoint of step 1 (the previous checkpoints are kept) (ENOSPC: no space left on the device); free space or fix the folder's permissions, then run again`,
      ),
    );
    expect(readdirSync(dir)).toEqual(['run.json']);
    if (process.getuid?.() === 0) return; // root writes into read-only folders
    m.save({ step: 1, loopState: stateAt(1), tensors: tensorsAt(1) });
    chmodSync(dir, 0o555);
    try {
      expect(() => m.save({ step: 2, loopState: stateAt(2), tensors: tensorsAt(2) })).toThrow(
        `${join(dir, '.tmp-step-000002')}: cannot write the checkpoint of step 2 (the previous checkpoints are kept) (EACCES: permission denied)`,
      );
    } finally {
      chmodSync(dir, 0o755);
    }
    expect(readdirSync(dir).sort()).toEqual(['latest.json', 'run.json', 'step-000001']);
  });

  it('removes an unfinished .tmp folder left by a crash and ignores it for latest', () => {
    const dir = tmp();
    open(dir).save({ step: 1, loopState: stateAt(1), tensors: tensorsAt(1) });
    mkdirSync(join(dir, '.tmp-step-000002'));
    writeFileSync(join(dir, '.tmp-step-000002', 'tensors.bin'), 'partial');
    const m = open(dir, { resume: true });
    expect(existsSync(join(dir, '.tmp-step-000002'))).toBe(false);
    expect(m.latest()?.step).toBe(1);
  });

  it('checks its arguments', () => {
    const m = open(tmp());
    expect(() => m.save({ step: 2, loopState: stateAt(1), tensors: [] })).toThrow('checkpoint step 2 != loop state step 1');
    expect(() => open(tmp(), { keepLast: 0 })).toThrow('keepLast');
  });
});
