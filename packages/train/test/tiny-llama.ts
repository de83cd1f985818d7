// A small Llama's causal-LM step objective for the Trainer tests that run the decoder's real graph
// (fused-softmax.test.ts, weight-copies.test.ts): seeded float32 masters and a batch with a left-padded row.
import { Rng } from '@latent-sft/core';
import type { Tensor } from '@latent-sft/graph';
import {
  LORA_TARGETS,
  type LoraConfig,
  type ModelConfig,
  causalLmLoss,
  decoder,
  embed,
  loraParameterShapes,
  paddingBias,
  parameterShapes,
  tinyLlama,
} from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import type { Objective } from '../src/index.js';

/** A small Llama's (or `config`'s) causal-LM loss (float16 or float32 compute), as tools/bench's objective at a tiny size; Bt 'batch': any batch size. */
export function tinyObjective(
  Bt: number | 'batch',
  Tt: number,
  dtype: 'float16' | 'float32' = 'float16',
  config: ModelConfig = tinyLlama(),
): { objective: Objective; init: Record<string, HostTensor> } {
  const rng = Rng.fromSeed(5);
  const specs = parameterShapes(config);
  const ids = { dtype: 'int64' as const, shape: [Bt, Tt] };
  const init = Object.fromEntries(
    specs.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return [
        p.name,
        { dtype: 'float32', dims: p.shape, data: Float32Array.from({ length: n }, () => (p.init === 'ones' ? 1 : 0.05 * rng.normal())) } as HostTensor,
      ];
    }),
  );
  const objective: Objective = {
    trainable: Object.fromEntries(specs.map((p) => [p.name, { dtype: 'float32' as const, shape: p.shape }])),
    frozen: {},
    batch: { input_ids: ids, attention_mask: ids, position_ids: ids, labels: ids },
    buildLoss(g, trainable, inp) {
      const t: Record<string, Tensor> = { ...trainable, ...inp }; // the weights arrive in the compute dtype
      const positions = t['position_ids']!;
      const x = embed(g, config, t, t['input_ids']!, { dtype });
      const dec = decoder(g, config, t, x, { bias: paddingBias(g, t['attention_mask']!, positions), positions, maxPositions: Tt, dtype });
      return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
    },
  };
  return { objective, init };
}

/** A [Bt, Tt] batch for tinyObjective; row 1 is left-padded by 2 (its first two queries see no key). */
export function tinyBatch(Bt: number, Tt: number): Record<string, HostTensor> {
  const V = tinyLlama().vocabSize;
  const i64 = (f: (i: number) => number) =>
    ({ dtype: 'int64', dims: [Bt, Tt], data: BigInt64Array.from({ length: Bt * Tt }, (_, i) => BigInt(f(i))) }) as HostTensor;
  return {
    input_ids: i64((i) => (i * 37 + 5) % V),
    labels: i64((i) => (i * 37 + 5) % V),
    attention_mask: i64((i) => (i >= Tt && i % Tt < 2 ? 0 : 1)),
    position_ids: i64((i) => i % Tt),
  };
}

/**
 * tinyObjective's model (or `config`) with LoRA r 4 on every projection: the adapters trained (A seeded, B zero as
 * in PEFT, or with `seededB` B seeded too, so that every adapter has a gradient from the first step), the base
 * frozen (float32; the decoder casts it to the compute dtype). `dropout` > 0: seeded by the batch's `dropout_seed`.
 */
export function tinyLoraObjective(
  Bt: number | 'batch',
  Tt: number,
  dtype: 'float16' | 'float32' | 'bfloat16' = 'float32',
  opts: { config?: ModelConfig; dropout?: number; seededB?: boolean } = {},
): { objective: Objective; init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> } } {
  const config = opts.config ?? tinyLlama();
  const dropout = opts.dropout ?? 0;
  const lora: LoraConfig = { r: 4, alpha: 8, dropout, targetModules: [...LORA_TARGETS], bias: 'none', taskType: 'CAUSAL_LM' };
  const base = tinyObjective(Bt, Tt, 'float32', config);
  const rng = Rng.fromSeed(6);
  const shapes = loraParameterShapes(config, lora);
  const trainable = Object.fromEntries(
    shapes.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return [
        p.name,
        {
          dtype: 'float32',
          dims: p.shape,
          data: Float32Array.from({ length: n }, () => (p.kind === 'A' || opts.seededB === true ? 0.1 * rng.normal() : 0)),
        } as HostTensor,
      ];
    }),
  );
  const objective: Objective = {
    trainable: Object.fromEntries(shapes.map((p) => [p.name, { dtype: 'float32' as const, shape: p.shape }])),
    frozen: base.objective.trainable,
    batch: dropout > 0 ? { ...base.objective.batch, dropout_seed: { dtype: 'int64', shape: [] } } : base.objective.batch,
    buildLoss(g, adapters, inp) {
      const t: Record<string, Tensor> = { ...adapters, ...inp };
      const l = { lora: { config: lora, tensors: t, ...(dropout > 0 ? { dropoutSeed: t['dropout_seed']! } : {}) } };
      const positions = t['position_ids']!;
      const x = embed(g, config, t, t['input_ids']!, { dtype, ...l });
      const dec = decoder(g, config, t, x, { bias: paddingBias(g, t['attention_mask']!, positions), positions, maxPositions: Tt, dtype, ...l });
      return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
    },
  };
  return { objective, init: { trainable, frozen: base.init } };
}
