// @latent-sft/train: the parts of training that do not depend on graphs: LR schedules, float64
// reference optimizers (the golden for the graph-side updates), gradient clipping/accumulation, the
// loop state, atomic verified checkpoints, metrics, and the loop driver with exact resume.
export { warmupStepsFromRatio } from './schedule.js';
export type { LrSchedule } from './schedule.js';
export type { LoopState } from './loop-state.js';
export { CheckpointManager, diskWriteError } from './checkpoint.js';
export type {
  CheckpointInfo,
  CheckpointManagerOptions,
  CheckpointTensor,
  LoadedCheckpoint,
  RunRecord,
  TensorCodec,
  TensorDtype,
} from './checkpoint.js';
export { MetricsWriter, readMetrics } from './metrics.js';
export { detectCollapse } from './collapse.js';
export type { CollapseOptions, CollapseReason, CollapseVerdict } from './collapse.js';
export type { MetricsRecord } from './metrics.js';
export type { Batch } from './loop.js';
// Device-side training: graph optimizers, objectives, the Trainer (device-resident state), loss
// scaling, the safetensors checkpoint codec and the Trainer-in-trainLoop glue.
export { graphOptimizer } from './graph-optim.js';
export type { GraphOptimizer, OptimizerConfig } from './graph-optim.js';
export type { Objective } from './objective.js';
export { buildStepGraphs } from './step-graphs.js';
export type { FusedParts } from './step-graphs.js';
export type { ComputeDtype, Recompute, StepGraphOptions, StepGraphs } from './step-graphs.js';
export type { DynamicLossScaleOptions } from './loss-scale.js';
export { Trainer } from './trainer.js';
export type { TrainerOptions, TrainerState, TrainerStateMode, TrainerStepOptions, TrainerStepResult, TrainerTransferStats } from './trainer.js';
export { Evaluator } from './evaluator.js';
export type { EvalBatch, EvalResult } from './evaluator.js';
export { safetensorsCodec } from './codec.js';
export { trainWithCheckpoints } from './train-with-checkpoints.js';
export type { TrainWithCheckpointsOptions } from './train-with-checkpoints.js';
