// The micro pipeline end to end through the phase functions, on the real Llama-3.2 tokenizer
// (vocabulary 128256) and a random-init hidden-32 model: cot-sft → phase 1 encoder / decoder / union →
// merge-lora → cache-latents → phase 2. Asserts the outputs each phase hands to the next, that the
// phase-1 losses and the phase-2 KL fall (from metrics.jsonl), and the one-line errors of bad inputs.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@latent-sft/config';
import { UserError, silentLogger } from '@latent-sft/core';
import { loadAdapter, loadCheckpoint } from '@latent-sft/models';
import { readMetrics } from '@latent-sft/train';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CacheManifest, cacheLatentsConfig, cotSftConfig, mergeLoraConfig, phase1DecoderConfig, phase1EncoderConfig, phase1UnionConfig,
  phase2Config, runCacheLatents, runCotSft, runMergeLora, runPhase1Decoder, runPhase1Encoder, runPhase1Union, runPhase2,
} from './index.js';

const ctx = { logger: silentLogger, now: () => new Date('2026-01-01T00:00:00Z') };
const root = mkdtempSync(join(tmpdir(), 'pipeline-micro-'));
const at = (name: string) => join(root, name);
const data = { 'data.count': 8, 'data.digitsA': 1, 'data.digitsB': 2 };
const train = (steps: number, lr: number) => ({ 'train.steps': steps, 'train.batchSize': 4, 'train.lr': lr, 'train.keepLast': 1 });
const p1 = { ...data, r: 2, 'lora.r': 4, ...train(8, 2e-2) };

/** Mean of a metric over the first and over the last epoch (2 steps each: 8 examples, batch 4: the same data). */
function firstLast(dir: string, key: string): [number, number] {
  const recs = readMetrics(join(dir, 'metrics.jsonl'));
  const mean = (rs: typeof recs) => rs.reduce((s, r) => s + (r[key] as number), 0) / rs.length;
  return [mean(recs.slice(0, 2)), mean(recs.slice(-2))];
}

function oneLineError(fn: () => unknown): Promise<string> {
  return Promise.resolve().then(fn).then(() => { throw new Error('expected an error'); }, (e: unknown) => {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  });
}

describe('micro pipeline (CPU)', () => {
  beforeAll(async () => {
    await runCotSft(loadConfig({ schema: cotSftConfig, overrides: {
      out: at('m0'), 'base.kind': 'init', 'base.hiddenSize': 32, 'base.intermediateSize': 64, ...data, ...train(3, 1e-2),
    } }), ctx);
    await runPhase1Encoder(loadConfig({ schema: phase1EncoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), ...p1 } }), ctx);
    await runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('dec'), base: at('m0/hf'), encoder: at('enc/hf'), ...p1 } }), ctx);
    await runPhase1Union(loadConfig({ schema: phase1UnionConfig, overrides: { out: at('uni'), encoder: at('enc/hf'), decoder: at('dec/hf'), ...p1 } }), ctx);
    await runMergeLora(loadConfig({ schema: mergeLoraConfig, overrides: { out: at('m1'), base: at('dec/hf'), adapter: at('uni/lora_adapter/decoder_weight') } }), ctx);
    await runCacheLatents(loadConfig({ schema: cacheLatentsConfig, overrides: {
      out: at('cache'), encoder: at('enc/hf'), adapter: at('uni/lora_adapter/encoder_weight'), decoder: at('m1/hf'), ...data, r: 2, k: 5, chunkSize: 3,
    } }), ctx);
    await runPhase2(loadConfig({ schema: phase2Config, overrides: {
      out: at('p2'), model: at('m1/hf'), cache: at('cache'), ...data, 'lora.r': 4, 'gumbel.enabled': true, ...train(8, 2e-2),
    } }), ctx);
  }, 300_000);

  it('each phase writes what the next one reads', () => {
    const m0 = loadCheckpoint(at('m0/hf'));
    expect(m0.config.vocabSize).toBe(128256);
    expect(existsSync(at('m0/hf/tokenizer.json'))).toBe(true);
    const enc = loadCheckpoint(at('enc/hf'));
    expect(enc.config.vocabSize).toBe(128257);
    expect(loadCheckpoint(at('enc/base_model')).config.vocabSize).toBe(128257);
    expect(loadAdapter(at('enc/lora_adapter')).config.targetModules).toContain('embed_tokens');
    expect(loadAdapter(at('dec/lora_adapter')).config.taskType).toBe('CAUSAL_LM');
    expect(loadAdapter(at('uni/lora_adapter/encoder_weight')).config.taskType).toBe('FEATURE_EXTRACTION');
    expect(loadCheckpoint(at('m1/hf')).config.vocabSize).toBe(128256);
    const manifest = JSON.parse(readFileSync(at('cache/manifest.json'), 'utf8')) as CacheManifest;
    expect(manifest).toMatchObject({ complete: true, r: 2, k: 5, dataset: { count: 8 } });
    expect(manifest.chunks.map((c) => [c.start, c.end])).toEqual([[0, 3], [3, 6], [6, 8]]);
    expect(loadCheckpoint(at('p2/hf')).config.vocabSize).toBe(128256);
    const rec = JSON.parse(readFileSync(at('p2/config.json'), 'utf8')) as { app: string; config: { gumbel: { enabled: boolean } } };
    expect(rec.app).toBe('phase2');
    expect(rec.config.gumbel.enabled).toBe(true);
    // The config record is also saved beside every checkpoint.
    expect(existsSync(join(at('p2/checkpoints/step-000008'), 'config.json'))).toBe(true);
  });

  it('the phase-1 losses and the phase-2 KL fall', () => {
    for (const step of ['enc', 'dec', 'uni']) {
      const [first, last] = firstLast(at(step), 'loss');
      expect(last, `${step}: ${first} -> ${last}`).toBeLessThan(first);
    }
    const [k0, k1] = firstLast(at('p2'), 'kl');
    expect(k1, `kl ${k0} -> ${k1}`).toBeLessThan(k0 * 0.98); // measured 10.46 -> 10.03 (Gumbel-perturbed targets)
  });

  it('bad inputs: one-line errors, nothing overwritten', async () => {
    // An output dir that holds a run.
    const before = readFileSync(at('enc/summary.json'), 'utf8');
    expect(await oneLineError(() => runPhase1Encoder(loadConfig({ schema: phase1EncoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), ...p1 } }), ctx)))
      .toMatch(/already holds a finished phase1-encoder run; pass --resume/);
    expect(await oneLineError(() => runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), encoder: at('enc/hf'), ...p1 } }), ctx)))
      .toMatch(/holds a run of 'phase1-encoder', not 'phase1-decoder'/);
    expect(readFileSync(at('enc/summary.json'), 'utf8')).toBe(before);
    // A decoder given where the step-1 encoder belongs.
    expect(await oneLineError(() => runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('x1'), base: at('m0/hf'), encoder: at('m0/hf'), ...p1 } }), ctx)))
      .toMatch(/vocabulary 128256, expected 128257/);
    // A missing checkpoint.
    expect(await oneLineError(() => runMergeLora(loadConfig({ schema: mergeLoraConfig, overrides: { out: at('x2'), base: at('nope'), adapter: at('uni/lora_adapter/decoder_weight') } }), ctx)))
      .toMatch(/merge base not found/);
    // A cache of other data.
    expect(await oneLineError(() => runPhase2(loadConfig({ schema: phase2Config, overrides: { out: at('x3'), model: at('m1/hf'), cache: at('cache'), ...data, 'data.count': 6 } }), ctx)))
      .toMatch(/latent cache does not match this run \(dataset: /);
    expect(existsSync(at('x3'))).toBe(false);
    // A config typo.
    expect(() => loadConfig({ schema: phase2Config, overrides: { out: 'x', model: 'm', cache: 'c', 'train.stpes': 3 } })).toThrow(/train.stpes/);
  });

  it('cache-latents resumes: the finished chunks verify and are kept', async () => {
    const s = await runCacheLatents(loadConfig({ schema: cacheLatentsConfig, overrides: {
      out: at('cache'), encoder: at('enc/hf'), adapter: at('uni/lora_adapter/encoder_weight'), decoder: at('m1/hf'), ...data, r: 2, k: 5, chunkSize: 3, resume: true,
    } }), ctx);
    expect(s.notes).toMatchObject({ examples: 8, computed: 0, chunks: 3 });
    expect(await oneLineError(() => runCacheLatents(loadConfig({ schema: cacheLatentsConfig, overrides: {
      out: at('cache'), encoder: at('enc/hf'), decoder: at('m1/hf'), ...data, r: 3, k: 5, chunkSize: 3, resume: true,
    } }), ctx))).toMatch(/made for other inputs \(r: 2 vs 3\)/);
  });
});
