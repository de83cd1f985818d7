// The run-folder protocol without training: what a claim refuses (a file, another app, a foreign
// folder, a live lock, a changed config) leaves the folder byte-identical; --force (clearOwnRun)
// deletes only what an earlier run of the same app wrote.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configRecord } from '@latent-sft/config';
import { UserError } from '@latent-sft/core';
import { oneLineError } from '@latent-sft/testing';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@latent-sft/core';
import { RUN_CONTROL_KEYS, claimOrReuseOutDir, claimOutDir, clearOwnRun, lockRunDir, publishDir } from './run-dir.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'run-dir-'));
const rec = (config: Record<string, unknown>, app = 'toy') =>
  configRecord(config, { app, version: 1, createdAt: '2026-01-01T00:00:00.000Z', ignore: RUN_CONTROL_KEYS });
const snapshot = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
  );

/** The one-line UserError `fn` throws. */
function oneLine(fn: () => unknown): string {
  expect(fn).toThrow(UserError);
  return oneLineError(fn);
}

describe('claimOutDir', () => {
  it('refuses a file, a foreign folder and a changed config without writing; records an allowed change', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), 'x');
    expect(oneLine(() => claimOutDir(join(dir, 'file'), rec({ lr: 1 }), false))).toBe(`field 'out': ${join(dir, 'file')} exists and is not a folder`);
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'mine', 'notes.txt'), 'keep');
    expect(oneLine(() => claimOutDir(join(dir, 'mine'), rec({ lr: 1 }), false))).toMatch(/not empty and holds no phase run \(notes\.txt\)/);

    const out = join(dir, 'run');
    claimOutDir(out, rec({ out, lr: 1, resume: false }), false).release();
    const before = snapshot(out);
    claimOutDir(out, rec({ out, lr: 1, resume: true }), true).release(); // the resume flag itself is no change
    expect(snapshot(out)['phase.json']).toBe(before['phase.json']);
    expect(oneLine(() => claimOutDir(out, rec({ out, lr: 2, resume: true }), true))).toBe(
      `${out}: --resume with a changed config (lr: 1 → 2); resume with the settings the run was started with, or pass --allowConfigChange to continue under the new ones; nothing was changed`,
    );
    expect(snapshot(out)).toEqual({ ...before, 'config.json': snapshot(out)['config.json'] });
    expect(JSON.parse(snapshot(out)['config.json']!).config.lr).toBe(1);
    expect(oneLine(() => claimOutDir(out, rec({ lr: 1 }, 'other'), true))).toMatch(/holds a run of 'toy', not 'other'/);
    claimOutDir(out, rec({ out, lr: 2, resume: true, allowConfigChange: true }), true).release();
    expect(JSON.parse(readFileSync(join(out, 'phase.json'), 'utf8')).configChanges).toEqual([
      { at: '2026-01-01T00:00:00.000Z', configHash: rec({ lr: 2 }).configHash, changed: ['lr: 1 → 2'] },
    ]);
    expect(existsSync(join(out, '.lock'))).toBe(false);
  });

  it('a refused claim of a new folder leaves nothing behind', () => {
    const dir = tmp();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const out = join(dir, 'busy');
      mkdirSync(out);
      writeFileSync(join(out, '.lock'), JSON.stringify({ pid: holder.pid, host: hostname(), app: 'toy', startedAt: 'then' }));
      expect(oneLine(() => claimOutDir(out, rec({ lr: 1 }), false))).toBe(
        `${out}: in use by another run (toy, pid ${holder.pid}, since then); wait for it to end or choose another output dir`,
      );
      expect(readdirSync(out)).toEqual(['.lock']);
      writeFileSync(join(out, '.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', app: 'toy', startedAt: 'then' }));
      expect(oneLine(() => lockRunDir(out, 'toy'))).toMatch(/pid 1 on host elsewhere, since then\).*if it has ended, delete .*\.lock$/);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over the lock of a dead pid, and release() removes only its own lock', () => {
    const dir = tmp();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: dead, host: hostname(), app: 'toy', startedAt: 'then' }));
    const lock = lockRunDir(dir, 'toy');
    expect(lock.tookOver).toEqual({ pid: dead, host: hostname(), app: 'toy', startedAt: 'then' });
    expect(JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(['.lock']);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('clearOwnRun (--force)', () => {
  const files = ['run.json', 'summary.json', 'summary.md', 'predictions'];
  it('deletes only the files of an earlier run of the same app; refuses any other folder', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'summary.md'), 'my notes');
    mkdirSync(join(dir, 'predictions'));
    expect(oneLine(() => clearOwnRun(dir, { app: 'eval run', marker: 'run.json', files }))).toBe(
      `${dir}: holds no output of 'eval run' (no readable run.json); --force only replaces what an earlier 'eval run' wrote; choose another output dir; nothing was deleted`,
    );
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ app: 'phase2' }));
    expect(oneLine(() => clearOwnRun(dir, { app: 'eval run', marker: 'run.json', files }))).toMatch(
      /holds a run of 'phase2', not 'eval run'; .*nothing was deleted$/,
    );
    expect(readdirSync(dir).sort()).toEqual(['predictions', 'run.json', 'summary.md']);
    expect(readFileSync(join(dir, 'summary.md'), 'utf8')).toBe('my notes');

    writeFileSync(join(dir, 'run.json'), JSON.stringify({ app: 'eval run' }));
    writeFileSync(join(dir, 'mine.txt'), 'keep');
    clearOwnRun(dir, { app: 'eval run', marker: 'run.json', files });
    expect(readdirSync(dir)).toEqual(['mine.txt']);
  });
});

describe('claimOrReuseOutDir (eval run --force)', () => {
  const ownFiles = ['summary.json', 'summary.md', 'predictions', 'run.json'];
  it('never clears a folder of user files, even with --force; clears a legacy run of its own app', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'summary.md'), 'my notes');
    const o = { force: true, ownFiles, logger: silentLogger, legacyApp: 'eval run' };
    expect(oneLine(() => claimOrReuseOutDir(dir, rec({ a: 1 }, 'eval'), o))).toMatch(
      /holds no output of 'eval run' \(no readable run\.json\); .*nothing was deleted$/,
    );
    expect(snapshot(dir)).toEqual({ 'summary.md': 'my notes' });

    const legacy = tmp();
    writeFileSync(join(legacy, 'run.json'), JSON.stringify({ app: 'eval run' }));
    writeFileSync(join(legacy, 'summary.md'), 'old summary');
    expect(claimOrReuseOutDir(legacy, rec({ a: 1 }, 'eval'), o)).toBe(false);
    expect(readdirSync(legacy).sort()).toEqual(['.lock', 'config.json', 'phase.json'].filter((f) => existsSync(join(legacy, f))).sort());
    expect(existsSync(join(legacy, 'summary.md'))).toBe(false);
  });
});

describe('publishDir', () => {
  it('a full disk while writing is one line naming the path; the published folder and nothing else stays', () => {
    const dir = tmp();
    publishDir(dir, 'hf', (t) => writeFileSync(join(t, 'a'), '1'));
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: join(dir, '.tmp-hf', 'model.safetensors') });
    expect(
      oneLine(() =>
        publishDir(dir, 'hf', () => {
          throw full;
        }),
      ),
    ).toBe(
      `${join(dir, '.tmp-hf', 'model.safetensors')}: cannot write hf/ (the previous hf/ and the checkpoints are kept) (ENOSPC: no space left on the device); free space or fix the folder's permissions, then run again`,
    );
    expect(readdirSync(dir)).toEqual(['hf']);
    expect(readFileSync(join(dir, 'hf', 'a'), 'utf8')).toBe('1');
  });
});
