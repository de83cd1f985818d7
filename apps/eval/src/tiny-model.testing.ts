// Test fixture shared by the eval app's tests (not part of the build): a tiny random-init Llama model
// with the real Llama-3.2 vocabulary and special ids, so answers stop on <|eot_id|> / <|end_of_text|>.
import { initParameters, modelConfigToJson, parseModelConfig, saveCheckpoint, tinyLlama } from '@latent-sft/models';
import { type Tokenizer, loadTokenizer, materializeTokenizer } from '@latent-sft/tokenizer';

/** Writes the model + tokenizer into `dir` and returns the loaded tokenizer. */
export async function writeTinyLlama(dir: string): Promise<Tokenizer> {
  const base = tinyLlama({ vocabSize: 128256, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1 });
  const config = parseModelConfig({ ...modelConfigToJson(base), bos_token_id: 128000, eos_token_id: [128001, 128009], max_position_embeddings: 512 });
  saveCheckpoint(dir, config, initParameters(config, { seed: 11 }));
  materializeTokenizer('llama-3.2', dir);
  return loadTokenizer(dir);
}
