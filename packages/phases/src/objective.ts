// The Objective contract between the phases (what to optimise) and the trainer (how), as exported by
// @latent-sft/train: trainable / frozen / batch graph inputs and a loss builder with scalar metrics.
export type { Objective } from '@latent-sft/train';
export type { ValueSpec } from '@latent-sft/graph';
