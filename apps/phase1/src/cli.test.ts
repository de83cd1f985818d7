// phase1 encoder → decoder → union end to end through the CLI on a random-init hidden-16 M0 (real
// Llama-3.2 tokenizer, 4 problems, 2 steps each): the latent spec the encoder step declares travels in
// latent.json, later steps default to it and refuse each field that differs; the ablation switches
// (soft-full latents, no LTIM / LTSuM); one-line errors for a mismatched encoder and a config typo.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { writeRandomModel } from '@latent-sft/pipeline';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'phase1-'));
const m0 = join(dir, 'm0');
const micro = ['--data.count', '4', '--data.digitsA', '1', '--latent.compressionRate', '2', '--lora.r', '2', '--train.steps', '2', '--train.batchSize', '2'];

function readSpec(at: string): unknown {
  return JSON.parse(readFileSync(join(dir, at, 'latent.json'), 'utf8'));
}

async function run(argv: string[]): Promise<{ app: string; steps: number }> {
  let out = '';
  await runCli(argv, {
    logger: silentLogger,
    write: (t) => {
      out += t;
    },
  });
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
    for (const f of ['base_model/config.json', 'lora_adapter/adapter_config.json', 'hf/model.safetensors', 'hf/tokenizer.json'])
      expect(existsSync(join(dir, 'enc', f)), f).toBe(true);
    const spec = { kind: 'soft-topk', compressionRate: 2, topK: 10, ltim: true, ltsum: true };
    expect(readSpec('enc/hf')).toEqual(spec);
    expect(readSpec('enc/lora_adapter')).toEqual(spec);
    // The later steps take the spec from the encoder's latent.json (micro sets only what matches it) ...
    const plain = micro.filter((a, i) => a !== '--latent.compressionRate' && micro[i - 1] !== '--latent.compressionRate');
    expect(await run(['decoder', '--base', m0, '--encoder', join(dir, 'enc/hf'), '--out', join(dir, 'dec'), ...plain])).toMatchObject({
      app: 'phase1-decoder',
      steps: 2,
    });
    expect(readSpec('dec/hf')).toEqual(spec);
    expect(await run(['union', '--encoder', join(dir, 'enc/hf'), '--decoder', join(dir, 'dec/hf'), '--out', join(dir, 'uni'), ...micro])).toMatchObject({
      app: 'phase1-union',
      steps: 2,
    });
    for (const f of ['encoder_weight/adapter_model.safetensors', 'decoder_weight/adapter_model.safetensors'])
      expect(existsSync(join(dir, 'uni/lora_adapter', f)), f).toBe(true);
    expect(readSpec('uni/lora_adapter/decoder_weight')).toEqual(spec);
    // ... and refuse a field that differs from it, naming both values and the file.
    for (const [flag, value, recorded] of [
      ['kind', 'hidden', '"soft-topk"'],
      ['compressionRate', '3', '2'],
      ['topK', '4', '10'],
      ['ltim', 'false', 'true'],
      ['ltsum', 'false', 'true'],
    ] as const) {
      const msg = await oneLine([
        'decoder',
        '--base',
        m0,
        '--encoder',
        join(dir, 'enc/hf'),
        '--out',
        join(dir, `bad-${flag}`),
        ...plain,
        `--latent.${flag}`,
        value,
      ]);
      expect(msg).toContain(
        `latent spec mismatch: phase1-decoder config sets latent.${flag} = ${flag === 'kind' ? `"${value}"` : value} but ${join(dir, 'enc/hf/latent.json')} records ${recorded}`,
      );
      expect(existsSync(join(dir, `bad-${flag}`))).toBe(false);
    }
    // Ablations are declared by the encoder step: full-vocabulary soft latents, causal masks.
    expect(
      await run([
        'encoder',
        '--base',
        m0,
        '--out',
        join(dir, 'enc-a'),
        ...micro,
        '--latent.kind',
        'soft-full',
        '--latent.ltim',
        'false',
        '--latent.ltsum',
        'false',
      ]),
    ).toMatchObject({ app: 'phase1-encoder', steps: 2 });
    expect(await run(['decoder', '--base', m0, '--encoder', join(dir, 'enc-a/hf'), '--out', join(dir, 'dec-a'), ...micro])).toMatchObject({
      app: 'phase1-decoder',
      steps: 2,
    });
    expect(readSpec('dec-a/hf')).toEqual({ kind: 'soft-full', compressionRate: 2, topK: 10, ltim: false, ltsum: false });
  }, 240_000);

  it('bad inputs: a decoder as encoder, a missing checkpoint, a typo', async () => {
    expect(await oneLine(['decoder', '--base', m0, '--encoder', m0, '--out', join(dir, 'x'), ...micro])).toMatch(/expected 128257/);
    expect(await oneLine(['encoder', '--base', join(dir, 'none'), '--out', join(dir, 'y'), ...micro])).toMatch(/phase1 base \(M0\) not found/);
    expect(await oneLine(['union', '--encoder', 'a', '--decoder', 'b', '--out', join(dir, 'z'), '--latent.ltimm', 'false'])).toMatch(
      /unknown argument 'latent.ltimm'/,
    );
    expect(existsSync(join(dir, 'x')) || existsSync(join(dir, 'y')) || existsSync(join(dir, 'z'))).toBe(false);
  });
});
