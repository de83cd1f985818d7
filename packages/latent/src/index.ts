// @latent-sft/latent: vocabulary-superposition latent tokens on the CPU (fp64 references): soft
// embeddings (full softmax and top-k), Gumbel perturbation, KL over top-k, entropy, ECR@K and N_eff.
export { matrix } from './matrix.js';
export type { FloatArray, Matrix } from './matrix.js';
export { softmaxRows } from './softmax.js';
export { softEmbeddingTopK, topKDistribution } from './superposition.js';
export { gumbelPerturb } from './gumbel.js';
export type { GumbelOptions, GumbelResult } from './gumbel.js';
export { entropy, klTopK } from './divergence.js';
export type { KlResult } from './divergence.js';
export { ecrAtK } from './ecr.js';
export type { EcrInput } from './ecr.js';
// Graph-side (training) versions of the latent math, for @latent-sft/graph training graphs.
export { gLatentEmbedding, gLatentLogits, gSoftEmbeddingTopK, gWeightedEmbedding } from './graph-superposition.js';
export type { LatentEmbedding, LatentKind } from './graph-superposition.js';
export { gScatterLatents, gShiftedSlotLogits } from './graph-slots.js';
export { gKlFull, gKlTopK } from './graph-divergence.js';
export type { GraphKl } from './graph-divergence.js';
// The latent spec recorded beside every model (latent.json): one type, one reader/writer.
export {
  DEFAULT_LATENT_SPEC,
  LATENT_KIND_NAMES,
  LATENT_SPEC_FILE,
  parseLatentSpec,
  readLatentSpec,
  readLatentSpecs,
  resolveLatentSpec,
  writeLatentSpec,
} from './spec.js';
export type { LatentKindName, LatentSpec, LatentSpecFile, LatentSpecOverrides } from './spec.js';
