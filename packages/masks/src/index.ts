// @latent-sft/masks: the Latent Token Induction Mask (encoder), the Latent Token Supervision Mask
// (decoder), dual-track position ids, batching with right padding and the additive mask form.
export { inductionMask } from './induction.js';
export type { InductionMaskOptions } from './induction.js';
export { supervisionMask } from './supervision.js';
export type { SupervisionMaskOptions } from './supervision.js';
export { contiguousPositions, dualTrackPositions } from './positions.js';
export type { DualTrackOptions } from './positions.js';
export { batchMasks, batchPositions, causalPaddingMask } from './batch.js';
export { FP32_MIN, toAdditive } from './additive.js';
