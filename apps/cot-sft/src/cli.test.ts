// cot-sft end to end through its CLI on a micro config (random-init hidden-16 model, real Llama-3.2
// tokenizer, 4 multiplication problems, 2 steps), plus the one-line errors of a typo and an occupied
// output dir, and --print-config.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

const micro = ['--base.kind', 'init', '--base.hiddenSize', '16', '--base.intermediateSize', '32', '--data.count', '4', '--data.digitsA', '1', '--train.steps', '2', '--train.batchSize', '2'];

async function run(argv: string[]): Promise<string> {
  let out = '';
  await runCli(argv, { logger: silentLogger, write: (t) => { out += t; } });
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
