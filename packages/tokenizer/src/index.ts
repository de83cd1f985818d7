// @latent-sft/tokenizer: local Llama-3.2 and Qwen3 tokenizers through transformers.js (never the Hub),
// the Latent-SFT prompt format, latent markers, pad rule and added special tokens.
export {
  LENML_LLAMA_SOURCE_SHA256,
  LLAMA32_TOKENIZER_SHA256,
  QWEN3_TOKENIZER_SHA256,
  llama32SpecialTokenName,
  llama32TokenizerJsonFromLlama3,
  materializeTokenizer,
} from './materialize.js';
export type { MaterializedFile, MaterializedTokenizer, TokenizerName } from './materialize.js';
export { Tokenizer, VOCAB_SUBSET_FILE, byteLevelAlphabet, insertAddedTokens, loadTokenizer, readVocabSubset, writeVocabSubset } from './tokenizer.js';
export type { ChatMessage, DecodeOptions, EncodeOptions, TokenizerFamily } from './tokenizer.js';
export { configureLocalOnly } from './hf.js';
export { subsetIds } from './subset-ids.js';
export {
  END_THINK,
  INSTRUCTION,
  LLAMA_PAD_ID,
  THINK,
  assertNoEndThink,
  encodeExample,
  encodeParts,
  latentEndId,
  latentMarkerIds,
  llamaPrompt,
  padId,
  promptFor,
  qwenPrompt,
} from './prompt.js';
export type { EncodedParts, ExampleText, PromptParts, PromptStrings } from './prompt.js';
