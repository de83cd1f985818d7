// The training objectives of the train benchmark (issues 6 and 10), shared by train-bench.ts (which runs
// them) and graph-stats.ts (which only builds the step graphs and counts nodes / bytes): the decoder built
// into a scratch graph with buildDecoder and inlined into the Trainer's step graph, causal-LM loss.
import { Graph } from '@latent-sft/graph';
import {
  buildDecoder, causalLmLoss, loraParameterShapes, parameterShapes, type LoraConfig, type ModelConfig,
} from '@latent-sft/models';
import { type Objective, inlineGraph } from '@latent-sft/train';

/** The LoRA of the 'lora' benchmark: r 64, alpha 128, dropout 0.1 on every projection (the phase-1 step shape). */
export const BENCH_LORA: LoraConfig = {
  r: 64, alpha: 128, dropout: 0.1, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], bias: 'none', taskType: 'CAUSAL_LM',
};

/** Full fine-tuning (lora null) or LoRA-only objective on `config`, batch B × T, compute dtype `compute`. */
export function benchObjective(config: ModelConfig, B: number, T: number, compute: 'bfloat16' | 'float16' | 'float32', lora: LoraConfig | null): Objective {
  const spec = (shape: number[]) => ({ dtype: 'float32' as const, shape });
  const ids = { dtype: 'int64' as const, shape: [B, T] };
  const baseSpecs = Object.fromEntries(parameterShapes(config).map((p) => [p.name, spec(p.shape)]));
  const adapters = lora ? Object.fromEntries(loraParameterShapes(config, lora).map((p) => [p.name, spec(p.shape)])) : {};
  return {
    trainable: lora ? adapters : baseSpecs,
    frozen: lora ? baseSpecs : {},
    batch: { input_ids: ids, attention_mask: ids, position_ids: ids, labels: ids, ...(lora && lora.dropout > 0 ? { dropout_seed: { dtype: 'int64' as const, shape: [] } } : {}) },
    buildLoss(g, trainable, inputs) {
      const sub = new Graph('decoder');
      const dec = buildDecoder(sub, config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, markOutputs: false,
        maxPositions: T, dtype: compute, ...(lora ? { lora: { config: lora, mode: 'train' as const } } : {}) });
      const loss = causalLmLoss(sub, dec.logits!, sub.input('labels', 'int64', [B, T]));
      return { loss: inlineGraph(g, sub, { ...trainable, ...inputs })(loss) };
    },
    countTokens: () => B * T,
  };
}
