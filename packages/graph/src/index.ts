// @latent-sft/graph: typed ONNX graph builder (opset 18) with shape inference, serialization,
// reverse-mode autodiff to standard ONNX ops, and training-step graphs.
export { Graph, Tensor, OPSET, isStatic, showShape } from './graph.js';
export type { ConstTensor, Dim, InferredOut, Node } from './graph.js';
export { attrKinds, broadcastShapes, customOpDomains, inferRules, nonDifferentiableOps, normAxis } from './ops.js';
export type { AttrValue, DifferentiableOp, InferRule, NonDifferentiableOp, OpAttrs, OpType } from './ops.js';
export { dtypeArray, dtypeBytes, dtypeOfCode, f16BitsToNumber, f32ToF16Bits, isFloat, onnxTypeCode, typedFrom } from './dtype.js';
export type { DType, TensorData } from './dtype.js';
export { grad, gradRules, isDifferentiable, sumLeadingAxes, unbroadcast } from './autodiff.js';
export type { GradContext, GradRule } from './autodiff.js';
export { saveModel, serialize } from './serialize.js';
export type { ExternalChunk, SerializeOptions, SerializedModel } from './serialize.js';
export { crossEntropy } from './losses.js';
export { fuseMaskedSoftmax, fuseRmsNorm, fuseSwiGlu } from './fusions.js';
export { buildTrainStep, sgd } from './train-step.js';
export type { TrainStep, TrainStepOptions, UpdateFn, ValueSpec } from './train-step.js';
