// The phase objectives on the Trainer with activation recomputation per decoder layer (recompute
// 'layers') against the same objective without it ('none'): phase 1's union step (encoder and decoder
// in one graph, soft top-k latents, LTIM + LTSuM) and phase 2 (CE + KL), LoRA with seeded dropout,
// float16 with every fused kernel, on ORT CPU. Recomputation runs the same kernels on the same inputs,
// so losses, metrics, weights and AdamW moments after 3 steps are bit for bit equal.
import type { HostTensor } from '@latent-sft/runtime';
import { type Recompute, Trainer, buildStepGraphs, graphOptimizer } from '@latent-sft/train';
import { describe, expect, it } from 'vitest';
import {
  type Objective,
  type Phase2Example,
  collatePhase1,
  collatePhase2,
  defaultLora,
  encoderConfig,
  phase1Objective,
  phase2Objective,
} from '../src/index.js';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from './fixtures.js';

const STEPS = 3;
const lora = (task: 'CAUSAL_LM' | 'FEATURE_EXTRACTION') => defaultLora(task, { r: 4, alpha: 8, dropout: 0.2, embedTokens: task === 'FEATURE_EXTRACTION' });

/** Losses, metrics and the float32 bits of every weight and moment after STEPS float16 AdamW steps. */
async function run(
  objective: Objective,
  init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> },
  batch: (step: number) => Record<string, HostTensor>,
  recompute: Recompute,
): Promise<{ losses: number[]; metrics: Array<Record<string, number>>; state: Map<string, Buffer> }> {
  const t = await Trainer.create(
    {
      objective,
      optimizer: { kind: 'adamw', lr: 1e-2 },
      schedule: { kind: 'constant' },
      totalSteps: STEPS,
      clipNorm: 1,
      precision: { compute: 'float16', lossScale: null },
      device: { kind: 'cpu' },
      fusedKernels: true,
      recompute,
    },
    init,
  );
  try {
    const [losses, metrics] = [[] as number[], [] as Array<Record<string, number>>];
    for (let s = 0; s < STEPS; s++) {
      const r = await t.step([batch(s)]);
      losses.push(r.loss);
      metrics.push(r.metrics);
    }
    const st = await t.state();
    const state = new Map([...st.trainable, ...st.optimizer].map((x) => [x.name, Buffer.from((x.data as Float32Array).slice().buffer)]));
    return { losses, metrics, state };
  } finally {
    await t.release();
  }
}

async function expectSame(
  objective: Objective,
  layers: number,
  init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> },
  batch: (step: number) => Record<string, HostTensor>,
) {
  const built = buildStepGraphs(
    {
      objective,
      optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-2 }),
      clipNorm: 1,
      compute: 'float16',
      lossScale: false,
      fused: true,
      recompute: 'layers',
    },
    1,
  );
  expect(built.recomputed.length).toBe(layers); // every layer of every decoder in the graph
  const [a, b] = [await run(objective, init, batch, 'none'), await run(objective, init, batch, 'layers')];
  expect(a.losses.every(Number.isFinite)).toBe(true);
  expect(b.losses).toEqual(a.losses);
  expect(b.metrics).toEqual(a.metrics);
  expect([...b.state.keys()]).toEqual([...a.state.keys()]);
  for (const [name, bits] of a.state) expect(b.state.get(name)!.equals(bits), name).toBe(true);
}

describe("phase objectives with recompute 'layers' (float16, fused kernels, LoRA dropout; CPU)", () => {
  it('phase 1 union step (encoder + decoder in one graph, soft top-k latents, LTIM + LTSuM)', async () => {
    const p1 = { encoder: lora('FEATURE_EXTRACTION'), decoder: lora('CAUSAL_LM') };
    const obj = phase1Objective(config, { step: 'union', latent: { kind: 'soft-topk', k: 4 }, ltim: true, ltsum: true, lora: p1, compute: 'float16' });
    const trainable = {
      ...loraFeeds(encoderConfig(config), p1.encoder, 2, 'encoder.', 'float32', true),
      ...loraFeeds(config, p1.decoder, 3, 'decoder.', 'float32', true),
    };
    const frozen = { ...weightFeeds(1, 'encoder.', 'float32', 1), ...weightFeeds(1, 'decoder.') };
    const batch = (s: number) => collatePhase1(examples, { r: 2, compressId: COMPRESS, padId: PAD, ltim: true, ltsum: true, dropoutSeed: 5 + s }).feeds;
    await expectSame(obj, 2 * config.numHiddenLayers, { trainable, frozen }, batch);
  });

  it('phase 2 (soft top-k teachers, CE + KL)', async () => {
    const ex2: Phase2Example[] = examples.map((e, i) => {
      const m = i + 2;
      return { ...e, teacher: { m, k: 4, probs: new Float32Array(m * 4).fill(0.25), indices: Int32Array.from({ length: m * 4 }, (_, j) => (7 * j + i) % V) } };
    });
    const l = lora('CAUSAL_LM');
    const obj = phase2Objective(config, { latent: 'soft-topk', lora: l, compute: 'float16' });
    const batch = (s: number) => collatePhase2(ex2, { padId: PAD, latent: 'soft-topk', vocabSize: V, dropoutSeed: 9 + s }).feeds;
    await expectSame(obj, config.numHiddenLayers, { trainable: loraFeeds(config, l, 5, '', 'float32', true), frozen: weightFeeds(1) }, batch);
  });
});
