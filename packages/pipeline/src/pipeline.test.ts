// The micro pipeline end to end through the phase functions, on the real Llama-3.2 tokenizer
// (vocabulary 128256) and a random-init hidden-32 model: cot-sft → phase 1 encoder / decoder / union →
// merge-lora → cache-latents → phase 2. Asserts the outputs each phase hands to the next, that the
// phase-1 losses and the phase-2 KL fall (from metrics.jsonl), and the one-line errors of bad inputs.
// Then the "- Hidden State" ablation row end to end from the same M0: phase 1 (latent hidden) →
// merge-lora → cache-latents (latent hidden) → phase 2 (CE + hidden-state MSE) → `eval run --mode latent`,
// which reads hf/latent.json and feeds hidden states (runEval, the function behind the eval app). The
// latent spec phase 1 declares (compression rate 2, top-k 5) is checked in every folder downstream.
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@latent-sft/config';
import { type Logger, UserError, silentLogger } from '@latent-sft/core';
import { writeLatentSpec } from '@latent-sft/latent';
import { loadAdapter, loadCheckpoint, openSafetensors } from '@latent-sft/models';
import { readMetrics } from '@latent-sft/train';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CacheManifest,
  cacheLatentsConfig,
  cotSftConfig,
  mergeLoraConfig,
  phase1DecoderConfig,
  phase1EncoderConfig,
  phase1UnionConfig,
  phase2Config,
  defaultMethodName,
  runCacheLatents,
  runCotSft,
  runEval,
  runMergeLora,
  runPhase1Decoder,
  runPhase1Encoder,
  runPhase1Union,
  runPhase2,
} from './index.js';

const ctx = { logger: silentLogger, now: () => new Date('2026-01-01T00:00:00Z') };
const root = mkdtempSync(join(tmpdir(), 'pipeline-micro-'));
const at = (name: string) => join(root, name);
// split 'all': these 8 problems (drawn before the held-out split existed) are the ones the thresholds were measured on.
const data = { 'data.count': 8, 'data.digitsA': 1, 'data.digitsB': 2, 'data.split': 'all' };
const train = (steps: number, lr: number) => ({ 'train.steps': steps, 'train.batchSize': 4, 'train.lr': lr, 'train.keepLast': 1 });
const p1 = { ...data, 'latent.compressionRate': 2, 'latent.topK': 5, 'lora.r': 4, ...train(8, 2e-2) };

/** Mean of a metric over the first and over the last epoch (2 steps each: 8 examples, batch 4: the same data). */
function firstLast(dir: string, key: string): [number, number] {
  const recs = readMetrics(join(dir, 'metrics.jsonl'));
  const mean = (rs: typeof recs) => rs.reduce((s, r) => s + (r[key] as number), 0) / rs.length;
  return [mean(recs.slice(0, 2)), mean(recs.slice(-2))];
}

function oneLineError(fn: () => unknown): Promise<string> {
  return Promise.resolve()
    .then(fn)
    .then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(UserError);
        const msg = (e as Error).message;
        expect(msg).not.toContain('\n');
        return msg;
      },
    );
}

describe('micro pipeline (CPU)', () => {
  beforeAll(async () => {
    await runCotSft(
      loadConfig({
        schema: cotSftConfig,
        overrides: {
          out: at('m0'),
          'base.kind': 'init',
          'base.hiddenSize': 32,
          'base.intermediateSize': 64,
          ...data,
          ...train(3, 1e-2),
        },
      }),
      ctx,
    );
    await runPhase1Encoder(loadConfig({ schema: phase1EncoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), ...p1 } }), ctx);
    await runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('dec'), base: at('m0/hf'), encoder: at('enc/hf'), ...p1 } }), ctx);
    await runPhase1Union(loadConfig({ schema: phase1UnionConfig, overrides: { out: at('uni'), encoder: at('enc/hf'), decoder: at('dec/hf'), ...p1 } }), ctx);
    await runMergeLora(
      loadConfig({ schema: mergeLoraConfig, overrides: { out: at('m1'), base: at('dec/hf'), adapter: at('uni/lora_adapter/decoder_weight') } }),
      ctx,
    );
    await runCacheLatents(
      loadConfig({
        schema: cacheLatentsConfig,
        overrides: {
          out: at('cache'),
          encoder: at('enc/hf'),
          adapter: at('uni/lora_adapter/encoder_weight'),
          decoder: at('m1/hf'),
          ...data,
          chunkSize: 3,
        },
      }),
      ctx,
    );
    await runPhase2(
      loadConfig({
        schema: phase2Config,
        overrides: {
          out: at('p2'),
          model: at('m1/hf'),
          cache: at('cache'),
          ...data,
          'lora.r': 4,
          'gumbel.enabled': true,
          ...train(8, 2e-2),
        },
      }),
      ctx,
    );
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
    expect(manifest.chunks.map((c) => [c.start, c.end])).toEqual([
      [0, 3],
      [3, 6],
      [6, 8],
    ]);
    expect(loadCheckpoint(at('p2/hf')).config.vocabSize).toBe(128256);
    expect(manifest.latent).toBe('soft-topk');
    // The latent spec phase 1 declared travels with every model: phase-1 outputs, M1 (merge-lora), the cache, M2.
    const spec = { kind: 'soft-topk', compressionRate: 2, topK: 5, ltim: true, ltsum: true };
    for (const dir of [
      'enc/hf',
      'enc/lora_adapter',
      'dec/hf',
      'uni/lora_adapter/encoder_weight',
      'uni/lora_adapter/decoder_weight',
      'm1/hf',
      'cache',
      'p2/hf',
      'p2/lora_adapter',
    ]) {
      expect(JSON.parse(readFileSync(at(`${dir}/latent.json`), 'utf8')), dir).toEqual(spec);
    }
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

  it('cot-sft --recompute layers reaches the Trainer: every layer recomputed, the metrics bit for bit the default run’s', async () => {
    const records: Array<Record<string, unknown>> = [];
    const capture: Logger = {
      info: (o, msg) => records.push({ ...o, msg }),
      warn: (o, msg) => records.push({ ...o, msg }),
      error: (o, msg) => records.push({ ...o, msg }),
      debug: () => {},
      child: () => capture,
    };
    const overrides = { 'base.kind': 'init', 'base.hiddenSize': 32, 'base.intermediateSize': 64, ...data, ...train(3, 1e-2) };
    await runCotSft(loadConfig({ schema: cotSftConfig, overrides: { ...overrides, out: at('m0-recompute'), recompute: 'layers' } }), {
      ...ctx,
      logger: capture,
    });
    expect(records.find((r) => r.msg === 'trainer state mode')?.['recomputedLayers']).toBe(2);
    const pick = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).map((r) => [r['loss'], r['gradNorm'] ?? r['grad_norm']]);
    expect(pick(at('m0-recompute'))).toEqual(pick(at('m0')));
  });

  it('bad inputs: one-line errors, nothing overwritten', async () => {
    // An output dir that holds a run.
    const before = readFileSync(at('enc/summary.json'), 'utf8');
    expect(
      await oneLineError(() => runPhase1Encoder(loadConfig({ schema: phase1EncoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), ...p1 } }), ctx)),
    ).toMatch(/already holds a finished phase1-encoder run; pass --resume/);
    expect(
      await oneLineError(() =>
        runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('enc'), base: at('m0/hf'), encoder: at('enc/hf'), ...p1 } }), ctx),
      ),
    ).toMatch(/holds a run of 'phase1-encoder', not 'phase1-decoder'/);
    expect(readFileSync(at('enc/summary.json'), 'utf8')).toBe(before);
    // A decoder given where the step-1 encoder belongs.
    expect(
      await oneLineError(() =>
        runPhase1Decoder(loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('x1'), base: at('m0/hf'), encoder: at('m0/hf'), ...p1 } }), ctx),
      ),
    ).toMatch(/vocabulary 128256, expected 128257/);
    // A missing checkpoint.
    expect(
      await oneLineError(() =>
        runMergeLora(
          loadConfig({ schema: mergeLoraConfig, overrides: { out: at('x2'), base: at('nope'), adapter: at('uni/lora_adapter/decoder_weight') } }),
          ctx,
        ),
      ),
    ).toMatch(/merge base not found/);
    // A cache of other data.
    expect(
      await oneLineError(() =>
        runPhase2(loadConfig({ schema: phase2Config, overrides: { out: at('x3'), model: at('m1/hf'), cache: at('cache'), ...data, 'data.count': 6 } }), ctx),
      ),
    ).toMatch(/latent cache does not match this run \(dataset: /);
    expect(existsSync(at('x3'))).toBe(false);
    // A config typo.
    expect(() => loadConfig({ schema: phase2Config, overrides: { out: 'x', model: 'm', cache: 'c', 'train.stpes': 3 } })).toThrow(/train.stpes/);
  });

  it('cache-latents resumes: the finished chunks verify and are kept', async () => {
    const s = await runCacheLatents(
      loadConfig({
        schema: cacheLatentsConfig,
        overrides: {
          out: at('cache'),
          encoder: at('enc/hf'),
          adapter: at('uni/lora_adapter/encoder_weight'),
          decoder: at('m1/hf'),
          ...data,
          chunkSize: 3,
          resume: true,
        },
      }),
      ctx,
    );
    expect(s.notes).toMatchObject({ examples: 8, computed: 0, chunks: 3 });
    expect(
      await oneLineError(() =>
        runCacheLatents(
          loadConfig({
            schema: cacheLatentsConfig,
            overrides: {
              out: at('cache'),
              encoder: at('enc/hf'),
              decoder: at('m1/hf'),
              ...data,
              chunkSize: 4,
              resume: true,
            },
          }),
          ctx,
        ),
      ),
    ).toMatch(/made for other inputs \(chunkSize: 3 vs 4\)/);
  });
});

/** The fields of an eval row read here (@latent-sft/eval's EvalRow). */
interface EvalRow {
  latents: number;
  latentSteps: Array<{ ids: number[]; probs: number[] }>;
}

/** Runs `eval run` (greedy, 2 problems, 1 seed) on `model` into `out`; returns the summary and the rows. */
async function evalRun(model: string, out: string): Promise<{ summary: { method: string; latentKind?: string; notes: string[] }; rows: EvalRow[] }> {
  await runEval(
    {
      model,
      datasets: ['gsm8k-aug-test'],
      mode: 'latent',
      seeds: [1],
      limit: 2,
      maxLatent: 3,
      maxNewTokens: 3,
      batchSize: 2,
      device: 'cpu',
      dtype: 'float32',
      sampling: { kind: 'greedy' },
      ecrK: [1, 5],
      extraction: 'lenient',
      out,
      methodName: defaultMethodName('latent', model),
      force: false,
      examples: 4,
    },
    silentLogger,
  );
  const rows = readFileSync(join(out, 'predictions', 'gsm8k-aug-test.seed-1.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EvalRow);
  return { summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), rows };
}

describe('hidden-state ablation row (CPU): phase 1 → cache → phase 2 → eval', () => {
  const hp1 = { ...p1, 'latent.kind': 'hidden', ...train(6, 2e-2) };
  beforeAll(async () => {
    // M0 from the micro pipeline above (same file, run first).
    await runPhase1Encoder(loadConfig({ schema: phase1EncoderConfig, overrides: { out: at('h-enc'), base: at('m0/hf'), ...hp1 } }), ctx);
    await runPhase1Decoder(
      loadConfig({ schema: phase1DecoderConfig, overrides: { out: at('h-dec'), base: at('m0/hf'), encoder: at('h-enc/hf'), ...hp1 } }),
      ctx,
    );
    await runPhase1Union(
      loadConfig({ schema: phase1UnionConfig, overrides: { out: at('h-uni'), encoder: at('h-enc/hf'), decoder: at('h-dec/hf'), ...hp1 } }),
      ctx,
    );
    await runMergeLora(
      loadConfig({ schema: mergeLoraConfig, overrides: { out: at('h-m1'), base: at('h-dec/hf'), adapter: at('h-uni/lora_adapter/decoder_weight') } }),
      ctx,
    );
    await runCacheLatents(
      loadConfig({
        schema: cacheLatentsConfig,
        overrides: {
          out: at('h-cache'),
          encoder: at('h-enc/hf'),
          adapter: at('h-uni/lora_adapter/encoder_weight'),
          decoder: at('h-m1/hf'),
          ...data,
          chunkSize: 5,
        },
      }),
      ctx,
    );
    // Gumbel on: does not apply to hidden latents (skipped with a warning), as a shared Table-1 config may ask for it.
    await runPhase2(
      loadConfig({
        schema: phase2Config,
        overrides: {
          out: at('h-p2'),
          model: at('h-m1/hf'),
          cache: at('h-cache'),
          ...data,
          'lora.r': 4,
          'gumbel.enabled': true,
          ...train(8, 2e-2),
        },
      }),
      ctx,
    );
  }, 300_000);

  it('the cache holds one hidden vector (d = 32) per latent and records its kind', () => {
    const manifest = JSON.parse(readFileSync(at('h-cache/manifest.json'), 'utf8')) as CacheManifest;
    expect(manifest).toMatchObject({ complete: true, latent: 'hidden', k: 0, hiddenSize: 32, r: 2, dataset: { count: 8 } });
    const st = openSafetensors(join(at('h-cache'), manifest.chunks[0]!.file));
    const m = st.readTensor('m') as Int32Array;
    const hidden = st.readTensor('hidden') as Float32Array;
    expect(m.length).toBe(5);
    expect(hidden.length).toBe(m.reduce((a, b) => a + b, 0) * 32);
    expect(hidden.every(Number.isFinite)).toBe(true);
    // Final RMSNorm output: per-vector RMS is the norm weight's scale, far from 0.
    expect(Math.sqrt(hidden.slice(0, 32).reduce((a, v) => a + v * v, 0) / 32)).toBeGreaterThan(0.1);
  });

  it('phase 2 trains CE + MSE (no KL), the MSE falls, and hf/latent.json says hidden', () => {
    const recs = readMetrics(join(at('h-p2'), 'metrics.jsonl'));
    expect(recs.every((r) => typeof r.mse === 'number' && r.kl === undefined)).toBe(true);
    const [m0, m1] = firstLast(at('h-p2'), 'mse');
    expect(m1, `mse ${m0} -> ${m1}`).toBeLessThan(m0);
    const summary = JSON.parse(readFileSync(at('h-p2/summary.json'), 'utf8')) as { first: Record<string, number>; notes: Record<string, unknown> };
    expect(Object.keys(summary.first).sort()).toEqual(['ce', 'loss', 'mse']);
    expect(summary.notes).toEqual({ latent: 'hidden', compressionRate: 2, topK: 5, ltim: 'true', ltsum: 'true' });
    expect(JSON.parse(readFileSync(at('h-p2/hf/latent.json'), 'utf8'))).toEqual({ kind: 'hidden', compressionRate: 2, topK: 5, ltim: true, ltsum: true });
  });

  it('phase 2 refuses a cache of the other kind in one line', async () => {
    expect(
      await oneLineError(() =>
        runPhase2(
          loadConfig({
            schema: phase2Config,
            overrides: {
              out: at('x5'),
              model: at('h-m1/hf'),
              cache: at('h-cache'),
              'latent.kind': 'soft-topk',
              ...data,
            },
          }),
          ctx,
        ),
      ),
    ).toMatch(/latent spec mismatch: phase2 config sets latent.kind = "soft-topk" but .*h-m1\/hf\/latent.json records "hidden"/);
    expect(
      await oneLineError(() =>
        runPhase2(
          loadConfig({
            schema: phase2Config,
            overrides: {
              out: at('x6'),
              model: at('m1/hf'),
              cache: at('cache'),
              'latent.kind': 'hidden',
              ...data,
            },
          }),
          ctx,
        ),
      ),
    ).toMatch(/latent spec mismatch: phase2 config sets latent.kind = "hidden" but .*m1\/hf\/latent.json records "soft-topk"/);
    expect(existsSync(at('x5')) || existsSync(at('x6'))).toBe(false);
    // A resumed cache of the other kind is refused too.
    expect(
      await oneLineError(() =>
        runCacheLatents(
          loadConfig({
            schema: cacheLatentsConfig,
            overrides: {
              out: at('h-cache'),
              encoder: at('h-enc/hf'),
              decoder: at('h-m1/hf'),
              ...data,
              'latent.kind': 'soft-topk',
              chunkSize: 5,
              resume: true,
            },
          }),
          ctx,
        ),
      ),
    ).toMatch(/latent spec mismatch: cache-latents config sets latent.kind = "soft-topk" but .*h-enc\/hf\/latent.json records "hidden"/);
  });

  it('eval run --mode latent reads latent.json, feeds hidden states and names the kind', async () => {
    const hid = await evalRun(at('h-p2/hf'), at('h-eval'));
    expect(hid.summary.latentKind).toBe('hidden');
    expect(hid.summary.method).toBe('Latent, hidden state (hf)');
    expect(hid.summary.notes.some((n) => n.startsWith('Latent kind: hidden (latent.json; compression rate 2, top-k 5)'))).toBe(true);
    expect(hid.rows.length).toBe(2);
    for (const r of hid.rows) {
      expect(r.latents).toBe(r.latentSteps.length);
      expect(r.latents).toBeLessThanOrEqual(3);
      for (const st of r.latentSteps) expect(st.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // The same weights with a soft-topk spec (same top-5) run as soft: the first latent step (same prompt) agrees, later
    // steps see different fed vectors.
    cpSync(at('h-p2/hf'), at('h-soft-hf'), { recursive: true });
    writeLatentSpec(at('h-soft-hf'), { kind: 'soft-topk', compressionRate: 2, topK: 5, ltim: true, ltsum: true });
    const soft = await evalRun(at('h-soft-hf'), at('h-eval-soft'));
    expect(soft.summary.latentKind).toBe('soft-topk');
    expect(soft.summary.method).toBe('Latent (h-soft-hf)');
    hid.rows.forEach((r, i) => {
      const s = soft.rows[i]!;
      if (r.latents > 0 && s.latents > 0) expect(r.latentSteps[0]!.ids).toEqual(s.latentSteps[0]!.ids);
    });
    const longer = hid.rows.findIndex((r, i) => r.latents >= 2 && soft.rows[i]!.latents >= 2);
    expect(longer, `latents ${hid.rows.map((r) => r.latents)} / ${soft.rows.map((r) => r.latents)}`).toBeGreaterThanOrEqual(0);
    expect(hid.rows[longer]!.latentSteps[1]!.probs).not.toEqual(soft.rows[longer]!.latentSteps[1]!.probs);
  });
});
