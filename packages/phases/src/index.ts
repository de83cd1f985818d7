// @latent-sft/phases: the Latent-SFT objectives as loss graphs (Objective: trainable / frozen / batch
// inputs and a loss builder) and their batch feeds: explicit CoT-SFT and No-CoT, Phase 1 (encoder /
// decoder / union steps with LTIM, LTSuM, dual-track positions and the latent kinds), Phase 2 (CE + KL
// with teacher soft embeddings and Gumbel-perturbed targets; CE + MSE with teacher hidden states for the
// hidden-state ablation), and the latent-cache forward.
export type { Objective, ValueSpec } from './objective.js';
export { encodeProblem } from './examples.js';
export type { SequenceParts } from './examples.js';
export { defaultLora, phase1LoraDefaults } from './specs.js';
export type { FrozenDtype, ParamDtype } from './specs.js';
export { collateCotSft, cotSftObjective } from './cot-sft.js';
export type { CollatedBatch, CotSftCollateOptions, CotSftOptions } from './cot-sft.js';
export { DECODER_PREFIX, ENCODER_PREFIX, collatePhase1, collatePhase1GoldCot, encoderConfig, phase1Objective } from './phase1.js';
export type { Phase1CollateOptions, Phase1Options, Phase1Step } from './phase1.js';
export { collatePhase2, isHiddenTeacher, perturbTeacher, phase2Objective } from './phase2.js';
export type {
  GumbelTeacherOptions,
  HiddenTeacherLatents,
  Phase2CollateOptions,
  Phase2Example,
  Phase2Latent,
  Phase2Options,
  Phase2Teacher,
  TeacherLatents,
} from './phase2.js';
export { buildLatentCacheGraph, computeHiddenLatents, computeLatents } from './latents.js';
export type { LatentCacheOptions } from './latents.js';
