// @latent-sft/generate: one batched generation engine for explicit and latent reasoning on ONNX
// Runtime, with a device-resident KV cache (spec §5).
export { Generator } from './generator.js';
export type {
  GenerateMode,
  GenerateRequest,
  GenerateStats,
  GenerationResult,
  GeneratorOptions,
  LatentStep,
} from './generator.js';
export type { DecodeAttention, GenerateDtype, VocabTopKImpl } from './graphs.js';
export type { Sampling } from './sampling.js';
