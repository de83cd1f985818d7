// A real crash: a child process trains the toy, checkpointing every step, and is killed with SIGKILL
// after it has written checkpoint K; a second child resumes. The metrics (losses) must equal those of
// an uninterrupted child run bit for bit.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CheckpointManager, readMetrics } from '../src/index.js';
import { rawCodec } from './raw-codec.js';
import { TOY, toyRecord } from './toy.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const child = join(here, 'resume-child.ts');
const KILL_AFTER = 5;

function start(dir: string, sleepMs: number): ChildProcess {
  // --import tsx resolves from the repo root (tsx is a root devDependency).
  return spawn(process.execPath, ['--conditions=@latent-sft/source', '--import', 'tsx', child, dir, String(TOY.totalSteps), String(sleepMs)], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function exit(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  p.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

function latestStep(dir: string): number {
  const p = join(dir, 'latest.json');
  if (!existsSync(p)) return 0;
  try {
    return (JSON.parse(readFileSync(p, 'utf8')) as { step: number }).step;
  } catch {
    return 0;
  }
}

describe('SIGKILL and resume', () => {
  it('resumed run equals the uninterrupted one bit for bit', async () => {
    const straightDir = mkdtempSync(join(tmpdir(), 'train-straight-'));
    const straight = await exit(start(straightDir, 0));
    expect(straight.code, straight.stderr).toBe(0);

    const dir = mkdtempSync(join(tmpdir(), 'train-killed-'));
    const victim = start(dir, 40);
    const done = exit(victim);
    const t0 = Date.now();
    while (latestStep(dir) < KILL_AFTER) {
      if (Date.now() - t0 > 15_000) throw new Error('child never reached the kill checkpoint');
      await new Promise((r) => setTimeout(r, 5));
    }
    victim.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const stoppedAt = latestStep(dir);
    expect(stoppedAt).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(stoppedAt).toBeLessThan(TOY.totalSteps);

    const resumed = await exit(start(dir, 0));
    expect(resumed.code, resumed.stderr).toBe(0);
    const a = readMetrics(join(straightDir, 'metrics.jsonl'));
    const b = readMetrics(join(dir, 'metrics.jsonl'));
    expect(b.map((r) => r.step)).toEqual(Array.from({ length: TOY.totalSteps }, (_, i) => i + 1));
    expect(b.map((r) => r.loss)).toEqual(a.map((r) => r.loss));

    const open = (d: string) =>
      CheckpointManager.open({ dir: d, keepLast: 3, keepBest: true, metricMode: 'min', codec: rawCodec, record: toyRecord, resume: true });
    const final = (d: string) =>
      open(d)
        .load(TOY.totalSteps)
        .tensors.map((t) => [t.name, Array.from(t.data as Float64Array)]);
    expect(final(dir)).toEqual(final(straightDir));
  }, 30_000);
});
