// The experiment driver end to end on the CPU, at toy size: every stage runs as its own process of the
// app CLIs; a second run skips everything; a changed stage config reruns only that stage and what
// depends on it, and a failing stage blocks its dependents and fails the run in one line. The training-
// seeds plan (two chains, 22 stages) runs its stages inside the driver's process (--in-process: the same
// app CLIs without a process start each, which was most of their cost), and fails one stage there too.
// The two tests run at the same time (each waits on its own driver process).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const SCRIPT = join(ROOT, 'tools', 'pipeline', 'src', 'experiment.ts');

const train = (steps: number) => ({ steps, batchSize: 4, lr: 0.01, keepLast: 1 });
const plan = {
  name: 'driver-test',
  device: 'cpu',
  concurrency: 2,
  model: { hiddenSize: 32, intermediateSize: 64, layers: 1, heads: 2, kvHeads: 1, vocab: 'corpus' },
  data: { source: 'multiplication', count: 12, digitsA: 1, digitsB: 2, seed: 3 },
  stages: {
    cotSft: { train: train(3) },
    noCot: { train: train(3) },
    phase1Encoder: { lora: { r: 4 }, train: train(2) },
    phase1Decoder: { lora: { r: 4 }, train: train(2) },
    phase1Union: { lora: { r: 4 }, train: train(2) },
    cache: { batchSize: 8 },
    phase2: { lora: { r: 4 }, train: train(2) },
  },
  rows: [{ id: 'r4', label: 'Latent-SFT(4)', r: 4 }],
  eval: { datasets: ['multiplication-1x2'], seeds: [1], limit: 3, batchSize: 4, maxLatent: 4, maxNewTokens: 4 },
};

interface StageRecord {
  id: string;
  status: string;
}
/**
 * Runs the driver as a child process. Asynchronously: a spawnSync would block this test worker's
 * event loop for minutes, and vitest's worker RPC (onTaskUpdate, 60 s) would time out on a busy machine.
 */
async function run(planFile: string, out: string, flags: string[] = []): Promise<{ status: number | null; stderr: string; stages: Map<string, string> }> {
  const child = spawn(process.execPath, ['--conditions=@latent-sft/source', '--import', 'tsx', SCRIPT, 'run', '--plan', planFile, '--out', out, ...flags], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const status = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res(code));
  });
  const r = { status, stderr };
  const file = join(out, 'stages.json');
  const stages = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { stages: StageRecord[] }).stages : [];
  return { status: r.status, stderr: r.stderr, stages: new Map(stages.map((s) => [s.id, s.status])) };
}

describe.concurrent('experiment driver (CPU, toy plan)', () => {
  it('runs every stage as a process, skips them on a rerun, and blocks the dependents of a failing stage', async ({ expect }) => {
    const dir = mkdtempSync(join(tmpdir(), 'driver-'));
    const planFile = join(dir, 'plan.json');
    const out = join(dir, 'out');
    writeFileSync(planFile, JSON.stringify(plan));

    const first = await run(planFile, out);
    expect(first.status, first.stderr.slice(-2000)).toBe(0);
    expect([...first.stages.values()]).toEqual(Array(11).fill('done'));
    const table = readFileSync(join(out, 'table.md'), 'utf8');
    for (const label of ['No-CoT', 'CoT-SFT', 'Latent-SFT(4)']) expect(table).toContain(`| ${label} |`);
    expect(table).toContain('`pnpm phase1 encoder --config ');
    expect(existsSync(join(out, 'r4', 'phase2', 'hf', 'latent.json'))).toBe(true);

    const second = await run(planFile, out);
    expect(second.status, second.stderr.slice(-2000)).toBe(0);
    expect([...second.stages.values()]).toEqual(Array(11).fill('skipped'));

    // A union LoRA rank of 0 is refused by the phase1 app: the union fails, everything after it is blocked.
    writeFileSync(planFile, JSON.stringify({ ...plan, stages: { ...plan.stages, phase1Union: { lora: { r: 0 }, train: train(2) } } }));
    const third = await run(planFile, out);
    expect(third.status).toBe(1);
    expect(third.stderr).toMatch(/error: 5 stage\(s\) failed or blocked: r4\/phase1-union, r4\/m1, r4\/latents, r4\/phase2, eval\/r4/);
    expect(third.stages.get('r4/phase1-union')).toBe('failed');
    expect(third.stages.get('r4/phase2')).toBe('blocked');
    expect(third.stages.get('r4/phase1-decoder')).toBe('skipped');
    expect(third.stages.get('eval/cot')).toBe('skipped');
    expect(readFileSync(join(out, 'logs', 'r4__phase1-union.log'), 'utf8')).toMatch(/lora\.r/);
  }, 900_000);

  it('trainingSeeds (--in-process): one chain per seed, the encoder picks its best checkpoint, table.md and training-seeds.json over the seeds', async ({
    expect,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'driver-seeds-'));
    const planFile = join(dir, 'plan.json');
    const out = join(dir, 'out');
    const encoder = { lora: { r: 4 }, train: { ...train(2), checkpointEvery: 1 }, select: { metric: 'gold-cot-ce', examples: 4 } };
    const seedsPlan = { ...plan, trainingSeeds: [1, 2], stages: { ...plan.stages, phase1Encoder: encoder } };
    writeFileSync(planFile, JSON.stringify(seedsPlan));
    const r = await run(planFile, out, ['--in-process']);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stages.size).toBe(22);
    for (const t of [1, 2]) {
      const enc = JSON.parse(readFileSync(join(out, `seed-${t}`, 'r4', 'phase1-encoder', 'summary.json'), 'utf8'));
      expect(enc.selection.scores.map((x: { step: number }) => x.step)).toEqual([1, 2]);
      const cfg = JSON.parse(readFileSync(join(out, 'configs', `seed-${t}__cot.json`), 'utf8'));
      expect(cfg.train.seed).toBe(t);
    }
    // Per training seed: the mean over sampling seeds of that seed's eval summary; then mean and sample std over the two.
    const seeds = JSON.parse(readFileSync(join(out, 'training-seeds.json'), 'utf8'));
    expect(seeds.rows.map((x: { method: string }) => x.method)).toEqual(['No-CoT', 'CoT-SFT', 'Latent-SFT(4)']);
    for (const row of seeds.rows) {
      const cell = row.cells[0];
      const id = { 'No-CoT': 'no-cot', 'CoT-SFT': 'cot', 'Latent-SFT(4)': 'r4' }[row.method as string] as string;
      const per = [1, 2].map((t) => {
        const s = JSON.parse(readFileSync(join(out, `seed-${t}`, 'eval', id, 'summary.json'), 'utf8'));
        return (100 * s.runs.reduce((a: number, x: { accuracy: number }) => a + x.accuracy, 0)) / s.runs.length;
      });
      expect(cell.perSeed.map((p: { pass1: number }) => p.pass1)).toEqual(per);
      const mean = (per[0]! + per[1]!) / 2;
      expect([cell.pass1.mean, cell.pass1.std]).toBeAllclose([mean, Math.abs(per[0]! - per[1]!) / Math.SQRT2], { rtol: 1e-12, atol: 1e-12 });
    }
    const table = readFileSync(join(out, 'table.md'), 'utf8');
    expect(table).toContain('Table 1 over training seeds');
    expect(table).toContain('| Latent-SFT(4) [training seed 2] |');

    // In-process too, a failing stage is logged as its process would print it and blocks its dependents.
    writeFileSync(planFile, JSON.stringify({ ...seedsPlan, stages: { ...seedsPlan.stages, phase1Union: { lora: { r: 0 }, train: train(2) } } }));
    const failed = await run(planFile, out, ['--in-process']);
    expect(failed.status).toBe(1);
    const blocked = (t: number) => ['r4/phase1-union', 'r4/m1', 'r4/latents', 'r4/phase2', 'eval/r4'].map((id) => `seed-${t}/${id}`).join(', ');
    expect(failed.stderr).toContain(`error: 10 stage(s) failed or blocked: ${blocked(1)}, ${blocked(2)} (logs in `);
    for (const t of [1, 2]) {
      expect(failed.stages.get(`seed-${t}/r4/phase1-union`)).toBe('failed');
      expect(failed.stages.get(`seed-${t}/eval/r4`)).toBe('blocked');
      expect(failed.stages.get(`seed-${t}/r4/phase1-decoder`)).toBe('skipped');
      expect(readFileSync(join(out, 'logs', `seed-${t}__r4__phase1-union.log`), 'utf8')).toMatch(/^error: .*lora\.r/m);
    }
  }, 900_000);
});
