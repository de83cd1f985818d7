// cache-latents end to end on a random-init hidden-16 decoder and its resized encoder (no adapter):
// chunked files + manifest (r, k, tokenizer sha, dataset count); --resume keeps verified chunks; a
// changed r is refused in one line. --compute float16 (the 16-bit path on the CPU) writes the same format,
// read by phase 2's reader, with probabilities close to the float32 cache's.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, silentLogger } from '@latent-sft/core';
import { type CacheManifest, readLatentCache, resizeForCompress, saveModelDir, tokenizerSha, writeRandomModel } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { runCli } from './index.js';

async function run(argv: string[]): Promise<{ notes: Record<string, number> }> {
  let out = '';
  await runCli(argv, {
    logger: silentLogger,
    write: (t) => {
      out += t;
    },
  });
  return JSON.parse(out) as { notes: Record<string, number> };
}

describe('cache-latents CLI', () => {
  it('writes chunks and a manifest, resumes, and refuses other inputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cache-latents-'));
    const dec = await writeRandomModel(join(dir, 'dec'), 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 5);
    const enc = resizeForCompress(dec.config, dec.tensors);
    saveModelDir(join(dir, 'enc'), enc.config, enc.tensors, dec.dir);
    const args = [
      '--encoder',
      join(dir, 'enc'),
      '--decoder',
      dec.dir,
      '--out',
      join(dir, 'cache'),
      '--data.count',
      '5',
      '--data.digitsA',
      '1',
      '--latent.compressionRate',
      '2',
      '--latent.topK',
      '4',
      '--chunkSize',
      '2',
      '--batchSize',
      '2',
    ];
    expect((await run(args)).notes).toMatchObject({ examples: 5, computed: 5, chunks: 3, k: 4 });
    const m = JSON.parse(readFileSync(join(dir, 'cache/manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(m).toMatchObject({ complete: true, r: 2, k: 4, tokenizer: { sha256: tokenizerSha(dec.dir), vocabSize: 128256 }, dataset: { count: 5 } });
    expect((await run([...args, '--resume'])).notes).toMatchObject({ computed: 0, chunks: 3 });
    const e = await run([...args.map((a) => (a === '2' ? '3' : a)), '--resume']).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/made for other inputs \(r: 2 vs 3\)/);

    // --compute float16: the weights read as float16 (this float32 checkpoint rounded once), computed in 16 bits;
    // the same chunk format (phase 2's reader loads it) and record. The probabilities are a softmax over the
    // k largest logits in sorted order, and the k largest values move by at most the largest logit error, so
    // they compare position by position whatever ids near-ties swap: F16_PROBS (measured ≤ 1e-4 relative here).
    const F16_PROBS = { rtol: 2e-3, atol: 1e-6 };
    const at16 = args.map((a) => (a === join(dir, 'cache') ? join(dir, 'cache16') : a));
    expect((await run([...at16, '--compute', 'float16'])).notes).toMatchObject({ examples: 5, chunks: 3, k: 4, compute: 'float16' });
    expect(JSON.parse(readFileSync(join(dir, 'cache16/config.json'), 'utf8'))).toMatchObject({ config: { compute: 'float16' } });
    const m32 = JSON.parse(readFileSync(join(dir, 'cache/manifest.json'), 'utf8')) as CacheManifest;
    const m16 = JSON.parse(readFileSync(join(dir, 'cache16/manifest.json'), 'utf8')) as CacheManifest;
    expect({ ...m16, chunks: m16.chunks.map((c) => c.file) }).toEqual({ ...m32, chunks: m32.chunks.map((c) => c.file) });
    const [t32, t16] = [readLatentCache(join(dir, 'cache'), m32).teachers, readLatentCache(join(dir, 'cache16'), m16).teachers];
    expect(t16.map((t) => [t.m, 'k' in t ? t.k : 0])).toEqual(t32.map((t) => [t.m, 'k' in t ? t.k : 0]));
    t16.forEach((t, b) => {
      if (!('probs' in t) || !('probs' in t32[b]!)) throw new Error('expected soft-topk teachers');
      expect(t.probs).toBeInstanceOf(Float32Array);
      expect(t.indices).toBeInstanceOf(Int32Array);
      expect(Array.from(t.probs)).toBeAllclose(Array.from(t32[b].probs), F16_PROBS);
    });
    const bad = await run([...at16, '--compute', 'bf16']).then(
      () => null,
      (x: unknown) => x,
    );
    expect((bad as Error).message).toBe('Invalid values: Argument: compute, Given: "bf16", Choices: "float32", "float16", "bfloat16"');

    // Edited manifests: a chunk name outside the folder, a k or kind that the chunks' shapes contradict.
    const cache = join(dir, 'cache');
    const good = JSON.parse(readFileSync(join(cache, 'manifest.json'), 'utf8')) as CacheManifest;
    const expectation = { vocabSize: good.vocabSize, tokenizer: good.tokenizer, dataset: good.dataset };
    expect(readLatentCache(cache, expectation).teachers.length).toBe(5);
    const edited = (patch: (m: CacheManifest) => CacheManifest): string => {
      const copy = mkdtempSync(join(dir, 'edited-'));
      cpSync(cache, copy, { recursive: true });
      writeFileSync(join(copy, 'manifest.json'), JSON.stringify(patch(structuredClone(good))));
      try {
        readLatentCache(copy, expectation);
      } catch (x) {
        expect(x).toBeInstanceOf(UserError);
        return (x as Error).message.replace(copy, '<cache>');
      }
      throw new Error('expected an error');
    };
    cpSync(join(cache, 'chunk-000000.safetensors'), join(dir, 'outside.safetensors'));
    expect(edited((m) => ({ ...m, chunks: m.chunks.map((c, i) => (i === 0 ? { ...c, file: '../outside.safetensors' } : c)) }))).toBe(
      '<cache>/manifest.json: field \'chunks[0].file\': "../outside.safetensors" is not a chunk file name of this folder (chunk-NNNNNN.safetensors)',
    );
    expect(edited((m) => ({ ...m, k: 2 }))).toMatch(
      /^<cache>\/chunk-000000\.safetensors: field 'probs': shape \[\d+, 4\] does not match the manifest \(\[Σm, k\] = \[\d+, 2\]\)$/,
    );
    expect(edited((m) => ({ ...m, latent: 'hidden', k: 0 }))).toBe("<cache>/chunk-000000.safetensors: field 'hidden': missing: not a hidden chunk");
    expect(edited((m) => ({ ...m, r: 0 }))).toBe("<cache>/manifest.json: field 'r': expected a positive integer, got 0");
    expect(edited((m) => ({ ...m, chunks: [m.chunks[1]!, m.chunks[0]!, m.chunks[2]!] }))).toMatch(/field 'chunks\[0\]': expected examples \[0, end\)/);

    // An encoder with fewer positions than the longest example plus its compress tokens: one line, no folder.
    saveModelDir(join(dir, 'enc-short'), { ...enc.config, maxPositionEmbeddings: 16 }, enc.tensors, dec.dir);
    const short = await run([
      ...args.map((a) => (a === join(dir, 'enc') ? join(dir, 'enc-short') : a === join(dir, 'cache') ? join(dir, 'cache-short') : a)),
    ]).then(
      () => null,
      (x: unknown) => x,
    );
    expect(short).toBeInstanceOf(UserError);
    expect((short as Error).message).toMatch(
      /^field 'data': the longest example needs \d+ positions \(with its latents, r = 2\), more than the max_position_embeddings 16 of .*enc-short/,
    );
    expect(existsSync(join(dir, 'cache-short'))).toBe(false);

    // The cache records the spec it was made with.
    expect(JSON.parse(readFileSync(join(dir, 'cache/latent.json'), 'utf8'))).toEqual({
      kind: 'soft-topk',
      compressionRate: 2,
      topK: 4,
      ltim: true,
      ltsum: true,
    });
  }, 60_000);

  it("takes the spec from the encoder's latent.json and refuses a flag that differs", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cache-latents-'));
    const dec = await writeRandomModel(join(dir, 'dec'), 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 5);
    const enc = resizeForCompress(dec.config, dec.tensors);
    const spec = { kind: 'soft-topk', compressionRate: 3, topK: 6, ltim: false, ltsum: true } as const;
    saveModelDir(join(dir, 'enc'), enc.config, enc.tensors, dec.dir, spec);
    const args = ['--encoder', join(dir, 'enc'), '--decoder', dec.dir, '--data.count', '3', '--data.digitsA', '1', '--batchSize', '3'];
    const e = await run([...args, '--out', join(dir, 'x'), '--latent.topK', '4']).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toBe(
      `latent spec mismatch: cache-latents config sets latent.topK = 4 but ${join(dir, 'enc/latent.json')} records 6; drop the field to use the recorded value`,
    );
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect((await run([...args, '--out', join(dir, 'cache')])).notes).toMatchObject({ examples: 3, k: 6, compressionRate: 3 });
    expect(JSON.parse(readFileSync(join(dir, 'cache/manifest.json'), 'utf8'))).toMatchObject({ r: 3, k: 6, ltim: false, latent: 'soft-topk' });
    expect(JSON.parse(readFileSync(join(dir, 'cache/latent.json'), 'utf8'))).toEqual(spec);
  }, 60_000);
});
