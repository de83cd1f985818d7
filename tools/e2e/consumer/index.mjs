// A plain ESM consumer of the packed packages (copied into a fresh npm project by src/pack.test.ts).
import { matrix, softmaxRows, topKDistribution } from '@latent-sft/latent';
import { dualTrackPositions, inductionMask } from '@latent-sft/masks';
import { extractAnswer, isEquivalent } from '@latent-sft/eval';

const probs = softmaxRows(matrix(Float64Array.from([0, Math.log(3)]), 1, 2));
const top = topKDistribution(matrix(Float64Array.from([1, 3, 2]), 1, 3), 2);
const mask = inductionMask([5, 6, 9, 7], { compressId: 9 });
const positions = dualTrackPositions([1, 2, -100, 3, -100, 4]);
const answer = extractAnswer('so the total is \\boxed{72}').answer;
process.stdout.write(
  `${JSON.stringify({
    probs: Array.from(probs.data),
    topIndices: Array.from(top.indices.data),
    mask: Array.from(mask),
    positions: Array.from(positions),
    answer,
    equivalent: isEquivalent(answer, '72.0', 'numeric'),
  })}\n`,
);
