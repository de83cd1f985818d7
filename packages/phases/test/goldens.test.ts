// Phase-1 union loss and Phase-2 loss against PyTorch + transformers goldens
// (tools/reference/phase_goldens.py, float64 eager attention, stored as float32) on the tiny-llama
// fixture: collated feeds equal the python-built sequences, masks and positions; the loss and the
// gradient of every LoRA tensor agree in fp32 on ORT CPU.
// The fixture is committed: a missing one fails (regenerate with tools/reference/phase_goldens.py).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toAdditive } from '@latent-sft/masks';
import { type ModelConfig, type NamedTensor, type TensorSource, loadCheckpoint, openSafetensors } from '@latent-sft/models';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { serialize } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import {
  type Objective,
  type Phase2Example,
  type SequenceParts,
  buildLatentCacheGraph,
  collatePhase1,
  computeLatents,
  collatePhase2,
  defaultLora,
  phase1Objective,
  phase2Objective,
} from '../src/index.js';
import { f32, lossSession, nums, scalar } from './helpers.js';

/** Tolerances (fp32 ORT CPU vs float64 torch): loss relative; grads relative plus an absolute floor of
 * GRAD_FLOOR × the tensor's largest |golden| entry (entries near zero have no meaningful relative error). */
const LOSS = { rtol: 1e-5, atol: 0 };
const GRAD_RTOL = 1e-4;
const GRAD_FLOOR = 1e-5;
/** Cached latent probabilities (fp32 vs float64). */
const LATENT = { rtol: 1e-5, atol: 1e-7 };

const FIXTURE = fileURLToPath(new URL('./fixtures/phase-goldens.safetensors', import.meta.url));
const META = fileURLToPath(new URL('./fixtures/phase-goldens.json', import.meta.url));
const TINY = fileURLToPath(new URL('../../models/test/fixtures/tiny-llama', import.meta.url));

interface Meta {
  ids: { compress: number; pad: number; think: number[]; end_think: number[] };
  r: number;
  k: number;
  lora: { r: number; alpha: number };
  phase1_examples: Array<{ prefix: number[]; cot: number[]; answer: number[] }>;
  phase2_examples: Array<{ prefix: number[]; m: number; answer: number[] }>;
}

describe('phase goldens', () => {
  const meta = JSON.parse(readFileSync(META, 'utf8')) as Meta;
  const gold: TensorSource = openSafetensors(FIXTURE);
  const read = (name: string): number[] => Array.from(gold.readTensor(name) as ArrayLike<number | bigint>, Number);
  const shape = (name: string): number[] => [...gold.info(name).shape];
  const ckpt = loadCheckpoint(TINY);
  const config: ModelConfig = ckpt.config;
  const weights: NamedTensor[] = ckpt.readAll();
  const lora = (task: 'CAUSAL_LM' | 'FEATURE_EXTRACTION') =>
    defaultLora(task, { r: meta.lora.r, alpha: meta.lora.alpha, dropout: 0, embedTokens: task === 'FEATURE_EXTRACTION' });

  /** Feeds of the trainable inputs from `<case>.param.<name>`; the names must match exactly. */
  function trainableFeeds(obj: Objective, prefix: string): Record<string, HostTensor> {
    const stored = gold.tensors
      .map((t) => t.name)
      .filter((n) => n.startsWith(prefix))
      .map((n) => n.slice(prefix.length))
      .sort();
    expect(Object.keys(obj.trainable).sort()).toEqual(stored);
    return Object.fromEntries(stored.map((n) => [n, f32(shape(prefix + n), read(prefix + n))]));
  }

  function compareGrads(out: Record<string, HostTensor>, obj: Objective, prefix: string): { worstRel: number } {
    let worstRel = 0;
    for (const name of Object.keys(obj.trainable)) {
      const want = read(`${prefix}${name}`);
      const got = nums(out[`${name}.grad`]);
      const max = Math.max(...want.map(Math.abs));
      expect(got, name).toBeAllclose(want, { rtol: GRAD_RTOL, atol: GRAD_FLOOR * max });
      want.forEach((w, i) => {
        worstRel = Math.max(worstRel, Math.abs((got[i] as number) - w) / (Math.abs(w) + GRAD_FLOOR * max));
      });
    }
    return { worstRel };
  }

  it('phase 1 union: feeds equal the python sequences/masks/positions; loss and every LoRA gradient agree', async () => {
    const examples: SequenceParts[] = meta.phase1_examples.map((e) => ({
      prefixIds: e.prefix,
      thinkIds: meta.ids.think,
      cotIds: e.cot,
      endThinkIds: meta.ids.end_think,
      answerIds: e.answer,
    }));
    const batch = collatePhase1(examples, { r: meta.r, compressId: meta.ids.compress, padId: meta.ids.pad, ltim: true, ltsum: true });
    const f = batch.feeds;
    expect(nums(f.encoder_input_ids)).toEqual(read('phase1.encoder_input_ids'));
    expect(nums(f.encoder_position_ids)).toEqual(read('phase1.encoder_position_ids'));
    expect(nums(f.compress_positions)).toEqual(read('phase1.compress_positions'));
    expect(nums(f.latent_valid)).toEqual(read('phase1.latent_valid'));
    expect(nums(f.input_ids)).toEqual(read('phase1.decoder_ids').map((v) => (v === -100 ? meta.ids.pad : v)));
    expect(nums(f.position_ids)).toEqual(read('phase1.position_ids'));
    expect(nums(f.labels)).toEqual(read('phase1.labels'));
    const Te = shape('phase1.encoder_keep')[1] as number;
    const T = shape('phase1.decoder_keep')[1] as number;
    expect(nums(f.encoder_attention_mask)).toEqual(Array.from(toAdditive(Uint8Array.from(read('phase1.encoder_keep')), Te)));
    expect(nums(f.attention_mask)).toEqual(Array.from(toAdditive(Uint8Array.from(read('phase1.decoder_keep')), T)));

    const obj = phase1Objective(config, {
      step: 'union',
      latent: { kind: 'soft-topk', k: meta.k },
      ltim: true,
      ltsum: true,
      lora: { encoder: lora('FEATURE_EXTRACTION'), decoder: lora('CAUSAL_LM') },
    });
    const frozen: Record<string, HostTensor> = {};
    const extra = read('phase1.compress_embedding');
    for (const w of weights) {
      frozen[`decoder.${w.name}`] = f32(w.shape, w.data);
      frozen[`encoder.${w.name}`] =
        w.name === 'model.embed_tokens.weight' ? f32([(w.shape[0] as number) + 1, w.shape[1] as number], [...w.data, ...extra]) : f32(w.shape, w.data);
    }
    expect(Object.keys(frozen).sort()).toEqual(Object.keys(obj.frozen).sort());
    const s = await lossSession(obj, true);
    const out = await s.run({ ...frozen, ...trainableFeeds(obj, 'phase1.param.'), ...f });
    expect(scalar(out, 'loss')).toBeAllclose(read('phase1.loss')[0] as number, LOSS);
    compareGrads(out, obj, 'phase1.grad.');

    // The latent cache on the same encoder (+ its LoRA) reproduces the python top-k latents.
    const encLora = lora('FEATURE_EXTRACTION');
    const cacheWeights = Object.fromEntries([
      ...Object.entries(frozen).filter(([n]) => n.startsWith('encoder.') || n === 'decoder.model.embed_tokens.weight'),
      ...Object.entries(trainableFeeds(obj, 'phase1.param.')).filter(([n]) => n.startsWith('encoder.')),
    ]);
    const cache = await Session.create(serialize(buildLatentCacheGraph(config, { k: meta.k, lora: encLora })).model);
    const latents = await computeLatents(cache, cacheWeights, examples, { r: meta.r, compressId: meta.ids.compress, padId: meta.ids.pad, ltim: true });
    const [, M, k] = shape('phase1.latent_probs') as [number, number, number];
    const gp = read('phase1.latent_probs');
    const gi = read('phase1.latent_indices');
    latents.forEach((t, b) => {
      expect(Array.from(t.indices ?? [])).toEqual(gi.slice(b * M * k, (b * M + t.m) * k));
      expect(Array.from(t.probs)).toBeAllclose(gp.slice(b * M * k, (b * M + t.m) * k), LATENT);
    });
  });

  it('phase 2: feeds equal the python sequences; loss, CE, KL and every LoRA gradient agree', async () => {
    const [, M, k] = shape('phase2.teacher_probs') as [number, number, number];
    const tp = read('phase2.teacher_probs');
    const ti = read('phase2.teacher_indices');
    const examples: Phase2Example[] = meta.phase2_examples.map((e, b) => ({
      prefixIds: e.prefix,
      thinkIds: meta.ids.think,
      endThinkIds: meta.ids.end_think,
      answerIds: e.answer,
      teacher: {
        m: e.m,
        k,
        probs: Float32Array.from(tp.slice(b * M * k, (b * M + e.m) * k)),
        indices: Int32Array.from(ti.slice(b * M * k, (b * M + e.m) * k)),
      },
    }));
    const batch = collatePhase2(examples, { padId: meta.ids.pad, latent: 'soft-topk', vocabSize: config.vocabSize });
    expect(nums(batch.feeds.input_ids)).toEqual(read('phase2.input_ids').map((v) => (v === -100 ? meta.ids.pad : v)));
    expect(nums(batch.feeds.labels)).toEqual(read('phase2.labels'));
    expect(batch.latentStart).toEqual(read('phase2.latent_start'));
    const obj = phase2Objective(config, { latent: 'soft-topk', lora: lora('CAUSAL_LM') });
    const frozen = Object.fromEntries(weights.map((w) => [w.name, f32(w.shape, w.data)]));
    const s = await lossSession(obj, true);
    const out = await s.run({ ...frozen, ...trainableFeeds(obj, 'phase2.param.'), ...batch.feeds });
    expect(scalar(out, 'loss')).toBeAllclose(read('phase2.loss')[0] as number, LOSS);
    expect(scalar(out, 'metric.ce')).toBeAllclose(read('phase2.ce')[0] as number, LOSS);
    expect(scalar(out, 'metric.kl')).toBeAllclose(read('phase2.kl')[0] as number, LOSS);
    compareGrads(out, obj, 'phase2.grad.');
  });
});
