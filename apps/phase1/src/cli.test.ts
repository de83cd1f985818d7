// phase1 encoder → decoder → union end to end through the CLI on a random-init hidden-16 M0 (real
// Llama-3.2 tokenizer, 4 problems, 2 steps each), the ablation switches (hidden latents, no LTIM /
// LTSuM), and one-line errors for a mismatched encoder and a config typo.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { writeRandomModel } from '@latent-sft/pipeline';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'phase1-'));
const m0 = join(dir, 'm0');
const micro = ['--data.count', '4', '--data.digitsA', '1', '--r', '2', '--lora.r', '2', '--train.steps', '2', '--train.batchSize', '2'];

async function run(argv: string[]): Promise<{ app: string; steps: number }> {
  let out = '';
  await runCli(argv, { logger: silentLogger, write: (t) => { out += t; } });
  return JSON.parse(out) as { app: string; steps: number };
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

describe('phase1 CLI', () => {
  beforeAll(async () => {
    await writeRandomModel(m0, 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 2, heads: 4, kvHeads: 2 }, 3);
  });

  it('encoder, decoder and union steps chain and write their adapters / merged checkpoints', async () => {
    expect(await run(['encoder', '--base', m0, '--out', join(dir, 'enc'), ...micro])).toMatchObject({ app: 'phase1-encoder', steps: 2 });
    for (const f of ['base_model/config.json', 'lora_adapter/adapter_config.json', 'hf/model.safetensors', 'hf/tokenizer.json']) expect(existsSync(join(dir, 'enc', f)), f).toBe(true);
    // Ablations on the decoder step: hidden latents, causal masks.
    expect(await run(['decoder', '--base', m0, '--encoder', join(dir, 'enc/hf'), '--out', join(dir, 'dec'), ...micro, '--latent.kind', 'hidden', '--ltim', 'false', '--ltsum', 'false']))
      .toMatchObject({ app: 'phase1-decoder', steps: 2 });
    expect(existsSync(join(dir, 'dec/hf/model.safetensors'))).toBe(true);
    expect(await run(['union', '--encoder', join(dir, 'enc/hf'), '--decoder', join(dir, 'dec/hf'), '--out', join(dir, 'uni'), ...micro, '--latent.kind', 'soft-full']))
      .toMatchObject({ app: 'phase1-union', steps: 2 });
    for (const f of ['encoder_weight/adapter_model.safetensors', 'decoder_weight/adapter_model.safetensors']) expect(existsSync(join(dir, 'uni/lora_adapter', f)), f).toBe(true);
  }, 180_000);

  it('bad inputs: a decoder as encoder, a missing checkpoint, a typo', async () => {
    expect(await oneLine(['decoder', '--base', m0, '--encoder', m0, '--out', join(dir, 'x'), ...micro])).toMatch(/expected 128257/);
    expect(await oneLine(['encoder', '--base', join(dir, 'none'), '--out', join(dir, 'y'), ...micro])).toMatch(/phase1 base \(M0\) not found/);
    expect(await oneLine(['union', '--encoder', 'a', '--decoder', 'b', '--out', join(dir, 'z'), '--ltimm', 'false'])).toMatch(/unknown argument 'ltimm' \(did you mean '--ltim'\?\)/);
    expect(existsSync(join(dir, 'x')) || existsSync(join(dir, 'y')) || existsSync(join(dir, 'z'))).toBe(false);
  });
});
