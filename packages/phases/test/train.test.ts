// Every objective trains: a few plain-SGD steps through graph.buildTrainStep on ORT CPU lower the loss
// on a fixed batch of the random tiny Llama. Phase 1's encoder step is the sharpest: its only trainable
// tensors sit in the encoder, so the loss can only fall through h → latent → scatter → decoder.
// Also: the trainable / frozen sets of the three Phase-1 steps (spec §3.6) and option errors.
import { Rng } from '@latent-sft/core';
import { buildTrainStep, serialize, sgd } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import {
  type Objective,
  type Phase2Example,
  collateCotSft,
  encoderConfig,
  collatePhase1,
  collatePhase2,
  cotSftObjective,
  defaultLora,
  phase1LoraDefaults,
  phase1Objective,
  phase2Objective,
} from '../src/index.js';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';
import { nums } from './helpers.js';

/** Required drop of the loss after the SGD steps (relative to the first step's loss). */
const MIN_DROP = 0.01;

async function sgdLosses(obj: Objective, fixed: Record<string, HostTensor>, params: Record<string, HostTensor>, lr: number, steps: number): Promise<number[]> {
  const step = buildTrainStep({
    params: obj.trainable,
    inputs: { ...obj.frozen, ...obj.batch },
    optimizer: sgd(lr),
    buildLoss: (g, p, i) => obj.buildLoss(g, p, i).loss,
  });
  const s = await Session.create(serialize(step.graph).model);
  const losses: number[] = [];
  let cur = params;
  for (let i = 0; i < steps; i++) {
    const out = await s.run({ ...fixed, ...cur });
    losses.push(nums(out[step.loss])[0] as number);
    cur = Object.fromEntries(Object.keys(cur).map((n) => [n, out[step.updated[n] as string] as HostTensor]));
  }
  return losses;
}

function expectFalls(losses: number[]): void {
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(losses[losses.length - 1]!, `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`).toBeLessThan(losses[0]! * (1 - MIN_DROP));
}

const small = (task: 'CAUSAL_LM' | 'FEATURE_EXTRACTION', dropout = 0) =>
  defaultLora(task, { r: 4, alpha: 8, dropout, embedTokens: task === 'FEATURE_EXTRACTION' });
const p1lora = { encoder: small('FEATURE_EXTRACTION'), decoder: small('CAUSAL_LM') };
const p1Feeds = (ltim: boolean, ltsum: boolean, dropoutSeed?: number) =>
  collatePhase1(examples, { r: 2, compressId: COMPRESS, padId: PAD, ltim, ltsum, ...(dropoutSeed !== undefined ? { dropoutSeed } : {}) }).feeds;
const p1Weights = () => ({ ...weightFeeds(1, 'encoder.', 'float32', 1), ...weightFeeds(1, 'decoder.') });

describe('phase 1 steps', () => {
  it('trainable / frozen sets per step (spec §3.6)', () => {
    const names = (step: 'encoder' | 'decoder' | 'union') =>
      phase1Objective(config, { step, latent: { kind: 'soft-topk', k: 4 }, ltim: true, ltsum: true, lora: phase1LoraDefaults({ r: 4 }) });
    const enc = names('encoder');
    const dec = names('decoder');
    const uni = names('union');
    const tr = (o: Objective) => Object.keys(o.trainable);
    expect(tr(enc).every((n) => n.startsWith('encoder.base_model.model.layers.') || n.startsWith('encoder.base_model.model.embed_tokens.'))).toBe(true);
    expect(tr(enc)).toContain('encoder.base_model.model.embed_tokens.lora_embedding_A');
    expect(enc.trainable['encoder.base_model.model.embed_tokens.lora_embedding_A']?.shape).toEqual([4, V + 1]);
    expect(tr(dec).every((n) => n.startsWith('decoder.base_model.model.model.layers.'))).toBe(true);
    expect(tr(uni).sort()).toEqual([...tr(enc), ...tr(dec)].sort());
    expect(tr(dec).length).toBe(config.numHiddenLayers * 7 * 2);
    for (const o of [enc, dec, uni]) {
      expect(o.frozen['encoder.model.embed_tokens.weight']?.shape).toEqual([V + 1, config.hiddenSize]);
      expect(o.frozen['decoder.model.embed_tokens.weight']?.shape).toEqual([V, config.hiddenSize]);
      expect(Object.keys(o.frozen).length).toBe(2 * Object.keys(weightFeeds(1)).length);
    }
    expect(encoderConfig(config).vocabSize).toBe(V + 1);
  });

  it('encoder step (soft top-k, LTIM + LTSuM): the loss falls through the latents alone', async () => {
    const obj = phase1Objective(config, { step: 'encoder', latent: { kind: 'soft-topk', k: 4 }, ltim: true, ltsum: true, lora: p1lora });
    const losses = await sgdLosses(obj, { ...p1Weights(), ...p1Feeds(true, true) }, loraFeeds(encoderConfig(config), p1lora.encoder, 2, 'encoder.'), 4, 6);
    expectFalls(losses);
  });

  it('union step (soft-full, with LoRA dropout) and decoder step (hidden latents, causal ablations) train', async () => {
    const drop = { encoder: small('FEATURE_EXTRACTION', 0.1), decoder: small('CAUSAL_LM', 0.1) };
    const uni = phase1Objective(config, { step: 'union', latent: { kind: 'soft-full' }, ltim: true, ltsum: true, lora: drop });
    expect(uni.batch.dropout_seed).toEqual({ dtype: 'int64', shape: [] });
    const params = { ...loraFeeds(encoderConfig(config), drop.encoder, 2, 'encoder.'), ...loraFeeds(config, drop.decoder, 3, 'decoder.') };
    expectFalls(await sgdLosses(uni, { ...p1Weights(), ...p1Feeds(true, true, 7) }, params, 0.5, 5));
    const dec = phase1Objective(config, { step: 'decoder', latent: { kind: 'hidden' }, ltim: false, ltsum: false, lora: p1lora });
    expectFalls(await sgdLosses(dec, { ...p1Weights(), ...p1Feeds(false, false) }, loraFeeds(config, p1lora.decoder, 3, 'decoder.'), 1, 5));
  });

  it('bad options: one-line errors', () => {
    const base = { latent: { kind: 'soft-topk' as const, k: 4 }, ltim: true, ltsum: true };
    expect(() => phase1Objective(config, { ...base, step: 'encoder', lora: { decoder: p1lora.decoder } })).toThrow(/lora.encoder.*step 'encoder'/);
    expect(() => phase1Objective(config, { ...base, step: 'union', lora: { encoder: p1lora.encoder } })).toThrow(/lora.decoder/);
    expect(() => phase1Objective(config, { ...base, step: 'decoder', lora: { decoder: small('FEATURE_EXTRACTION') } })).toThrow(/CAUSAL_LM/);
    expect(() =>
      phase1Objective(config, { ...base, step: 'decoder', lora: { decoder: { ...small('CAUSAL_LM'), targetModules: ['q_proj', 'embed_tokens'] } } }),
    ).toThrow(/embed_tokens/);
    expect(() => phase1Objective(config, { ...base, latent: { kind: 'soft-topk', k: 0 }, step: 'encoder', lora: p1lora })).toThrow(/top-k width/);
    expect(() => phase1Objective(config, { ...base, step: 'both' as never, lora: p1lora })).toThrow(/encoder, decoder or union/);
  });
});

describe('phase 2 and CoT-SFT', () => {
  it('phase 2 (soft top-k teachers): CE + KL falls', async () => {
    const rng = Rng.fromSeed(21);
    const ex2: Phase2Example[] = examples.map((e, i) => {
      const m = i + 2;
      return { ...e, teacher: { m, k: 4, probs: new Float32Array(m * 4).fill(0.25), indices: Int32Array.from({ length: m * 4 }, () => rng.int(V)) } };
    });
    const lora = small('CAUSAL_LM');
    const obj = phase2Objective(config, { latent: 'soft-topk', lora });
    const fixed = { ...weightFeeds(1), ...collatePhase2(ex2, { padId: PAD, latent: 'soft-topk', vocabSize: V }).feeds };
    expectFalls(await sgdLosses(obj, fixed, loraFeeds(config, lora, 5), 2, 5));
    expect(() => phase2Objective(config, { latent: 'soft-topk', lora: small('FEATURE_EXTRACTION') })).toThrow(/CAUSAL_LM/);
  });

  it('CoT-SFT full fine-tuning and No-CoT with LoRA: the loss falls', async () => {
    const full = cotSftObjective(config);
    expect(Object.keys(full.frozen)).toEqual([]);
    expectFalls(await sgdLosses(full, collateCotSft(examples, { padId: PAD }).feeds, weightFeeds(1), 0.5, 5));
    const lora = small('CAUSAL_LM', 0.1);
    const obj = cotSftObjective(config, { lora });
    const fixed = { ...weightFeeds(1), ...collateCotSft(examples, { padId: PAD, variant: 'no-cot', dropoutSeed: 3 }).feeds };
    expectFalls(await sgdLosses(obj, fixed, loraFeeds(config, lora, 6), 1, 5));
  });
});
