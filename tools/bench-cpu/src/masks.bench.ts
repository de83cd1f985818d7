// LTIM and LTSuM masks, dual-track positions and batching of 16 sequences of 256 tokens: what the
// phase-1 collation builds for every batch.
import { Rng } from '@latent-sft/core';
import { batchMasks, dualTrackPositions, inductionMask, supervisionMask, toAdditive } from '@latent-sft/masks';
import { bench, describe } from 'vitest';
import { SHORT } from './options.js';

const T = 256;
const B = 16;
const COMPRESS = 1000;
const PLACEHOLDER = -100;
const END_THINK = [524, 27963, 29];
const rng = Rng.fromSeed(3);
const word = () => 10 + Math.floor(rng.uniform() * 900);
/** Encoder rows: text with a compress token every 16 positions. */
const encoder = Array.from({ length: B }, () => Array.from({ length: T }, (_, i) => (i % 16 === 15 ? COMPRESS : word())));
/** Decoder rows: prompt, 8 latent placeholders with 3-token spacers, </think>, answer. */
const decoder = Array.from({ length: B }, () => {
  const row = Array.from({ length: 100 }, word);
  for (let i = 0; i < 8; i++) row.push(PLACEHOLDER, word(), word(), word());
  row.push(...END_THINK);
  while (row.length < T) row.push(word());
  return row;
});
const lengths = new Int32Array(B).fill(T);

describe('masks', () => {
  bench(
    `LTIM of ${B} × ${T} encoder rows, batched, additive`,
    () => {
      toAdditive(
        batchMasks(
          encoder.map((ids) => inductionMask(ids, { compressId: COMPRESS })),
          lengths,
          T,
        ),
        T,
      );
    },
    SHORT,
  );
  bench(
    `LTSuM + dual-track positions of ${B} × ${T} decoder rows`,
    () => {
      for (const ids of decoder) {
        supervisionMask(ids, { endThinkIds: END_THINK });
        dualTrackPositions(ids);
      }
    },
    SHORT,
  );
});
