// @latent-sft/tokenizer: local Llama-3.2 and Qwen3 tokenizers through transformers.js (never the Hub),
// the Latent-SFT prompt format, latent markers, pad rule and added special tokens.
export { materializeTokenizer } from './materialize.js';
export type { MaterializedFile, MaterializedTokenizer, TokenizerName } from './materialize.js';
export { Tokenizer, VOCAB_SUBSET_FILE, loadTokenizer, writeVocabSubset } from './tokenizer.js';
export type { ChatMessage, DecodeOptions, EncodeOptions, TokenizerFamily } from './tokenizer.js';
export { subsetIds } from './subset-ids.js';
export { END_THINK, THINK, encodeExample, latentEndId, latentMarkerIds, padId, promptFor } from './prompt.js';
export type { EncodedParts, ExampleText, PromptParts, PromptStrings } from './prompt.js';
