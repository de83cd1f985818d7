// Effective Compression Rate ECR@K (spec §6), per sample. The paper's definition was not recovered;
// this is the INFERRED working definition that fits its plots (see README.md). Leaves out computing
// each latent's top-K (use topKIndices on the latent's logits or probabilities) and the test-set mean.
//
//   ECR@K = |{ positions p of the reference CoT : ref[p] ∈ ∪_i TopK(α_i) }| / m_generated
//
// Repeated CoT tokens are counted once per POSITION (not once per distinct id): ECR@K then reads as
// "explicit CoT tokens covered per latent", so a CoT-SFT model whose one-hot "latents" are exactly the
// reference tokens scores 1 by construction (the dashed y = 1 line), and a latent chain that covers
// its chunks of r tokens scores ~r.

/** Input of ecrAtK for one sample. */
export interface EcrInput {
  /** The top-K token ids of each generated latent's distribution (K may differ per latent). */
  topKIndicesPerLatent: readonly ArrayLike<number>[];
  /** The reference (gold) CoT token ids. */
  referenceCotIds: ArrayLike<number>;
  /** Number of latents the model generated (the normaliser), >= 1. */
  mGenerated: number;
}

/** ECR@K of one sample: covered reference-CoT positions divided by the number of generated latents. */
export function ecrAtK(input: EcrInput): number {
  const fn = 'ecrAtK';
  const { topKIndicesPerLatent, referenceCotIds, mGenerated } = input;
  if (!Number.isInteger(mGenerated) || mGenerated < 1) {
    throw new Error(`${fn}: mGenerated must be a positive integer, got ${mGenerated}`);
  }
  const union = new Set<number>();
  topKIndicesPerLatent.forEach((ids, i) => {
    for (let j = 0; j < ids.length; j++) {
      const v = ids[j] as number;
      if (!Number.isInteger(v)) throw new Error(`${fn}: topKIndicesPerLatent[${i}][${j}] = ${v} is not a token id`);
      union.add(v);
    }
  });
  let covered = 0;
  for (let p = 0; p < referenceCotIds.length; p++) if (union.has(referenceCotIds[p] as number)) covered += 1;
  return covered / mGenerated;
}
