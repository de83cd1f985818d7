import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { entropy, klFull, klTopK } from './divergence.js';
import { matrix } from './matrix.js';
import { softmaxRows } from './softmax.js';

const f64 = (rows: number, cols: number, values: number[]) => matrix(Float64Array.from(values), rows, cols);
const ids = (rows: number, cols: number, values: number[]) => matrix(Int32Array.from(values), rows, cols);

describe('klFull / klTopK', () => {
  it('is 0 for identical distributions, up to the +1e-12 of the renormalisation', () => {
    // q = p / (1 + 1e-12), so KL = Σ q (log q − log p) = −log(1 + 1e-12) / (1 + 1e-12) = −1.0e-12.
    const rng = Rng.fromSeed(8);
    const logits = f64(
      3,
      6,
      Array.from({ length: 18 }, () => 2 * rng.normal()),
    );
    const teacher = softmaxRows(logits);
    const zero = -1e-12;
    expect(klFull(teacher, logits).perSlot).toBeAllclose([zero, zero, zero], { atol: 1e-14, rtol: 0 });
    const all = ids(
      3,
      6,
      Array.from({ length: 18 }, (_, i) => i % 6),
    );
    expect(klTopK(teacher, all, logits).mean).toBeAllclose(zero, { atol: 1e-14, rtol: 0 });
  });

  it('matches a hand-computed 3-token KL', () => {
    // q = (0.5, 0.3, 0.2), student uniform (logits 0): KL = Σ q log q + log 3
    //   = -(0.34657359 + 0.36119184 + 0.32188758) + 1.09861229 = 0.06895927.
    // Second slot identical (teacher uniform): 0. Mean = 0.03447964. An unnormalised teacher row
    // (1, 0.6, 0.4) is renormalised to the same q.
    const out = klFull(f64(2, 3, [1, 0.6, 0.4, 1, 1, 1]), f64(2, 3, [0, 0, 0, 5, 5, 5]));
    expect(out.perSlot).toBeAllclose([0.0689592746035359, 0], { atol: 1e-12 });
    expect(out.mean).toBeAllclose(0.0689592746035359 / 2, { atol: 1e-12 });
  });

  it('matches a hand-computed top-k KL gathered from the student log-softmax', () => {
    // Teacher top-2 probs (0.6, 0.2) at ids (2, 0) -> q = (0.75, 0.25). Student logits (0, ln 2, ln 5)
    // -> p = (1, 2, 5)/8. KL = 0.75·ln(0.75/0.625) + 0.25·ln(0.25/0.125) = 0.75 ln 1.2 + 0.25 ln 2
    //   = 0.13674117 + 0.17328680 = 0.31002796.
    const out = klTopK(f64(1, 2, [0.6, 0.2]), ids(1, 2, [2, 0]), f64(1, 3, [0, Math.log(2), Math.log(5)]));
    expect(out.perSlot).toBeAllclose([0.3100279627354523], { atol: 1e-11 });
  });

  it('equals klFull when the top-k covers the whole vocabulary (in any slot order)', () => {
    const rng = Rng.fromSeed(10);
    const teacher = softmaxRows(
      f64(
        2,
        5,
        Array.from({ length: 10 }, () => rng.normal()),
      ),
    );
    const student = f64(
      2,
      5,
      Array.from({ length: 10 }, () => rng.normal()),
    );
    const order = [3, 0, 4, 1, 2];
    const probs = f64(
      2,
      5,
      [0, 1].flatMap((i) => order.map((v) => teacher.data[i * 5 + v] as number)),
    );
    const sparse = klTopK(probs, ids(2, 5, [...order, ...order]), student);
    expect(sparse.perSlot).toBeAllclose(klFull(teacher, student).perSlot, { atol: 1e-14 });
  });

  it('checks shapes, ids and the number of slots', () => {
    expect(() => klTopK(f64(1, 2, [0.5, 0.5]), ids(1, 2, [0, 3]), f64(1, 3, [0, 0, 0]))).toThrow(/teacherIdx\[0,1\] = 3 is not a token id in \[0, V=3\)/);
    expect(() => klTopK(f64(1, 1, [1]), ids(1, 1, [0]), f64(2, 3, [0, 0, 0, 0, 0, 0]))).toThrow(/\[1,1\] but studentLogits has shape \[2,3\] \(m must agree\)/);
    expect(() => klFull(f64(0, 3, []), f64(0, 3, []))).toThrow(/at least one latent slot/);
    expect(() => klFull(f64(1, 2, [1, 0]), f64(1, 3, [0, 0, 0]))).toThrow(/teacher has shape \[1,2\] but studentLogits has shape \[1,3\]/);
  });
});

describe('entropy', () => {
  it('is log k for uniform rows, 1.5 ln 2 for (0.5, 0.25, 0.25) and 0 for one-hot rows', () => {
    // H(0.5, 0.25, 0.25, 0) = 0.5 ln 2 + 2·0.25·ln 4 = 1.5 ln 2 = 1.03972077.
    const h = entropy(f64(3, 4, [0.25, 0.25, 0.25, 0.25, 0.5, 0.25, 0.25, 0, 0, 1, 0, 0]));
    expect(h).toBeAllclose([Math.log(4), 1.0397207708399179, 0], { atol: 1e-15 });
  });
});
