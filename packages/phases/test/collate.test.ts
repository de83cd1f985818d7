// Collation: the Phase-1 mask and position feeds equal @latent-sft/masks outputs (LTIM, LTSuM,
// dual-track, causal for the ablations), slot positions point at the right tokens, CoT-SFT / No-CoT
// labels, Phase-2 layout, and one-line errors for bad input.
import { buildDecoderSequence, buildEncoderSequence } from '@latent-sft/data';
import {
  FP32_MIN,
  batchMasks,
  batchPositions,
  causalPaddingMask,
  contiguousPositions,
  dualTrackPositions,
  inductionMask,
  supervisionMask,
  toAdditive,
} from '@latent-sft/masks';
import { describe, expect, it } from 'vitest';
import { collateCotSft, collatePhase1, collatePhase2 } from '../src/index.js';
import { COMPRESS, END_THINK, EOS, PAD, THINK, V, examples } from './fixtures.js';
import { nums } from './helpers.js';

const base = { r: 2, compressId: COMPRESS, padId: PAD };

/** Expects `fn` to throw a one-line error matching `re`. */
function oneLine(fn: () => unknown, re: RegExp): void {
  expect(fn).toThrow(re);
  try {
    fn();
  } catch (e) {
    expect((e as Error).message).not.toContain('\n');
  }
}
const enc = examples.map((ex) => buildEncoderSequence({ ...ex, r: 2, compressId: COMPRESS }));
const dec = examples.map((ex) => buildDecoderSequence({ ...ex, r: 2 }));
const Te = Math.max(...enc.map((s) => s.ids.length));
const T = Math.max(...dec.map((s) => s.inputIds.length));

describe('collatePhase1', () => {
  const b = collatePhase1(examples, { ...base, ltim: true, ltsum: true });
  const f = b.feeds;

  it('LTIM / LTSuM / dual-track feeds equal the masks package outputs', () => {
    const ltim = batchMasks(
      enc.map((s) => inductionMask(s.ids, { compressId: COMPRESS, padId: PAD })),
      enc.map((s) => s.ids.length),
      Te,
    );
    const ltsum = batchMasks(
      dec.map((s) => supervisionMask(s.inputIds, { endThinkIds: END_THINK, padId: PAD })),
      dec.map((s) => s.inputIds.length),
      T,
    );
    expect(f.encoder_attention_mask?.dims).toEqual([2, 1, Te, Te]);
    expect(nums(f.encoder_attention_mask)).toEqual(Array.from(toAdditive(ltim, Te, FP32_MIN)));
    expect(f.attention_mask?.dims).toEqual([2, 1, T, T]);
    expect(nums(f.attention_mask)).toEqual(Array.from(toAdditive(ltsum, T, FP32_MIN)));
    expect(nums(f.position_ids)).toEqual(
      Array.from(
        batchPositions(
          dec.map((s) => dualTrackPositions(s.inputIds)),
          T,
        ),
      ),
    );
    // the LTIM really differs from causal: some query is blocked from an earlier compress token
    expect(nums(f.encoder_attention_mask)).not.toEqual(Array.from(toAdditive(causalPaddingMask([enc[0]!.ids.length, enc[1]!.ids.length], Te), Te)));
  });

  it('ltim=false / ltsum=false give plain causal+padding masks; contiguous positions on request', () => {
    const c = collatePhase1(examples, { ...base, ltim: false, ltsum: false, positions: 'contiguous' }).feeds;
    expect(nums(c.encoder_attention_mask)).toEqual(Array.from(toAdditive(causalPaddingMask(b.encoderLengths, Te), Te)));
    expect(nums(c.attention_mask)).toEqual(Array.from(toAdditive(causalPaddingMask(b.lengths, T), T)));
    expect(nums(c.position_ids)).toEqual(
      Array.from(
        batchPositions(
          b.lengths.map((L) => contiguousPositions(L)),
          T,
        ),
      ),
    );
    expect(nums(c.input_ids)).toEqual(nums(f.input_ids));
  });

  it('slot positions, validity, ids and labels', () => {
    expect(b.m).toEqual([3, 2]);
    expect(f.compress_positions?.dims).toEqual([2, 3]);
    const cpos = nums(f.compress_positions);
    const valid = nums(f.latent_valid);
    const eids = nums(f.encoder_input_ids);
    const lpos = nums(f.latent_positions);
    const ids = nums(f.input_ids);
    const labels = nums(f.labels);
    expect(valid).toEqual([1, 1, 1, 1, 1, 0]);
    for (let bb = 0; bb < 2; bb++) {
      for (let i = 0; i < b.m[bb]!; i++) {
        expect(eids[bb * Te + cpos[bb * 3 + i]!]).toBe(COMPRESS);
        expect(dec[bb]!.inputIds[lpos[bb * 3 + i]!]).toBe(-100);
        expect(ids[bb * T + lpos[bb * 3 + i]!]).toBe(PAD); // placeholders fed as the pad id
        expect(labels[bb * T + lpos[bb * 3 + i]!]).toBe(-100);
      }
    }
    // example 1: P P <t> <t> Z1 S2 Z2 </t> A EOS (S1 never appears), right-padded
    expect(ids.slice(T, 2 * T)).toEqual([13, 14, ...THINK, PAD, 27, PAD, ...END_THINK, 32, EOS, ...new Array(T - 10).fill(PAD)]);
    expect(labels.slice(T, 2 * T)).toEqual([-100, -100, -100, -100, -100, 27, -100, ...END_THINK, 32, EOS, ...new Array(T - 10).fill(-100)]);
  });

  it('bad input: one-line errors', () => {
    const opts = { ...base, ltim: true, ltsum: true };
    oneLine(() => collatePhase1([{ ...examples[0]!, cotIds: [] }], opts), /cotIds.*must not be empty/);
    oneLine(() => collatePhase1([{ ...examples[0]!, cotIds: [COMPRESS] }], opts), /compress id/);
    oneLine(() => collatePhase1([], opts), /at least one example/);
    oneLine(() => collatePhase1(examples, { ...opts, positions: 'rope' as never }), /dual-track/);
  });
});

describe('collateCotSft', () => {
  it('CoT: supervised CoT + </think> + answer; No-CoT: no tokens between the markers', () => {
    const cot = collateCotSft(examples, { padId: PAD }).feeds;
    const L0 = 3 + 2 + 5 + 1 + 3;
    const T0 = L0;
    expect(cot.input_ids?.dims).toEqual([2, T0]);
    expect(nums(cot.input_ids).slice(0, L0)).toEqual([10, 11, 12, ...THINK, 20, 21, 22, 23, 24, ...END_THINK, 30, 31, EOS]);
    expect(nums(cot.labels).slice(0, L0)).toEqual([-100, -100, -100, -100, -100, 20, 21, 22, 23, 24, ...END_THINK, 30, 31, EOS]);
    const L1 = 2 + 2 + 3 + 1 + 2;
    expect(nums(cot.attention_mask).slice(T0, 2 * T0)).toEqual([...new Array(L1).fill(1), ...new Array(T0 - L1).fill(0)]);
    expect(nums(cot.position_ids).slice(T0, 2 * T0)).toEqual(Array.from({ length: T0 }, (_, t) => t));
    const none = collateCotSft(examples, { padId: PAD, variant: 'no-cot', dropoutSeed: 5 }).feeds;
    expect(nums(none.input_ids).slice(0, 9)).toEqual([10, 11, 12, ...THINK, ...END_THINK, 30, 31, EOS]);
    expect(nums(none.labels).slice(0, 9)).toEqual([-100, -100, -100, -100, -100, ...END_THINK, 30, 31, EOS]);
    expect(nums(none.dropout_seed)).toEqual([5]);
    expect(() => collateCotSft(examples, { padId: PAD, variant: 'none' as never })).toThrow(/'cot' or 'no-cot'/);
  });
});

describe('collatePhase2', () => {
  const teacher = (m: number, k: number) => ({
    m,
    k,
    probs: new Float32Array(m * k).fill(1 / k),
    indices: Int32Array.from({ length: m * k }, (_, i) => (i * 7) % V),
  });
  const ex2 = examples.map((e, i) => ({ ...e, teacher: teacher(i === 0 ? 3 : 1, 4) }));

  it('P <think> Z×m </think> ANS with teacher targets per slot, padded slots zero and invalid', () => {
    const b = collatePhase2(ex2, { padId: PAD, latent: 'soft-topk', vocabSize: V });
    const f = b.feeds;
    expect(b.latentStart).toEqual([5, 4]);
    const T2 = 5 + 3 + 1 + 3;
    expect(nums(f.input_ids).slice(0, T2)).toEqual([10, 11, 12, ...THINK, PAD, PAD, PAD, ...END_THINK, 30, 31, EOS]);
    expect(nums(f.labels).slice(0, T2)).toEqual([...new Array(8).fill(-100), ...END_THINK, 30, 31, EOS]);
    expect(nums(f.attention_mask).slice(0, T2)).toEqual(new Array(T2).fill(1)); // slots count as real tokens
    expect(nums(f.latent_positions)).toEqual([5, 6, 7, 4, 0, 0]);
    expect(nums(f.latent_valid)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(f.teacher_probs?.dims).toEqual([2, 3, 4]);
    expect(nums(f.teacher_probs).slice(16)).toEqual(new Array(8).fill(0));
    expect(nums(f.teacher_indices).slice(0, 12)).toEqual(Array.from(ex2[0]!.teacher.indices));
  });

  it('bad teachers: one-line errors', () => {
    expect(() =>
      collatePhase2([{ ...ex2[0]!, teacher: { ...teacher(2, 4), indices: Int32Array.from([0, 1, 2, 99, 0, 1, 2, 3]) } }], {
        padId: PAD,
        latent: 'soft-topk',
        vocabSize: V,
      }),
    ).toThrow(/indices\[3\].*id 99 outside the vocabulary \[0, 64\)/);
    expect(() => collatePhase2([ex2[0]!, { ...ex2[1]!, teacher: teacher(1, 3) }], { padId: PAD, latent: 'soft-topk', vocabSize: V })).toThrow(
      /3 entries per latent, but the batch uses 4/,
    );
    expect(() => collatePhase2([{ ...ex2[0]!, teacher: teacher(2, 4) }], { padId: PAD, latent: 'soft-full', vocabSize: V })).toThrow(/vocabulary size/);
  });
});
