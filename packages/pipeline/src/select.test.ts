// Best-checkpoint selection of the phase-1 apps (`select.metric`) on a tiny corpus-vocabulary model on
// CPU: every checkpoint is scored on held-out problems with latents from their gold CoT; the recorded
// scores (summary.json, selection.jsonl, the checkpoint manifests) agree, the chosen step is the best of
// them (earliest on ties), the published adapter holds exactly that checkpoint's tensors, and a run cut
// after 4 steps and resumed to 8 ends with the same scores, choice and weights as the uninterrupted run
// (constant LR, so the two runs are the same computation).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@latent-sft/config';
import { silentLogger } from '@latent-sft/core';
import { loadAdapter } from '@latent-sft/models';
import { CheckpointManager, readMetrics, safetensorsCodec } from '@latent-sft/train';
import { beforeAll, describe, expect, it } from 'vitest';
import { type PhaseSummary, cotSftConfig, phase1DecoderConfig, phase1EncoderConfig, runCotSft, runPhase1Decoder, runPhase1Encoder } from './index.js';

const ctx = { logger: silentLogger, now: () => new Date('2026-01-01T00:00:00Z') };
const root = mkdtempSync(join(tmpdir(), 'pipeline-select-'));
const at = (name: string) => join(root, name);
const data = { 'data.count': 8, 'data.digitsA': 1, 'data.digitsB': 2, 'data.split': 'train' };
const train = (steps: number) => ({
  'train.steps': steps,
  'train.batchSize': 4,
  'train.lr': 2e-2,
  'train.schedule': 'constant',
  'train.warmupRatio': 0,
  'train.checkpointEvery': 2,
  'train.keepLast': 1,
});
const p1 = { ...data, 'latent.compressionRate': 2, 'latent.topK': 5, 'lora.r': 4, 'select.examples': 6, 'select.batchSize': 4 };
const summary = (dir: string): PhaseSummary => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as PhaseSummary;

/** The trainable tensors of checkpoint `step` in `dir`, by name without the prefix. */
function checkpointTensors(dir: string, step: number, prefix: string): Map<string, Float32Array> {
  const m = CheckpointManager.open({
    dir: join(dir, 'checkpoints'),
    keepLast: 1,
    keepBest: true,
    metricMode: 'min',
    codec: safetensorsCodec,
    record: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
    resume: true,
    logger: silentLogger,
  });
  const out = new Map<string, Float32Array>();
  for (const t of m.load(step).tensors) if (t.name.startsWith(prefix)) out.set(t.name.slice(prefix.length), t.data as Float32Array);
  return out;
}

describe('phase 1 best-checkpoint selection (CPU)', () => {
  beforeAll(async () => {
    await runCotSft(
      loadConfig({
        schema: cotSftConfig,
        overrides: { out: at('m0'), 'base.kind': 'init', 'base.hiddenSize': 32, 'base.intermediateSize': 64, 'base.vocab': 'corpus', ...data, ...train(3) },
      }),
      ctx,
    );
    const enc = (out: string, steps: number, extra: Record<string, unknown> = {}) =>
      runPhase1Encoder(
        loadConfig({
          schema: phase1EncoderConfig,
          overrides: { out: at(out), base: at('m0/hf'), ...p1, 'select.metric': 'gold-cot-ce', ...train(steps), ...extra },
        }),
        ctx,
      );
    await enc('enc', 8);
    await enc('enc-cut', 4);
    await enc('enc-cut', 8, { resume: true, allowConfigChange: true });
    await runPhase1Decoder(
      loadConfig({
        schema: phase1DecoderConfig,
        overrides: { out: at('dec'), base: at('m0/hf'), encoder: at('enc/hf'), ...p1, 'select.metric': 'gold-cot-exact', ...train(6) },
      }),
      ctx,
    );
  }, 600_000);

  it('scores every checkpoint; the chosen step is the best recorded score; the adapter is that checkpoint', () => {
    const s = summary(at('enc'));
    const sel = s.selection!;
    expect(sel).toMatchObject({ select: 'gold-cot-ce', metric: 'ce', mode: 'min', examples: 6 });
    expect(sel.scores.map((r) => r['step'])).toEqual([2, 4, 6, 8]);
    expect(readMetrics(at('enc/selection.jsonl'))).toEqual(sel.scores);
    const ces = sel.scores.map((r) => r['ce'] as number);
    for (const r of sel.scores) expect(Number.isFinite(r['exact'])).toBe(true);
    expect(new Set(ces).size).toBeGreaterThan(1); // the scores differ, so the choice is a real one
    const best = ces.indexOf(Math.min(...ces));
    expect(sel.bestStep).toBe(sel.scores[best]!['step']);
    expect(sel.bestScore).toBe(ces[best]);
    // The best checkpoint is kept beside the last one, with its score in the manifest.
    const manifest = JSON.parse(readFileSync(join(at('enc/checkpoints'), `step-${String(sel.bestStep).padStart(6, '0')}`, 'manifest.json'), 'utf8'));
    expect(manifest.metric).toBe(sel.bestScore);
    const ckpt = checkpointTensors(at('enc'), sel.bestStep, 'encoder.');
    const adapter = loadAdapter(at('enc/lora_adapter')).tensors;
    expect(adapter.length).toBe(ckpt.size);
    for (const t of adapter) expect(t.data).toEqual(ckpt.get(t.name));
    if (sel.bestStep !== 8) {
      // ... and not the last checkpoint's
      const last = checkpointTensors(at('enc'), 8, 'encoder.');
      expect(adapter.some((t) => !(t.data as Float32Array).every((v, i) => v === last.get(t.name)![i]))).toBe(true);
    }
  });

  it('a run cut at step 4 and resumed keeps its scores and ends as the uninterrupted one', () => {
    const a = summary(at('enc')).selection!;
    const b = summary(at('enc-cut')).selection!;
    expect(b.scores).toEqual(a.scores);
    expect([b.bestStep, b.bestScore]).toEqual([a.bestStep, a.bestScore]);
    const ta = loadAdapter(at('enc/lora_adapter')).tensors;
    const tb = new Map(loadAdapter(at('enc-cut/lora_adapter')).tensors.map((t) => [t.name, t.data]));
    for (const t of ta) expect(tb.get(t.name)).toEqual(t.data);
  });

  it('the decoder step selects by greedy answer exact match (max, earliest on ties)', () => {
    const sel = summary(at('dec')).selection!;
    expect(sel).toMatchObject({ select: 'gold-cot-exact', metric: 'exact', mode: 'max' });
    expect(sel.scores.map((r) => r['step'])).toEqual([2, 4, 6]);
    const ex = sel.scores.map((r) => r['exact'] as number);
    for (const v of ex) expect(Number.isInteger(v * 6)).toBe(true); // a fraction of the 6 held-out problems
    expect(sel.bestStep).toBe(sel.scores[ex.indexOf(Math.max(...ex))]!['step']);
  });
});
