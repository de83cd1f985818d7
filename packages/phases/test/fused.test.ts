// The phase objectives in float16 on the Trainer with the fused attention softmax (latent_sft.MaskedSoftmax,
// CPU kernels), and with the whole attention fused (latent_sft.FlashAttention), against the same objective
// on standard ops: the phase graphs have symbolic batch and sequence dims and additive masks, so ORT's
// shape inference of the fused node's outputs and every Reshape downstream of it are exercised (a dim with
// no name once made ORT read two -1s in one Reshape target). Losses over 3 AdamW steps agree.
import type { HostTensor } from '@latent-sft/runtime';
import { buildStepGraphs, graphOptimizer } from '@latent-sft/train';
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
import { float16Losses } from './helpers.js';

/**
 * Both paths compute the softmax in float32 and round to float16 once; one f16 ulp (2⁻¹¹) apart at a
 * rounding boundary, carried through a few float16 layers and 3 steps of lr 1e-3.
 */
const LOSS = { rtol: 2e-3, atol: 0 };

const lora = (task: 'CAUSAL_LM' | 'FEATURE_EXTRACTION') => defaultLora(task, { r: 4, alpha: 8, dropout: 0, embedTokens: task === 'FEATURE_EXTRACTION' });

function expectSame(
  objective: Objective,
  layers: number,
  trainable: Record<string, HostTensor>,
  frozen: Record<string, HostTensor>,
  batch: Record<string, HostTensor>,
) {
  const graph = (attention: boolean) =>
    buildStepGraphs(
      {
        objective,
        optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }),
        clipNorm: 1,
        compute: 'float16',
        lossScale: false,
        fused: { optimizer: false, softmax: true, attention },
      },
      1,
    ).fused!;
  expect(graph(false).nodes.filter((n) => n.op === 'MaskedSoftmax').length).toBe(layers);
  // The fused attention (FlashAttention) replaces the scores, the MaskedSoftmax and the product with V.
  const flash = graph(true);
  expect([flash.nodes.filter((n) => n.op === 'FlashAttention').length, flash.nodes.filter((n) => n.op === 'MaskedSoftmax').length]).toEqual([layers, 0]);
  return Promise.all([
    float16Losses(objective, { trainable, frozen }, batch, { fusedKernels: { optimizer: false, softmax: true } }),
    float16Losses(objective, { trainable, frozen }, batch, { fusedKernels: false }),
    float16Losses(objective, { trainable, frozen }, batch, { fusedKernels: { optimizer: false, softmax: true, attention: true } }),
  ]).then(([a, b, c]) => {
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a).toBeAllclose(b, LOSS);
    expect(c).toBeAllclose(b, LOSS);
  });
}

/** Phase 2 on the fixture examples: top-4 teachers (m = 2, 3), the LoRA, the float16 objective and its batch. */
function phase2Case() {
  const ex2: Phase2Example[] = examples.map((e, i) => {
    const m = i + 2;
    return { ...e, teacher: { m, k: 4, probs: new Float32Array(m * 4).fill(0.25), indices: Int32Array.from({ length: m * 4 }, (_, j) => (7 * j + i) % V) } };
  });
  const l = lora('CAUSAL_LM');
  const obj = phase2Objective(config, { latent: 'soft-topk', lora: l, compute: 'float16' });
  return { l, obj, batch: collatePhase2(ex2, { padId: PAD, latent: 'soft-topk', vocabSize: V }).feeds };
}

describe('phase objectives in float16 with the fused softmax (CPU)', () => {
  it('phase 1 union step (encoder + decoder attention, soft top-k latents, LTIM + LTSuM)', async () => {
    const p1 = { encoder: lora('FEATURE_EXTRACTION'), decoder: lora('CAUSAL_LM') };
    const obj = phase1Objective(config, { step: 'union', latent: { kind: 'soft-topk', k: 4 }, ltim: true, ltsum: true, lora: p1, compute: 'float16' });
    const trainable = {
      ...loraFeeds(encoderConfig(config), p1.encoder, 2, 'encoder.', 'float32', true),
      ...loraFeeds(config, p1.decoder, 3, 'decoder.', 'float32', true),
    };
    const frozen = { ...weightFeeds(1, 'encoder.', 'float32', 1), ...weightFeeds(1, 'decoder.') };
    const batch = collatePhase1(examples, { r: 2, compressId: COMPRESS, padId: PAD, ltim: true, ltsum: true }).feeds;
    await expectSame(obj, 2 * config.numHiddenLayers, trainable, frozen, batch);
  });

  it('phase 2 (soft top-k teachers, CE + KL)', async () => {
    const { l, obj, batch } = phase2Case();
    await expectSame(obj, config.numHiddenLayers, loraFeeds(config, l, 5, '', 'float32', true), weightFeeds(1), batch);
  });

  it("phase 2's cross-entropy is chunked over the vocabulary (the KL reads the head at the m slots only); same losses", async () => {
    const { l, obj, batch } = phase2Case();
    const ce = { optimizer: false, softmax: false, crossEntropy: true, ceChunk: 24 } as const;
    const g = buildStepGraphs(
      { objective: obj, optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }), clipNorm: 1, compute: 'float16', lossScale: false, fused: ce },
      1,
    ).fused!;
    // 64 columns in chunks of 24: 3 chunk stats in the forward, 3 chunk gradients in the backward.
    expect(g.nodes.filter((n) => n.op === 'CEChunkStats').length).toBe(3);
    expect(g.nodes.filter((n) => n.op === 'CEChunkGrad').length).toBe(3);
    // The one full-vocabulary log-softmax left is the KL's, over the [B, m, V] student slots (not [B, T, V]).
    const logSoftmax = g.nodes.filter((n) => n.op === 'LogSoftmax').map((n) => g.value(n.inputs[0] as string).shapeText);
    expect(logSoftmax).toEqual(['[batch, latents, 64]']);
    const trainable = loraFeeds(config, l, 5, '', 'float32', true);
    const [a, b] = await Promise.all([
      float16Losses(obj, { trainable, frozen: weightFeeds(1) }, batch, { fusedKernels: ce }),
      float16Losses(obj, { trainable, frozen: weightFeeds(1) }, batch, { fusedKernels: false }),
    ]);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(a).toBeAllclose(b, LOSS);
  });
});
