// phase2 end to end through the CLI: a random-init hidden-16 M1, a cache from cache-latents over its
// resized encoder, 2 steps with Gumbel-perturbed teachers → lora_adapter + hf (M2); a cache of other
// data and a missing cache are one-line errors.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@latent-sft/config';
import { UserError, silentLogger } from '@latent-sft/core';
import { cacheLatentsConfig, resizeForCompress, runCacheLatents, saveModelDir, writeRandomModel } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

async function run(argv: string[]): Promise<{ steps: number; first: { kl: number } }> {
  let out = '';
  await runCli(argv, {
    logger: silentLogger,
    write: (t) => {
      out += t;
    },
  });
  return JSON.parse(out) as { steps: number; first: { kl: number } };
}

describe('phase2 CLI', () => {
  it('trains from the cache and writes M2; mismatched or missing caches are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phase2-'));
    const m1 = await writeRandomModel(join(dir, 'm1'), 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 5);
    const enc = resizeForCompress(m1.config, m1.tensors);
    saveModelDir(join(dir, 'enc'), enc.config, enc.tensors, m1.dir);
    const data = { 'data.count': 4, 'data.digitsA': 1 };
    await runCacheLatents(
      loadConfig({
        schema: cacheLatentsConfig,
        overrides: { out: join(dir, 'cache'), encoder: join(dir, 'enc'), decoder: m1.dir, 'latent.compressionRate': 2, 'latent.topK': 4, ...data },
      }),
      { logger: silentLogger },
    );
    const args = [
      '--model',
      m1.dir,
      '--cache',
      join(dir, 'cache'),
      '--data.count',
      '4',
      '--data.digitsA',
      '1',
      '--lora.r',
      '2',
      '--train.steps',
      '2',
      '--train.batchSize',
      '2',
    ];
    const s = await run([...args, '--out', join(dir, 'p2'), '--gumbel.enabled']);
    expect(s.steps).toBe(2);
    expect(s.first.kl).toBeGreaterThan(0);
    for (const f of ['hf/model.safetensors', 'hf/tokenizer.json', 'lora_adapter/adapter_config.json']) expect(existsSync(join(dir, 'p2', f)), f).toBe(true);
    const fail = async (argv: string[], re: RegExp) => {
      const e = await run(argv).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).not.toContain('\n');
      expect((e as Error).message).toMatch(re);
    };
    await fail([...args, '--data.seed', '8', '--out', join(dir, 'x')], /latent cache does not match this run \(dataset: /);
    await fail([...args.map((a) => (a === join(dir, 'cache') ? join(dir, 'none') : a)), '--out', join(dir, 'y')], /latent cache not found/);
    // The spec comes from the cache's latent.json (M1 here has none); a flag that differs is refused.
    const spec = { kind: 'soft-topk', compressionRate: 2, topK: 4, ltim: true, ltsum: true };
    expect(JSON.parse(readFileSync(join(dir, 'p2/hf/latent.json'), 'utf8'))).toEqual(spec);
    await fail(
      [...args, '--latent.compressionRate', '4', '--out', join(dir, 'z')],
      new RegExp(`^latent spec mismatch: phase2 config sets latent.compressionRate = 4 but ${join(dir, 'cache/latent.json')} records 2;`),
    );
    expect(existsSync(join(dir, 'x')) || existsSync(join(dir, 'y')) || existsSync(join(dir, 'z'))).toBe(false);
  }, 90_000);
});
