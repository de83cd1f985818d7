// cot-sft with --gpus 2 on the CPU: the launcher (this process, through runCli) starts the app's
// entry point twice as ranks 0 and 1 (TCP process group), each training on half of every batch. The
// run folder holds rank 0's outputs only, and the final weights equal those of the same config on one
// process. No-CoT 1-digit × 1-digit problems: every example has the same number of supervised tokens
// (the Llama-3 tokenizer keeps numbers below 1000 in one token), so the mean of the two half-batch
// means is the whole batch's token mean. Plus the one-line refusals (cuda, no entry point).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, silentLogger } from '@latent-sft/core';
import { loadModelDir } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const launch = { command: process.execPath, args: ['--conditions=@latent-sft/source', '--import', 'tsx', MAIN], env: process.env };

/** The run, as a config file (flags add --out and the launcher's). */
const CONFIG = {
  base: { kind: 'init', hiddenSize: 16, intermediateSize: 32 },
  variant: 'no-cot',
  data: { count: 6, digitsA: 1, digitsB: 1 },
  train: { steps: 3, batchSize: 4, checkpointEvery: 2 },
};

/**
 * Two ranks vs one process: float32 sums in another order (two half-batch means vs one batch mean),
 * then 3 AdamW steps; measured max |Δ| 7.5e-9 on weights of O(0.02–1); atol 1e-6 leaves a margin.
 */
const RANKS_VS_ONE = { rtol: 0, atol: 1e-6 };

async function run(argv: string[], withLaunch = true): Promise<string> {
  let out = '';
  await runCli(argv, {
    logger: silentLogger,
    write: (t) => {
      out += t;
    },
    ...(withLaunch ? { launch } : {}),
  });
  return out;
}

describe('cot-sft --gpus 2 (CPU ranks over TCP)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cot-sft-dp-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(CONFIG));
  const micro = ['--config', configFile];

  it('2 ranks write what 1 process writes (rank 0 only) and end with the same weights', async () => {
    const one = join(dir, 'one');
    const two = join(dir, 'two');
    const log = join(dir, 'two.jsonl');
    const s1 = JSON.parse(await run(['--out', one, ...micro])) as { steps: number; last: { loss: number } };
    const text2 = await run(['--out', two, ...micro, '--gpus', '2', '--quiet', '--log-file', log]);
    expect(text2.trim().split('\n')).toHaveLength(1); // rank 0's summary, once
    const s2 = JSON.parse(text2) as { steps: number; out: string; last: { loss: number } };
    expect(s2.steps).toBe(3);
    expect(s2.out).toBe(two);
    expect(s2.last.loss).toBeCloseTo(s1.last.loss, 4);
    // One metrics record per step (not one per rank), the checkpoints of one run, one config log record (rank 0's).
    expect(readFileSync(join(two, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(JSON.parse(readFileSync(join(two, 'checkpoints/latest.json'), 'utf8'))).toMatchObject({ step: 3 });
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg?: string; rank?: number; worldSize?: number });
    expect(records.filter((r) => r.msg === 'resolved config').map((r) => [r.rank, r.worldSize])).toEqual([[0, 2]]);
    const a = loadModelDir(join(one, 'hf'), 'one');
    const b = loadModelDir(join(two, 'hf'), 'two');
    expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
    let changed = false;
    b.tensors.forEach((t, i) => {
      const ref = a.tensors[i]!;
      expect(t.data, t.name).toBeAllclose(ref.data, RANKS_VS_ONE);
      changed ||= t.data.some((v, j) => v !== ref.data[j]);
    });
    expect(changed).toBe(true); // two processes really ran: float32 sums in another order
  }, 600_000);

  it('--procs is --gpus; device cuda and a caller without an entry point are refused in one line', async () => {
    const refuse = async (argv: string[], withLaunch = true) => {
      try {
        await run(argv, withLaunch);
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    const out = join(dir, 'refused');
    expect(await refuse(['--out', out, ...micro, '--procs', '2', '--device', 'cuda'])).toBe(
      'data-parallel training over 2 ranks runs on device cpu only: the NCCL backend for device cuda is not built yet (docs/distributed.md)',
    );
    expect(await refuse(['--out', out, ...micro, '--gpus', '2'], false)).toBe('--gpus/--nodes need the app entry point (this caller cannot start the ranks)');
    expect(await refuse(['--out', out, ...micro, '--gpus', '2', '--nodes', '2'])).toBe(
      '--master-port is required with --nodes > 1 (every node must name the same port)',
    );
  });
});
