// cot-sft end to end through its CLI on a micro config (random-init hidden-16 model, real Llama-3.2
// tokenizer, 4 multiplication problems, 2 steps), plus the one-line errors of a typo and an occupied
// output dir, and --print-config.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { writeRandomModel } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

const micro = [
  '--base.kind',
  'init',
  '--base.hiddenSize',
  '16',
  '--base.intermediateSize',
  '32',
  '--data.count',
  '4',
  '--data.digitsA',
  '1',
  '--train.steps',
  '2',
  '--train.batchSize',
  '2',
];

async function run(argv: string[]): Promise<string> {
  let out = '';
  await runCli(argv, {
    logger: silentLogger,
    write: (t) => {
      out += t;
    },
  });
  return out;
}

async function oneLine(argv: string[]): Promise<string> {
  try {
    await run(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('cot-sft CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cot-sft-'));

  it('trains M0 and writes hf/ with the tokenizer, checkpoints, metrics and the config record', async () => {
    const out = join(dir, 'm0');
    const summary = JSON.parse(await run(['--out', out, ...micro, '--variant', 'no-cot'])) as { steps: number; first: { loss: number } };
    expect(summary.steps).toBe(2);
    expect(summary.first.loss).toBeGreaterThan(10); // ~ln(128256) from a random init
    for (const f of ['hf/config.json', 'hf/model.safetensors', 'hf/tokenizer.json', 'metrics.jsonl', 'checkpoints/step-000002/config.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).config.variant).toBe('no-cot');
    expect(await oneLine(['--out', out, ...micro])).toMatch(/already holds a finished cot-sft run; pass --resume .*nothing was overwritten/);
  }, 120_000);

  it('--base.vocab corpus resumes (finished or killed), refuses a changed config unless --allow-config-change', async () => {
    const out = join(dir, 'corpus');
    const args = ['--out', out, ...micro, '--base.vocab', 'corpus', '--train.checkpointEvery', '1'];
    const first = JSON.parse(await run(args)) as { steps: number; last: { loss: number } };
    const weights = readFileSync(join(out, 'hf/model.safetensors'));
    // A finished run resumes to the same model (before the fix: "subsetFor: this tokenizer is already a subset").
    expect((JSON.parse(await run([...args, '--resume'])) as { steps: number }).steps).toBe(2);
    expect(readFileSync(join(out, 'hf/model.safetensors')).equals(weights)).toBe(true);
    // A run killed after step 1: resumes from the step-1 checkpoint to the same final weights.
    for (const f of ['hf', 'summary.json', 'checkpoints/step-000002']) rmSync(join(out, f), { recursive: true });
    writeFileSync(join(out, 'checkpoints/latest.json'), JSON.stringify({ step: 1, dir: 'step-000001' }));
    const resumed = JSON.parse(await run([...args, '--resume'])) as { steps: number; last: { loss: number } };
    expect(resumed.steps).toBe(2);
    expect(resumed.last.loss).toBe(first.last.loss);
    expect(readFileSync(join(out, 'hf/model.safetensors')).equals(weights)).toBe(true);
    // A real change is refused and config.json is left as it was; the resume flag itself is no change.
    const config = readFileSync(join(out, 'config.json'), 'utf8');
    expect(await oneLine([...args, '--resume', '--train.lr', '0.001'])).toMatch(
      /--resume with a changed config \(train\.lr: 0\.003 → 0\.001\); .*--allowConfigChange/,
    );
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(config);
    await run([...args, '--resume', '--train.lr', '0.001', '--allow-config-change']);
    const phase = JSON.parse(readFileSync(join(out, 'phase.json'), 'utf8')) as { configChanges: Array<{ changed: string[] }> };
    expect(phase.configChanges.map((c) => c.changed)).toEqual([['train.lr: 0.003 → 0.001']]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).config.train.lr).toBe(0.001);
  }, 240_000);

  it('locks the output folder: a live holder is refused by pid, a dead one is taken over', async () => {
    const out = join(dir, 'locked');
    await run(['--out', out, ...micro]);
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const lock = { pid: holder.pid, host: hostname(), app: 'cot-sft', startedAt: '2026-01-01T00:00:00.000Z' };
      writeFileSync(join(out, '.lock'), JSON.stringify(lock));
      expect(await oneLine(['--out', out, ...micro, '--resume'])).toBe(
        `${out}: in use by another run (cot-sft, pid ${holder.pid}, since 2026-01-01T00:00:00.000Z); wait for it to end or choose another output dir`,
      );
      expect(readFileSync(join(out, '.lock'), 'utf8')).toBe(JSON.stringify(lock));
    } finally {
      holder.kill('SIGKILL');
    }
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
    writeFileSync(join(out, '.lock'), JSON.stringify({ pid: dead, host: hostname(), app: 'cot-sft', startedAt: '2026-01-01T00:00:00.000Z' }));
    expect((JSON.parse(await run(['--out', out, ...micro, '--resume'])) as { steps: number }).steps).toBe(2);
    expect(existsSync(join(out, '.lock'))).toBe(false);
  }, 240_000);

  it("an example longer than the base model's max_position_embeddings is one line before the folder is claimed", async () => {
    const base = join(dir, 'short-base');
    await writeRandomModel(base, 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 3);
    const cfg = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(base, 'config.json'), JSON.stringify({ ...cfg, max_position_embeddings: 16 }));
    const out = join(dir, 'too-long');
    expect(
      await oneLine(['--out', out, '--base.kind', 'checkpoint', '--base.dir', base, '--data.count', '4', '--data.digitsA', '1', '--train.steps', '1']),
    ).toMatch(/^field 'data': the longest example needs \d+ positions, more than the max_position_embeddings 16 of .*short-base; use shorter problems/);
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('sizes that cannot be allocated are one line naming base before anything is written', async () => {
    const out = join(dir, 'huge');
    expect(await oneLine(['--out', out, '--base.hiddenSize', '1000000', '--base.heads', '4', '--base.kvHeads', '2'])).toMatch(
      /^field 'base': hidden 1000000, MLP 128, 2 layers and 128256 rows make model\.layers\.0\.self_attn\.q_proj\.weight 1\.00e\+12 elements, more than one tensor can hold \(4294967295\)$/,
    );
    // 30000 × 30000 fits one tensor, but 200 layers of them fit no machine's memory.
    expect(await oneLine(['--out', out, '--base.hiddenSize', '30000', '--base.heads', '4', '--base.kvHeads', '2', '--base.layers', '200'])).toMatch(
      /^field 'base': hidden 30000, MLP 128, 200 layers and 128256 rows make \d\.\d+e\+11 parameters: \d+\.\d GiB of float32 weights \(about 4× that to train\), more than the \d+\.\d GiB of memory here$/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('typos in flags and in the config file are one-line errors', async () => {
    expect(await oneLine(['--out', join(dir, 'x'), '--train.stpes', '3'])).toMatch(/unknown argument 'train.stpes' \(did you mean '--train.steps'\?\)/);
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ train: { lrr: 0.1 } }));
    expect(await oneLine(['--out', join(dir, 'x'), '--config', file])).toMatch(/train\.lrr/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('--print-config prints the resolved config without running', async () => {
    const cfg = JSON.parse(await run(['--out', join(dir, 'y'), '--train.steps', '5', '--print-config'])) as { train: { steps: number }; device: string };
    expect(cfg.train.steps).toBe(5);
    expect(cfg.device).toBe('cpu');
    expect(existsSync(join(dir, 'y'))).toBe(false);
  });
});
