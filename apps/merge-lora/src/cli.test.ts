// merge-lora end to end: a CAUSAL_LM adapter with non-zero B merged into a random-init hidden-16 model
// equals W + (alpha/r)·B·A; errors for a missing adapter and an occupied output dir.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { readLatentSpec, writeLatentSpec } from '@latent-sft/latent';
import { initLora, loadModelDir, loraOf, saveAdapter, saveAdapterDir, writeRandomModel } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

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

describe('merge-lora CLI', () => {
  it('merges W + s·B·A and refuses bad inputs in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'merge-lora-'));
    const base = await writeRandomModel(join(dir, 'base'), 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 5);
    const lora = loraOf({ r: 2, alpha: 4, dropout: 0 }, 'CAUSAL_LM', false);
    const tensors = initLora(base.config, lora, 9).map((t) => (t.name.includes('lora_B') ? { ...t, data: t.data.map((_, i) => 0.01 * ((i % 7) - 3)) } : t));
    saveAdapter(join(dir, 'adapter'), lora, tensors, { model: base.config });
    await run(['--base', base.dir, '--adapter', join(dir, 'adapter'), '--out', join(dir, 'out')]);
    const merged = loadModelDir(join(dir, 'out/hf'), 'merged').tensors;
    expect(existsSync(join(dir, 'out/hf/tokenizer.json'))).toBe(true);
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const W = base.tensors.find((t) => t.name === name)!;
    const A = tensors.find((t) => t.name === 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!;
    const B = tensors.find((t) => t.name === 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!;
    const M = merged.find((t) => t.name === name)!;
    const [out, inp] = W.shape as [number, number];
    let maxErr = 0;
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inp; i++) {
        let d = 0;
        for (let k = 0; k < 2; k++) d += B.data[o * 2 + k]! * A.data[k * inp + i]!;
        maxErr = Math.max(maxErr, Math.abs(M.data[o * inp + i]! - (W.data[o * inp + i]! + 2 * d)));
      }
    }
    expect(maxErr).toBeLessThan(1e-6);
    const fail = async (argv: string[], re: RegExp) => {
      const e = await run(argv).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).not.toContain('\n');
      expect((e as Error).message).toMatch(re);
    };
    await fail(['--base', base.dir, '--adapter', join(dir, 'none'), '--out', join(dir, 'o2')], /adapter folder not found/);
    await fail(
      ['--base', base.dir, '--adapter', join(dir, 'adapter'), '--out', join(dir, 'out')],
      /already holds a finished merge-lora run; choose another output dir; nothing was overwritten$/,
    );
    await fail(['--base', base.dir, '--adapter', join(dir, 'adapter'), '--out', base.dir], /not empty and holds no phase run/);
  }, 60_000);

  it("carries the adapter's latent spec into hf/ and refuses a base that records another", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'merge-lora-'));
    const base = await writeRandomModel(join(dir, 'base'), 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 5);
    const lora = loraOf({ r: 2, alpha: 4, dropout: 0 }, 'CAUSAL_LM', false);
    const spec = { kind: 'hidden', compressionRate: 3, topK: 7, ltim: true, ltsum: false } as const;
    saveAdapterDir(join(dir, 'adapter'), lora, initLora(base.config, lora, 9), { model: base.config }, spec);
    await run(['--base', base.dir, '--adapter', join(dir, 'adapter'), '--out', join(dir, 'out')]);
    expect(readLatentSpec(join(dir, 'out/hf'))?.spec).toEqual(spec);
    writeLatentSpec(base.dir, { ...spec, compressionRate: 4 });
    const e = await run(['--base', base.dir, '--adapter', join(dir, 'adapter'), '--out', join(dir, 'out2')]).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toBe(
      `latent spec mismatch: compressionRate 3 in ${join(dir, 'adapter/latent.json')} but 4 in ${join(base.dir, 'latent.json')}`,
    );
    expect(existsSync(join(dir, 'out2'))).toBe(false);
  }, 60_000);
});
