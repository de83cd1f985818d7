import { describe, expect, it } from 'vitest';
import { buildDecoderSequence, buildEncoderSequence, buildLatentSequence, chunkCot, insertCompressTokens, latentCount } from './chunking.js';

// Spec §2.5 worked example, r = 2, CoT a b c d e. Ids: P = [100, 101], <think> = [7], a..e = 1..5,
// L = 99, </think> = [8], ANS EOS = [50, 2]; Z = -100.
const P = [100, 101];
const THINK = [7];
const COT = [1, 2, 3, 4, 5];
const END = [8];
const ANS = [50, 2];
const Z = -100;

describe('compress-token insertion and chunks', () => {
  it('adds one compress id after every r-th token and one more for a partial last chunk', () => {
    expect(insertCompressTokens(COT, 2, 99)).toEqual([1, 2, 99, 3, 4, 99, 5, 99]);
    expect(insertCompressTokens([1, 2, 3, 4], 2, 99)).toEqual([1, 2, 99, 3, 4, 99]);
    expect(insertCompressTokens([1, 2, 3], 1, 99)).toEqual([1, 99, 2, 99, 3, 99]);
    expect(insertCompressTokens([1, 2, 3], 16, 99)).toEqual([1, 2, 3, 99]);
    expect(insertCompressTokens([], 4, 99)).toEqual([]);
    expect(chunkCot(COT, 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect([latentCount(5, 2), latentCount(4, 2), latentCount(0, 4), latentCount(17, 16)]).toEqual([3, 2, 0, 2]);
  });

  it('rejects bad rates and ids with the field named', () => {
    expect(() => chunkCot(COT, 0)).toThrow("field 'r': compression rate must be an integer >= 1, got 0");
    expect(() => chunkCot(COT, 1.5)).toThrow(/field 'r'/);
    expect(() => chunkCot([1, 2.5], 2)).toThrow("field 'cotIds[1]': token ids must be non-negative integers, got 2.5");
    expect(() => insertCompressTokens([1, -3], 2, 99)).toThrow(/field 'cotIds\[1\]'/);
    expect(() => insertCompressTokens([1], 2, -1)).toThrow(/field 'compressId\[0\]'/);
  });
});

describe('sequence builders (spec §2.5 worked example)', () => {
  it('encoder: P <think> a b L c d L e L </think>', () => {
    const enc = buildEncoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: COT, endThinkIds: END, r: 2, compressId: 99 });
    expect(enc).toEqual({ ids: [100, 101, 7, 1, 2, 99, 3, 4, 99, 5, 99, 8], compressPositions: [5, 8, 10], m: 3 });
    expect(() => buildEncoderSequence({ prefixIds: [99], thinkIds: THINK, cotIds: COT, endThinkIds: END, r: 2, compressId: 99 })).toThrow(
      "field 'prefixIds[0]': holds the compress id 99, which must only mark latent slots",
    );
    expect(() => buildEncoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: [], endThinkIds: END, r: 2, compressId: 99 })).toThrow(
      "field 'cotIds': must not be empty",
    );
  });

  it('decoder: first chunk removed, spacers supervised, Z_m then </think>', () => {
    const dec = buildDecoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: COT, endThinkIds: END, answerIds: ANS, r: 2 });
    expect(dec.inputIds).toEqual([100, 101, 7, Z, 3, 4, Z, 5, Z, 8, 50, 2]);
    expect(dec.labels).toEqual([-100, -100, -100, -100, 3, 4, -100, 5, -100, 8, 50, 2]);
    expect(dec.latentPositions).toEqual([3, 6, 8]);
    expect(dec.m).toBe(3);
  });

  it('decoder with multi-piece markers (Llama), r = 4, n = 9, custom placeholder and ignore index', () => {
    const dec = buildDecoderSequence({
      prefixIds: [100],
      thinkIds: [60, 61, 62],
      cotIds: [1, 2, 3, 4, 5, 6, 7, 8, 9],
      endThinkIds: [63, 61, 62],
      answerIds: [50, 2],
      r: 4,
      placeholder: -1,
      ignoreIndex: -7,
    });
    expect(dec.inputIds).toEqual([100, 60, 61, 62, -1, 5, 6, 7, 8, -1, 9, -1, 63, 61, 62, 50, 2]);
    expect(dec.labels).toEqual([-7, -7, -7, -7, -7, 5, 6, 7, 8, -7, 9, -7, 63, 61, 62, 50, 2]);
    expect(dec.latentPositions).toEqual([4, 9, 11]);
    // One chunk only: P <think> Z_1 </think> ANS.
    const one = buildDecoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: [1, 2], endThinkIds: END, answerIds: ANS, r: 2 });
    expect(one.inputIds).toEqual([100, 101, 7, Z, 8, 50, 2]);
    expect(one.labels).toEqual([-100, -100, -100, -100, 8, 50, 2]);
    expect(() => buildDecoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: COT, endThinkIds: END, answerIds: ANS, r: 2, placeholder: 5 })).toThrow(
      "field 'placeholder': must be a negative integer, got 5",
    );
    expect(() => buildDecoderSequence({ prefixIds: P, thinkIds: THINK, cotIds: COT, endThinkIds: END, answerIds: [], r: 2 })).toThrow(
      "field 'answerIds': must not be empty",
    );
  });

  it('phase 2: P <think> Z x m </think> ANS with latent range [s, s+m)', () => {
    const seq = buildLatentSequence({ prefixIds: P, thinkIds: THINK, m: 3, endThinkIds: END, answerIds: ANS });
    expect(seq).toEqual({
      inputIds: [100, 101, 7, Z, Z, Z, 8, 50, 2],
      labels: [-100, -100, -100, -100, -100, -100, 8, 50, 2],
      latentStart: 3,
      latentEnd: 6,
    });
    expect(() => buildLatentSequence({ prefixIds: P, thinkIds: THINK, m: 0, endThinkIds: END, answerIds: ANS })).toThrow(
      "field 'm': latent count must be an integer >= 1, got 0",
    );
  });
});
