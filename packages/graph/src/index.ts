// @latent-sft/graph: typed ONNX graph builder (opset 18) with shape inference, serialization,
// reverse-mode autodiff to standard ONNX ops, and training-step graphs.
export { Graph, Tensor } from './graph.js';
export type { ConstTensor, Dim, Node, Segment } from './graph.js';
export type { AttrValue, OpAttrs, OpType } from './ops.js';
export { VOCAB_TOPK_CHUNK, adamwMomentDtype } from './ops.js';
export { dtypeBytes, f16BitsToNumber, f32ToF16Bits, isFloat, typedFrom } from './dtype.js';
export type { DType, TensorData } from './dtype.js';
export { grad } from './autodiff.js';
export { saveModel, serialize } from './serialize.js';
export type { ExternalChunk, SerializeOptions, SerializedModel } from './serialize.js';
export { crossEntropy } from './losses.js';
export {
  fuseFlashAttention,
  fuseMaskedSoftmax,
  fuseMultiTensorAdamW,
  fuseMultiTensorCast,
  fusePackedSwiGlu,
  fuseRmsNorm,
  fuseRope,
  fuseSeededDropout,
  fuseSwiGlu,
} from './fusions.js';
export { fuseLinearCrossEntropy, lowerLinearLogProb } from './linear-cross-entropy.js';
export { fuseHashWords, hashFlat, hashStreamOffset, hashWords } from './hash.js';
export { recomputeSegments } from './recompute.js';
export { liftWeights } from './lift.js';
export type { RecomputedSegment } from './recompute.js';
export { buildTrainStep, sgd } from './train-step.js';
export type { TrainStep, TrainStepOptions, UpdateFn, ValueSpec } from './train-step.js';
