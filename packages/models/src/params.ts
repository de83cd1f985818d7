// HF parameter names and PyTorch shapes ([out, in] for Linear weights) of Llama / Qwen2 / Qwen3 causal LMs
// (Qwen3: qkNorm adds self_attn.q_norm / k_norm [head_dim]),
// in the order the HF modules register them.
import type { ModelConfig } from './config.js';

/** One parameter: HF name and PyTorch shape; `init` says how HF initialises it. */
export interface ParameterShape {
  name: string;
  shape: number[];
  init: 'normal' | 'zeros' | 'ones';
}

/** Ordered parameters of `LlamaForCausalLM` / `Qwen2ForCausalLM`; no lm_head when tied. */
export function parameterShapes(c: ModelConfig): ParameterShape[] {
  const h = c.hiddenSize;
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const out: ParameterShape[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, h], init: 'normal' }];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const linear = (name: string, o: number, inp: number, bias: boolean) => {
      out.push({ name: `${p}.${name}.weight`, shape: [o, inp], init: 'normal' });
      if (bias) out.push({ name: `${p}.${name}.bias`, shape: [o], init: 'zeros' });
    };
    linear('self_attn.q_proj', q, h, c.attentionBias);
    linear('self_attn.k_proj', kv, h, c.attentionBias);
    linear('self_attn.v_proj', kv, h, c.attentionBias);
    linear('self_attn.o_proj', h, q, c.modelType === 'llama' && c.attentionBias);
    if (c.qkNorm === true) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [c.headDim], init: 'ones' });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [c.headDim], init: 'ones' });
    }
    linear('mlp.gate_proj', c.intermediateSize, h, c.mlpBias);
    linear('mlp.up_proj', c.intermediateSize, h, c.mlpBias);
    linear('mlp.down_proj', h, c.intermediateSize, c.mlpBias);
    out.push({ name: `${p}.input_layernorm.weight`, shape: [h], init: 'ones' });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'ones' });
  }
  out.push({ name: 'model.norm.weight', shape: [h], init: 'ones' });
  if (!c.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, h], init: 'normal' });
  return out;
}

/** Number of scalar parameters (tied embeddings counted once). */
export function parameterCount(c: ModelConfig): number {
  return parameterShapes(c).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}
