// @latent-sft/models: Llama-3 / Qwen2 / Qwen3 configs, parameter names and shapes, safetensors I/O, HF
// initialisation, checkpoint folders, PEFT LoRA adapters, and the Llama-3 / Qwen2 / Qwen3 decoder as a function
// of graph tensors (decoder, embed; buildDecoder declares its inputs by name) with LoRA and a KV cache.
export { configFieldList, deepseekR1DistillQwen7b, llama32_1b, modelConfigToJson, parseModelConfig, tinyLlama, tinyQwen2 } from './config.js';
export type { ConfigLayout, Llama3RopeScaling, ModelConfig, ParseConfigOptions, TinyConfigOptions, TorchDtype } from './config.js';
export { parameterCount, parameterShapes } from './params.js';
export type { ParameterShape } from './params.js';
export { SafetensorsFile, openSafetensors, writeSafetensors } from './safetensors.js';
export type { Dtype, SafetensorsHeader, TensorArray, TensorData, TensorInfo, TensorSource } from './safetensors.js';
export { initParameters } from './init.js';
export type { InitOptions, NamedTensor, NamedTensor16, WeightTensor } from './init.js';
export { checkTensorsMatchConfig, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
export type { LoadedCheckpoint, SaveCheckpointOptions } from './checkpoint.js';
export { LORA_TARGETS, loadAdapter, loraParameterShapes, mergeLora, saveAdapter } from './lora.js';
export type { AdapterOptions, LoadedAdapter, LoraConfig, LoraParameterShape, LoraTarget } from './lora.js';
export { MASK_MIN, buildDecoder, causalLmLoss, declareWeights, decoder, embed, lmHead, paddingBias, staticCacheHeadDim, viewWeights } from './decoder.js';
export type {
  ComputeDtype,
  DecoderGraph,
  DecoderInputs,
  DecoderLora,
  DecoderOptions,
  DecoderOutputs,
  DecoderParams,
  DecoderWeights,
  StaticKvCache,
} from './decoder.js';
export { ropeTables } from './rope-graph.js';
export { bf16BitsToFloat32, f16BitsToFloat32, float32ToF16Bits } from './dtype.js';
