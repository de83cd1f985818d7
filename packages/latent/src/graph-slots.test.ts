// Latent slots on ORT CPU (float64): scatter of latent embeddings into the decoder inputs (slots
// replaced, everything else untouched, padded slots ignored, gradient only at valid slots) and the
// shift-by-one selection of student logits (exactly positions s−1 … s+m−2), with static and symbolic
// dims; a Phase-1-shaped chain h → top-k soft embedding → scatter checked against finite differences.
import { Rng } from '@latent-sft/core';
import { type Dim, Graph, type Tensor, grad } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { bool, f64, fdGrad, i64, normals, nums, sessionOf } from '../test/graph-harness.js';
import { gLatentEmbedding } from './graph-superposition.js';
import { gScatterLatents, gShiftedSlotLogits } from './graph-slots.js';
import { matrix } from './matrix.js';
import { latentLogits, softEmbeddingTopK, topKDistribution } from './superposition.js';

/** Tolerances: float64 kernels vs fp64 CPU; central finite differences. */
const F64 = { atol: 1e-12, rtol: 1e-10 };
const FD = { h: 1e-6, atol: 1e-8, rtol: 1e-6 };

// ---- helpers -----------------------------------------------------------------------------------

// Batch: B = 2, T = 7, d = 3, m = 3 (padded). Example 0 has 3 latents at 2, 3, 4; example 1 has 2 at
// 1, 2 and one padded slot whose position (0) must not be touched.
const [B, T, d, m] = [2, 7, 3, 3];
const positions = [2, 3, 4, 1, 2, 0];
const valid = [true, true, true, true, true, false];

/** Scatter graph with L = Σ out·C and the gradients of L w.r.t. both embeddings. */
function scatterGraph(dims: { B: Dim; T: Dim; m: Dim }) {
  const g = new Graph('scatter');
  const tokens = g.input('tokens', 'float64', [dims.B, dims.T, d]);
  const latents = g.input('latents', 'float64', [dims.B, dims.m, d]);
  const out = gScatterLatents(g, tokens, latents, g.input('pos', 'int64', [dims.B, dims.m]), g.input('valid', 'bool', [dims.B, dims.m]));
  const L = g.reduceSum(g.mul(out, g.input('C', 'float64', [dims.B, dims.T, d])), undefined, false);
  g.output(out, 'out');
  g.output(L, 'L');
  const [dTokens, dLatents] = grad(g, L, [tokens, latents]) as [Tensor, Tensor];
  g.output(dTokens, 'dTokens');
  g.output(dLatents, 'dLatents');
  g.prune();
  return g;
}

describe('gScatterLatents', () => {
  const rng = Rng.fromSeed(3);
  const tokens = normals(rng, B * T * d);
  const latents = normals(rng, B * m * d);
  const C = normals(rng, B * T * d);
  tokens[(1 * T + 3) * d] = Number.NaN; // a slot's own token embedding is never read
  const feeds = {
    tokens: f64([B, T, d], tokens),
    latents: f64([B, m, d], latents),
    pos: i64([B, m], positions),
    valid: bool([B, m], valid),
    C: f64([B, T, d], C),
  };
  // Expected: slot (b, t) ← latent i when positions[b,i] = t and valid[b,i].
  const slotOf = (b: number, t: number): number => {
    for (let i = 0; i < m; i++) if (valid[b * m + i] && positions[b * m + i] === t) return i;
    return -1;
  };

  for (const [label, dims] of [
    ['static dims', { B, T, m }],
    ['symbolic B, T, m', { B: 'B', T: 'T', m: 'm' }],
  ] as const) {
    it(`replaces exactly the valid slots, leaves the rest untouched, routes gradients by slot (${label})`, async () => {
      await using s = await sessionOf(scatterGraph(dims));
      const out = await s.run(feeds);
      const got = nums(out.out);
      const dTok = nums(out.dTokens);
      const dLat = nums(out.dLatents);
      const expDLat = new Array<number>(B * m * d).fill(0);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const i = slotOf(b, t);
          for (let c = 0; c < d; c++) {
            const o = (b * T + t) * d + c;
            if (i >= 0) {
              expect(got[o]).toBe(latents[(b * m + i) * d + c]);
              expect(dTok[o]).toBe(0);
              expDLat[(b * m + i) * d + c] = C[o] as number;
            } else {
              expect(got[o]).toBe(tokens[o]);
              expect(dTok[o]).toBe(C[o]);
            }
          }
        }
      }
      expect(dLat).toEqual(expDLat); // padded slot (b=1, i=2): exactly zero
      expect(dLat.slice((1 * m + 2) * d, (1 * m + 3) * d)).toEqual([0, 0, 0]);
    });
  }

  it('d L / d latents matches central finite differences', async () => {
    await using s = await sessionOf(scatterGraph({ B, T, m }));
    const clean = {
      ...feeds,
      tokens: f64(
        [B, T, d],
        tokens.map((v) => (Number.isNaN(v) ? 0.5 : v)),
      ),
    };
    const out = await s.run(clean);
    expect(nums(out.dLatents)).toBeAllclose(await fdGrad(s, clean, 'latents', FD.h), FD);
  });

  it('without latentValid every slot is placed', async () => {
    const g = new Graph('all-valid');
    const out = gScatterLatents(g, g.input('tokens', 'float64', [1, 3, 1]), g.input('latents', 'float64', [1, 2, 1]), g.input('pos', 'int64', [1, 2]));
    g.output(out, 'out');
    await using s = await sessionOf(g);
    const res = await s.run({ tokens: f64([1, 3, 1], [10, 20, 30]), latents: f64([1, 2, 1], [-1, -2]), pos: i64([1, 2], [2, 0]) });
    expect(nums(res.out)).toEqual([-2, 20, -1]);
  });

  it('throws at build time naming the shapes', () => {
    const g = new Graph('errors');
    const tokens = g.input('tokens', 'float32', [2, 5, 4]);
    const latents = g.input('latents', 'float32', [2, 3, 4]);
    expect(() => gScatterLatents(g, tokens, g.input('l3', 'float32', [2, 3, 3]), g.input('p', 'int64', [2, 3]))).toThrow(
      /tokenEmbeds has shape \[2, 5, 4\] but latentEmbeds has shape \[2, 3, 3\] \(d must agree\)/,
    );
    expect(() => gScatterLatents(g, tokens, latents, g.input('p32', 'int32', [2, 3]))).toThrow(/latentPositions must be int64/);
    expect(() => gScatterLatents(g, tokens, latents, g.value('p'), g.input('v', 'bool', [2, 4]))).toThrow(/m must agree/);
  });
});

describe('gShiftedSlotLogits', () => {
  // logits[b,t,v] = 100 b + 10 t + v identifies its position.
  const [Bs, Ts, V] = [3, 6, 4];
  const lv = Array.from({ length: Bs * Ts * V }, (_, i) => 100 * Math.floor(i / (Ts * V)) + 10 * (Math.floor(i / V) % Ts) + (i % V));
  const row = (b: number, t: number) => [0, 1, 2, 3].map((v) => 100 * b + 10 * t + v);

  for (const [label, dims] of [
    ['static dims', [Bs, Ts, V]],
    ['symbolic B, T, V', ['B', 'T', 'V']],
  ] as const) {
    it(`picks rows s−1 … s+m−2 of each example, clamped to the sequence (${label})`, async () => {
      const g = new Graph('shift');
      const logits = g.input('logits', 'float64', [...dims]);
      const picked = gShiftedSlotLogits(g, logits, g.input('start', 'int64', [dims[0]]), 3);
      const C = g.input('C', 'float64', [dims[0], 3, dims[2]]);
      const L = g.reduceSum(g.mul(picked, C), undefined, false);
      g.output(picked, 'picked');
      g.output(grad(g, L, [logits])[0] as Tensor, 'dLogits');
      g.prune();
      await using s = await sessionOf(g);
      const Cv = Array.from({ length: Bs * 3 * V }, (_, i) => i + 1);
      // Example 2 starts at 5: rows 4, 5, then 6 is past the end and clamps to 5 (a padded slot).
      const out = await s.run({ logits: f64([Bs, Ts, V], lv), start: i64([Bs], [1, 3, 5]), C: f64([Bs, 3, V], Cv) });
      expect(out.picked?.dims).toEqual([Bs, 3, V]);
      expect(nums(out.picked)).toEqual([
        ...row(0, 0),
        ...row(0, 1),
        ...row(0, 2),
        ...row(1, 2),
        ...row(1, 3),
        ...row(1, 4),
        ...row(2, 4),
        ...row(2, 5),
        ...row(2, 5),
      ]);
      // Gradient: C scattered to the picked rows, duplicates (the clamped row) summed, zero elsewhere.
      const exp = new Array<number>(Bs * Ts * V).fill(0);
      const rows = [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 2],
        [1, 3],
        [1, 4],
        [2, 4],
        [2, 5],
        [2, 5],
      ] as const;
      rows.forEach(([b, t], i) => {
        for (let v = 0; v < V; v++) exp[(b * Ts + t) * V + v] = (exp[(b * Ts + t) * V + v] as number) + (Cv[i * V + v] as number);
      });
      expect(nums(out.dLogits)).toEqual(exp);
    });
  }

  it('throws for m < 1 and a non-int64 start', () => {
    const g = new Graph('errors');
    const logits = g.input('logits', 'float32', [2, 5, 4]);
    expect(() => gShiftedSlotLogits(g, logits, g.input('s', 'int64', [2]), 0)).toThrow(/m = 0 must be a positive integer/);
    expect(() => gShiftedSlotLogits(g, logits, g.input('s32', 'int32', [2]), 2)).toThrow(/latentStart must be int64/);
    expect(() => gShiftedSlotLogits(g, logits, g.input('s3', 'int64', [3]), 2)).toThrow(/B must agree/);
  });
});

describe('Phase-1 chain: h → top-k soft embedding → scatter into decoder inputs', () => {
  it('matches the CPU composition and d L / d h matches finite differences', async () => {
    const rng = Rng.fromSeed(41);
    const [V, k] = [9, 3];
    const g = new Graph('chain');
    const h = g.input('h', 'float64', [B, m, d]);
    const W = g.input('W', 'float64', [V, d]);
    const lat = gLatentEmbedding(g, h, W, { kind: 'soft-topk', k });
    const out = gScatterLatents(g, g.input('tokens', 'float64', [B, T, d]), lat.emb, g.input('pos', 'int64', [B, m]), g.input('valid', 'bool', [B, m]));
    const L = g.reduceSum(g.tanh(g.mul(out, g.input('C', 'float64', [B, T, d]))), undefined, false);
    g.output(out, 'out');
    g.output(L, 'L');
    g.output(grad(g, L, [h])[0] as Tensor, 'dh');
    g.prune();
    await using s = await sessionOf(g);
    const hv = normals(rng, B * m * d);
    const Wv = normals(rng, V * d);
    const tokens = normals(rng, B * T * d);
    const feeds = {
      h: f64([B, m, d], hv),
      W: f64([V, d], Wv),
      tokens: f64([B, T, d], tokens),
      pos: i64([B, m], positions),
      valid: bool([B, m], valid),
      C: f64([B, T, d], normals(rng, B * T * d)),
    };
    const res = await s.run(feeds);
    const Wm = matrix(Float64Array.from(Wv), V, d);
    const got = nums(res.out);
    for (let b = 0; b < B; b++) {
      const hb = matrix(Float64Array.from(hv.slice(b * m * d, (b + 1) * m * d)), m, d);
      const dist = topKDistribution(latentLogits(hb, Wm), k);
      const z = softEmbeddingTopK(dist.indices, dist.probs, Wm).data;
      for (let i = 0; i < m; i++) {
        if (!valid[b * m + i]) continue;
        const t = positions[b * m + i] as number;
        expect(got.slice((b * T + t) * d, (b * T + t + 1) * d)).toBeAllclose(z.slice(i * d, (i + 1) * d), F64);
      }
    }
    const dh = nums(res.dh);
    expect(dh).toBeAllclose(await fdGrad(s, feeds, 'h', FD.h), FD);
    expect(dh.slice((1 * m + 2) * d, (1 * m + 3) * d)).toEqual([0, 0, 0]); // the padded slot gets no gradient
  });
});
