// One AdamW step of the tiny Llama decoder (full fine-tuning, batch 2 × 12) through the Trainer on
// ORT CPU, and a tiny greedy generation (3 prompts, 8 new tokens, KV cache) with the Generator.
import { Rng } from '@latent-sft/core';
import { Generator } from '@latent-sft/generate';
import type { Tensor } from '@latent-sft/graph';
import { causalLmLoss, decoder, embed, initParameters, paddingBias, parameterShapes, tinyLlama } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { type Objective, Trainer } from '@latent-sft/train';
import { afterAll, bench, describe } from 'vitest';
import { SHORT } from './options.js';

const B = 2;
const T = 12;
const config = tinyLlama({ vocabSize: 64 });
const params = initParameters(config, { seed: 4 });
const spec = (shape: number[]) => ({ dtype: 'float32' as const, shape });
const ids = (shape: Array<number | string>) => ({ dtype: 'int64' as const, shape });

const objective: Objective = {
  trainable: Object.fromEntries(parameterShapes(config).map((p) => [p.name, spec(p.shape)])),
  frozen: {},
  batch: { input_ids: ids(['batch', 'seq']), attention_mask: ids(['batch', 'seq']), position_ids: ids(['batch', 'seq']), labels: ids(['batch', 'seq']) },
  buildLoss(g, trainable, inputs) {
    const t: Record<string, Tensor> = { ...trainable, ...inputs };
    const positions = t['position_ids']!;
    const x = embed(g, config, t, t['input_ids']!);
    const dec = decoder(g, config, t, x, { bias: paddingBias(g, t['attention_mask']!, positions), positions, maxPositions: 32 });
    return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
  },
  countTokens: (b) => (b['input_ids'] as HostTensor).data.length,
};

const rng = Rng.fromSeed(21);
const tokens = BigInt64Array.from({ length: B * T }, () => BigInt(3 + Math.floor(rng.uniform() * 60)));
const i64 = (data: BigInt64Array): HostTensor => ({ dtype: 'int64', dims: [B, T], data });
const batch: Record<string, HostTensor> = {
  input_ids: i64(tokens),
  labels: i64(tokens.slice()),
  attention_mask: i64(new BigInt64Array(B * T).fill(1n)),
  position_ids: i64(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T))),
};

const trainer = await Trainer.create(
  {
    objective,
    optimizer: { kind: 'adamw', lr: 1e-3 },
    schedule: { kind: 'constant' },
    totalSteps: 1_000_000,
    clipNorm: 1.0,
    device: { kind: 'cpu' },
  },
  { trainable: Object.fromEntries(params.map((p) => [p.name, { dtype: 'float32', dims: p.shape, data: p.data } as HostTensor])), frozen: {} },
);
const generator = Generator.create({ config, weights: params });
afterAll(async () => {
  await trainer.release();
  generator.release();
});

const PROMPTS = [
  [17, 4, 9, 23, 8],
  [61, 5, 40, 7, 7, 33, 20, 12, 9],
  [3, 50, 27],
];

describe('train + generate (ORT CPU)', () => {
  bench(
    `Trainer.step: tiny Llama, AdamW, batch ${B} × ${T}`,
    async () => {
      await trainer.step([batch]);
    },
    SHORT,
  );
  bench(
    'Generator.generate: 3 prompts, greedy, 8 new tokens',
    async () => {
      await generator.generate({ prompts: PROMPTS, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, maxNewTokens: 8, stopIds: [], batchSize: 3 });
    },
    SHORT,
  );
});
