// Graph-side KL losses and entropy vs the CPU references (divergence.ts) on ORT CPU: a padded batch
// with unequal m equals the per-example unpadded klTopK/klFull (per slot, per example, batch mean);
// gradients w.r.t. the student logits against central finite differences; float16 logits run the
// KL in float32; the Phase-2 chain o[b, s-1 : e-1] → gKlTopK equals the CPU slices.
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, f16BitsToNumber, f32ToF16Bits, grad } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { bool, f64, fdGrad, i64, normals, nums, sessionOf } from '../test/graph-harness.js';
import { entropy, klFull, klTopK } from './divergence.js';
import { gEntropy, gKlFull, gKlTopK } from './graph-divergence.js';
import { gShiftedSlotLogits } from './graph-slots.js';
import { matrix } from './matrix.js';

/** Tolerances: float64 kernels vs fp64 CPU; float32 compute vs fp64 CPU; central finite differences. */
const F64 = { atol: 1e-12, rtol: 1e-10 };
const F32 = { atol: 1e-6, rtol: 1e-5 };
const FD = { h: 1e-6, atol: 1e-8, rtol: 1e-6 };

// ---- helpers -----------------------------------------------------------------------------------

// Padded batch: B = 3 examples with m_b = 3, 1, 2 latents (padded to m = 3), k = 4 stored entries,
// V = 9. Teacher probs are unnormalised positive values (a stored top-k sums to < 1) with one exact
// zero at an id whose student logit is −∞ (0·∞ must not become NaN); padded slots hold id 0 and zero probs.
const [B, m, k, V] = [3, 3, 4, 9];
const counts = [3, 1, 2];
const valid = Array.from({ length: B * m }, (_, i) => i % m < (counts[Math.floor(i / m)] as number));

function batch(seed: number) {
  const rng = Rng.fromSeed(seed);
  const probs: number[] = [];
  const idx: number[] = [];
  for (let s = 0; s < B * m; s++) {
    const ids = rng.permutation(V).slice(0, k);
    for (let j = 0; j < k; j++) {
      idx.push(valid[s] ? (ids[j] as number) : 0);
      probs.push(valid[s] ? 0.05 + 0.2 * rng.uniform() : 0);
    }
  }
  probs[1 * k + 2] = 0; // slot (0,1), entry 2: q = 0 contributes nothing, even where the student has −∞
  const student = normals(rng, B * m * V, 2);
  student[1 * V + (idx[1 * k + 2] as number)] = -Infinity;
  return { probs, idx, student };
}

/** CPU klTopK / klFull of example b on its m_b unpadded slots. */
function cpuTopK(data: ReturnType<typeof batch>, b: number) {
  const mb = counts[b] as number;
  const rows = (v: number[], w: number) => v.slice(b * m * w, (b * m + mb) * w);
  return klTopK(
    matrix(Float64Array.from(rows(data.probs, k)), mb, k),
    matrix(Int32Array.from(rows(data.idx, k)), mb, k),
    matrix(Float64Array.from(rows(data.student, V)), mb, V),
  );
}

/** Expected (perSlot with zeros at padding, perSample, loss) from per-example CPU results. */
function expected(per: Array<{ perSlot: Float64Array; mean: number }>) {
  const perSlot = per.flatMap((r) => [...r.perSlot, ...new Array<number>(m - r.perSlot.length).fill(0)]);
  const perSample = per.map((r) => r.mean);
  return { perSlot, perSample, loss: perSample.reduce((a, c) => a + c, 0) / B };
}

function klTopKGraph(studentDtype: 'float64' | 'float32' | 'float16') {
  const g = new Graph('kl-topk');
  const student = g.input('student', studentDtype, ['B', 'm', V]);
  const kl = gKlTopK(g, g.input('probs', 'float64', ['B', 'm', k]), g.input('idx', 'int64', ['B', 'm', k]), student, g.input('valid', 'bool', ['B', 'm']));
  g.output(kl.loss, 'L');
  g.output(kl.perSlot, 'perSlot');
  g.output(kl.perSample, 'perSample');
  if (studentDtype === 'float64') g.output(grad(g, kl.loss, [student])[0] as Tensor, 'dStudent');
  g.prune();
  return g;
}

describe('gKlTopK', () => {
  const data = batch(7);
  const feeds = {
    probs: f64([B, m, k], data.probs),
    idx: i64([B, m, k], data.idx),
    student: f64([B, m, V], data.student),
    valid: bool([B, m], valid),
  };

  it('a padded batch with unequal m equals the per-example unpadded klTopK (float64)', async () => {
    await using s = await sessionOf(klTopKGraph('float64'));
    const out = await s.run(feeds);
    const exp = expected([0, 1, 2].map((b) => cpuTopK(data, b)));
    expect(out.L?.dims).toEqual([]);
    expect(nums(out.perSlot)).toBeAllclose(exp.perSlot, F64);
    expect(nums(out.perSample)).toBeAllclose(exp.perSample, F64);
    expect(nums(out.L)).toBeAllclose([exp.loss], F64);
  });

  it('d loss / d student logits matches finite differences and is zero at padded slots', async () => {
    await using s = await sessionOf(klTopKGraph('float64'));
    const out = await s.run(feeds);
    const dS = nums(out.dStudent);
    expect(dS).toBeAllclose(await fdGrad(s, feeds, 'student', FD.h), FD);
    valid.forEach((ok, slot) => {
      if (!ok) expect(dS.slice(slot * V, (slot + 1) * V)).toEqual(new Array<number>(V).fill(0));
    });
  });

  it('float32 student logits agree within F32', async () => {
    await using s = await sessionOf(klTopKGraph('float32'));
    const out = await s.run({ ...feeds, student: { dtype: 'float32', dims: [B, m, V], data: Float32Array.from(data.student) } });
    const exp = expected([0, 1, 2].map((b) => cpuTopK(data, b)));
    expect(out.L?.dtype).toBe('float32');
    expect(nums(out.perSlot)).toBeAllclose(exp.perSlot, F32);
    expect(nums(out.L)).toBeAllclose([exp.loss], F32);
  });

  it('float16 student logits: the log-softmax and KL run in float32 (agrees within F32 on the fp16-rounded logits)', async () => {
    const g = klTopKGraph('float16');
    // ORT CPU would up-cast an fp16 LogSoftmax by itself (InsertCastTransformer), so check the graph.
    const logSoftmax = g.nodes.find((n) => n.op === 'LogSoftmax');
    expect(g.value(logSoftmax?.inputs[0] as string).dtype).toBe('float32');
    await using s = await sessionOf(g);
    const bits = Uint16Array.from(data.student, f32ToF16Bits);
    const out = await s.run({ ...feeds, student: { dtype: 'float16', dims: [B, m, V], data: bits } });
    const rounded = { ...data, student: Array.from(bits, f16BitsToNumber) };
    const exp = expected([0, 1, 2].map((b) => cpuTopK(rounded, b)));
    expect(out.L?.dtype).toBe('float32');
    expect(nums(out.perSlot)).toBeAllclose(exp.perSlot, F32);
    expect(nums(out.L)).toBeAllclose([exp.loss], F32);
  });

  it('without validMask every slot counts (mean over m, then over B)', async () => {
    const g = new Graph('kl-nomask');
    const kl = gKlTopK(g, g.input('probs', 'float64', [2, 2, 2]), g.input('idx', 'int64', [2, 2, 2]), g.input('student', 'float64', [2, 2, 3]));
    g.output(kl.loss, 'L');
    await using s = await sessionOf(g);
    const pv = [0.5, 0.25, 0.3, 0.3, 0.9, 0.1, 0.2, 0.2];
    const iv = [0, 2, 1, 0, 2, 1, 0, 1];
    const sv = [0.1, -0.4, 1.2, 0.7, 0.0, -1.1, 2.0, 0.5, -0.3, 0.2, 0.2, 0.9];
    const out = await s.run({ probs: f64([2, 2, 2], pv), idx: i64([2, 2, 2], iv), student: f64([2, 2, 3], sv) });
    const means = [0, 1].map(
      (b) =>
        klTopK(
          matrix(Float64Array.from(pv.slice(4 * b, 4 * b + 4)), 2, 2),
          matrix(Int32Array.from(iv.slice(4 * b, 4 * b + 4)), 2, 2),
          matrix(Float64Array.from(sv.slice(6 * b, 6 * b + 6)), 2, 3),
        ).mean,
    );
    expect(nums(out.L)).toBeAllclose([((means[0] as number) + (means[1] as number)) / 2], F64);
  });

  it('throws at build time naming the shapes', () => {
    const g = new Graph('errors');
    const student = g.input('student', 'float32', [2, 3, 9]);
    expect(() => gKlTopK(g, g.input('p', 'float32', [2, 3, 4]), g.input('i', 'int64', [2, 3, 5]), student)).toThrow(
      /teacherProbs has shape \[2, 3, 4\] but teacherIdx has shape \[2, 3, 5\] \(k must agree\)/,
    );
    expect(() => gKlTopK(g, g.value('p'), g.input('i32', 'int32', [2, 3, 4]), student)).toThrow(/teacherIdx must be int64/);
    expect(() => gKlTopK(g, g.value('p'), g.input('i4', 'int64', [2, 3, 4]), student, g.input('vf', 'float32', [2, 3]))).toThrow(/validMask must be bool/);
    expect(() => gKlFull(g, g.input('t', 'float32', [2, 3, 8]), student)).toThrow(/V must agree/);
  });
});

describe('gKlFull', () => {
  it('a padded batch equals the per-example klFull, and d loss / d student matches finite differences', async () => {
    const rng = Rng.fromSeed(19);
    const teacher = Array.from({ length: B * m * V }, () => rng.uniform());
    const student = normals(rng, B * m * V, 2);
    const g = new Graph('kl-full');
    const st = g.input('student', 'float64', [B, m, V]);
    const kl = gKlFull(g, g.input('teacher', 'float64', [B, m, V]), st, g.input('valid', 'bool', [B, m]));
    g.output(kl.loss, 'L');
    g.output(kl.perSlot, 'perSlot');
    g.output(grad(g, kl.loss, [st])[0] as Tensor, 'dStudent');
    g.prune();
    await using s = await sessionOf(g);
    const feeds = { teacher: f64([B, m, V], teacher), student: f64([B, m, V], student), valid: bool([B, m], valid) };
    const out = await s.run(feeds);
    const per = [0, 1, 2].map((b) => {
      const rows = (v: number[]) => Float64Array.from(v.slice(b * m * V, (b * m + (counts[b] as number)) * V));
      return klFull(matrix(rows(teacher), counts[b] as number, V), matrix(rows(student), counts[b] as number, V));
    });
    const exp = expected(per);
    expect(nums(out.perSlot)).toBeAllclose(exp.perSlot, F64);
    expect(nums(out.L)).toBeAllclose([exp.loss], F64);
    expect(nums(out.dStudent)).toBeAllclose(await fdGrad(s, feeds, 'student', FD.h), FD);
  });
});

describe('gEntropy', () => {
  it('equals entropy per row (0·log 0 = 0) with a finite gradient that matches finite differences', async () => {
    const g = new Graph('entropy');
    const p = g.input('p', 'float64', [2, 2, 3]);
    const H = gEntropy(g, p);
    g.output(H, 'H');
    const L = g.reduceSum(g.mul(H, g.input('C', 'float64', [2, 2])), undefined, false);
    g.output(L, 'L');
    g.output(grad(g, L, [p])[0] as Tensor, 'dp');
    g.prune();
    await using s = await sessionOf(g);
    const pv = [0.2, 0.3, 0.5, 1, 0, 0, 0.6, 0, 0.4, 0.25, 0.25, 0.5];
    const feeds = { p: f64([2, 2, 3], pv), C: f64([2, 2], [1, -2, 0.5, 3]) };
    const out = await s.run(feeds);
    expect(nums(out.H)).toBeAllclose(entropy(matrix(Float64Array.from(pv), 4, 3)), F64);
    const dp = nums(out.dp);
    expect(dp.every(Number.isFinite)).toBe(true);
    // d(−p log p)/dp = −(log p + 1) · C_row where p > 0; 0 where p = 0.
    const C = [1, -2, 0.5, 3];
    expect(dp).toBeAllclose(
      pv.map((q, i) => (q > 0 ? -(Math.log(q) + 1) * (C[Math.floor(i / 3)] as number) : 0)),
      F64,
    );
    const fd = await fdGrad(
      s,
      {
        ...feeds,
        p: f64(
          [2, 2, 3],
          pv.map((q) => (q > 0 ? q : 0.1)),
        ),
      },
      'p',
      FD.h,
    );
    const atPositive = (v: number[]) => v.filter((_, i) => (pv[i] as number) > 0);
    expect(atPositive(dp)).toBeAllclose(atPositive(fd), FD);
  });
});

describe('Phase-2 chain: o[b, s-1 : e-1] → gKlTopK', () => {
  it('equals klTopK on each example’s CPU slice of the logits at positions s−1 … s+m_b−2', async () => {
    const rng = Rng.fromSeed(29);
    const T = 8;
    const starts = [2, 4, 1];
    const data = batch(31);
    const logits = normals(rng, B * T * V, 2);
    const g = new Graph('phase2');
    const o = g.input('logits', 'float64', ['B', 'T', V]);
    const kl = gKlTopK(
      g,
      g.input('probs', 'float64', ['B', m, k]),
      g.input('idx', 'int64', ['B', m, k]),
      gShiftedSlotLogits(g, o, g.input('start', 'int64', ['B']), m),
      g.input('valid', 'bool', ['B', m]),
    );
    g.output(kl.loss, 'L');
    g.output(kl.perSlot, 'perSlot');
    g.output(grad(g, kl.loss, [o])[0] as Tensor, 'dLogits');
    g.prune();
    await using s = await sessionOf(g);
    const feeds = {
      logits: f64([B, T, V], logits),
      start: i64([B], starts),
      probs: f64([B, m, k], data.probs),
      idx: i64([B, m, k], data.idx),
      valid: bool([B, m], valid),
    };
    const out = await s.run(feeds);
    const per = [0, 1, 2].map((b) => {
      const s0 = (starts[b] as number) - 1;
      const shifted = logits.slice((b * T + s0) * V, (b * T + s0 + (counts[b] as number)) * V);
      const rows = (v: number[]) => v.slice(b * m * k, (b * m + (counts[b] as number)) * k);
      return klTopK(
        matrix(Float64Array.from(rows(data.probs)), counts[b] as number, k),
        matrix(Int32Array.from(rows(data.idx)), counts[b] as number, k),
        matrix(Float64Array.from(shifted), counts[b] as number, V),
      );
    });
    const exp = expected(per);
    expect(nums(out.perSlot)).toBeAllclose(exp.perSlot, F64);
    expect(nums(out.L)).toBeAllclose([exp.loss], F64);
    const dL = nums(out.dLogits);
    expect(dL).toBeAllclose(await fdGrad(s, feeds, 'logits', FD.h), FD);
    // Only the rows that predict a valid latent get a gradient.
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const predictsLatent = t >= (starts[b] as number) - 1 && t < (starts[b] as number) - 1 + (counts[b] as number);
        const rowNorm = dL.slice((b * T + t) * V, (b * T + t + 1) * V).reduce((a, v) => a + Math.abs(v), 0);
        expect(rowNorm > 0, `example ${b}, position ${t}`).toBe(predictsLatent);
      }
    }
  });
});
