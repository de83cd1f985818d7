// Training objectives: which graph inputs are trained, frozen or fed per batch, and how the loss is
// built from them. The Trainer declares every input itself (trainable ones as float32 masters, cast to
// the compute dtype) and hands the tensors to buildLoss, which builds on them directly (e.g. models'
// decoder(g, config, weights, x, …) takes the tensors, no inputs of its own).
import type { Graph, Tensor, ValueSpec } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';

/** A training objective: which graph inputs are trained, frozen or fed per batch, and the loss. */
export interface Objective {
  /** Get gradients and optimizer updates; float32 masters, device-resident. */
  trainable: Readonly<Record<string, ValueSpec>>;
  /** Constant over training (base weights, detached copies); device-resident, uploaded once. */
  frozen: Readonly<Record<string, ValueSpec>>;
  /** Fed every step (ids, masks, labels, positions…). */
  batch: Readonly<Record<string, ValueSpec>>;
  /**
   * The scalar loss (any float dtype) and optional scalar metrics (e.g. ce, kl), from the trainable
   * tensors (already cast to the compute dtype) and the frozen + batch inputs.
   */
  buildLoss(g: Graph, trainable: Record<string, Tensor>, inputs: Record<string, Tensor>): { loss: Tensor; metrics?: Record<string, Tensor> };
  /** Tokens in one micro-batch, for StepResult.tokens (optional). */
  countTokens?(batch: Readonly<Record<string, HostTensor>>): number;
}
