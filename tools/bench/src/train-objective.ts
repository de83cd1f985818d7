// The training objectives of the train benchmark (issues 6 and 10), shared by train-bench.ts (which runs
// them) and graph-stats.ts (which only builds the step graphs and counts nodes / bytes): models' decoder()
// on the Trainer's tensors (weights viewed once in the compute dtype), causal-LM loss.
import type { Tensor } from '@latent-sft/graph';
import {
  causalLmLoss,
  decoder,
  embed,
  loraParameterShapes,
  paddingBias,
  parameterShapes,
  viewWeights,
  type LoraConfig,
  type ModelConfig,
} from '@latent-sft/models';
import type { Objective } from '@latent-sft/train';

/** The LoRA of the 'lora' benchmark: r 64, alpha 128, dropout 0.1 on every projection (the phase-1 step shape). */
export const BENCH_LORA: LoraConfig = {
  r: 64,
  alpha: 128,
  dropout: 0.1,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  bias: 'none',
  taskType: 'CAUSAL_LM',
};

/**
 * Full fine-tuning (lora null) or LoRA-only objective on `config`, batch B × T, compute dtype `compute`.
 * `frozen`: the dtype the frozen base is stored in for LoRA (the phases' frozenDtype: the apps keep it in
 * the 16-bit compute dtype, as PEFT keeps its bf16 base); float32 by default.
 */
export function benchObjective(
  config: ModelConfig,
  B: number,
  T: number,
  compute: 'bfloat16' | 'float16' | 'float32',
  lora: LoraConfig | null,
  frozen: 'float32' | 'bfloat16' | 'float16' = 'float32',
): Objective {
  const spec = (shape: number[]) => ({ dtype: 'float32' as const, shape });
  const ids = { dtype: 'int64' as const, shape: [B, T] };
  const baseDtype = lora ? frozen : 'float32';
  const baseSpecs = Object.fromEntries(parameterShapes(config).map((p) => [p.name, { dtype: baseDtype, shape: p.shape }]));
  const adapters = lora ? Object.fromEntries(loraParameterShapes(config, lora).map((p) => [p.name, spec(p.shape)])) : {};
  return {
    trainable: lora ? adapters : baseSpecs,
    frozen: lora ? baseSpecs : {},
    batch: {
      input_ids: ids,
      attention_mask: ids,
      position_ids: ids,
      labels: ids,
      ...(lora && lora.dropout > 0 ? { dropout_seed: { dtype: 'int64' as const, shape: [] } } : {}),
    },
    buildLoss(g, trainable, inputs) {
      const t: Record<string, Tensor> = { ...trainable, ...inputs };
      const weights = viewWeights(g, Object.fromEntries(Object.keys(baseSpecs).map((n) => [n, t[n]!])), compute);
      const l = lora ? { lora: { config: lora, tensors: t, ...(t['dropout_seed'] ? { dropoutSeed: t['dropout_seed'] } : {}) } } : {};
      const positions = t['position_ids']!;
      const x = embed(g, config, weights, t['input_ids']!, { dtype: compute, ...l });
      const dec = decoder(g, config, weights, x, { bias: paddingBias(g, t['attention_mask']!, positions), positions, maxPositions: T, dtype: compute, ...l });
      return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
    },
    countTokens: () => B * T,
  };
}
