// @latent-sft/train: the parts of training that do not depend on graphs: LR schedules, float64
// reference optimizers (the golden for the graph-side updates), gradient clipping/accumulation, the
// loop state, atomic verified checkpoints, metrics, and the loop driver with exact resume.
export { lrAt, warmupStepsFromRatio } from './schedule.js';
export type { LrSchedule } from './schedule.js';
export { adamw, optStateFromTensors, optStateToTensors, sgd } from './optim.js';
export type { AdamWOptions, OptState, Optimizer, SgdOptions, Tensors } from './optim.js';
export { accumulateGrads, clipByGlobalNorm } from './grads.js';
export {
  LOOP_STATE_FORMAT,
  LOOP_STATE_VERSION,
  epochPermutation,
  initLoopState,
  loopStateFromJson,
  loopStateToJson,
  nextEpochRngState,
  stepRng,
} from './loop-state.js';
export type { LoopState } from './loop-state.js';
export { CheckpointManager, diskWriteError, stepDirName } from './checkpoint.js';
export type {
  CheckpointInfo,
  CheckpointManagerOptions,
  CheckpointTensor,
  LoadedCheckpoint,
  RunRecord,
  TensorCodec,
  TensorDtype,
} from './checkpoint.js';
export { MetricsWriter, NonFiniteError, checkFinite, readMetrics } from './metrics.js';
export { detectCollapse } from './collapse.js';
export type { CollapseOptions, CollapseReason, CollapseVerdict } from './collapse.js';
export type { MetricsRecord, MetricsWriterOptions } from './metrics.js';
export { trainLoop } from './loop.js';
export type { Batch, StepResult, TrainLoopOptions } from './loop.js';
// Device-side training: graph optimizers, objectives, the Trainer (device-resident state), loss
// scaling, the safetensors checkpoint codec and the Trainer-in-trainLoop glue.
export { checkOptimizerConfig, clipByGlobalNormGraph, graphOptimizer } from './graph-optim.js';
export type { GraphOptimizer, OptimizerConfig } from './graph-optim.js';
export type { Objective } from './objective.js';
export { buildStepGraphs, weightCopyDtype } from './step-graphs.js';
export type { FusedParts } from './step-graphs.js';
export type { ComputeDtype, StepGraphOptions, StepGraphs } from './step-graphs.js';
export { LossScaler } from './loss-scale.js';
export type { DynamicLossScaleOptions, LossScaleState } from './loss-scale.js';
export { Trainer, stepSessionOptions, trainingSessionDefaults } from './trainer.js';
export type { TrainerOptions, TrainerState, TrainerStepOptions, TrainerStepResult, TrainerTransferStats } from './trainer.js';
export { Evaluator, buildEvalGraph } from './evaluator.js';
export type { EvalBatch, EvalResult } from './evaluator.js';
export { safetensorsCodec } from './codec.js';
export { TRAINER_COUNTERS, trainWithCheckpoints, trainerStateFromTensors, trainerStateToTensors } from './train-with-checkpoints.js';
export type { TrainWithCheckpointsOptions } from './train-with-checkpoints.js';
