// LoRA in the decoder graph: equals the merged weights (mergeLora), gradients w.r.t. A/B match central
// finite differences (float64), and the seeded dropout is reproducible per seed.
import { fileURLToPath } from 'node:url';
import { Rng } from '@latent-sft/core';
import { Graph, grad, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { allclose } from '@latent-sft/testing';
import { describe, expect, it } from 'vitest';
import { tinyLlama } from './config.js';
import { loadCheckpoint } from './checkpoint.js';
import { buildDecoder, causalLmLoss } from './decoder.js';
import { type NamedTensor, initParameters } from './init.js';
import { type LoraConfig, loraParameterShapes, mergeLora } from './lora.js';
import { dropoutKeep, dropoutSource, hashUniform } from './lora-graph.js';

/** LoRA graph vs merged weights, both fp32: same function, different rounding order (outputs are O(1)). */
const MERGED = { atol: 1e-5, rtol: 1e-5 };
/** float64 analytic vs central differences with step 1e-6. */
const FD = { atol: 1e-8, rtol: 1e-5 };
/** hashUniform(seed 12345, stream 0) at flat indices 0..2; changing them breaks resumed dropout streams. */
const PINNED = [1996402747, 953536747, 1799167400];
const ALL7: LoraConfig['targetModules'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

const fixture = fileURLToPath(new URL('../test/fixtures/tiny-llama', import.meta.url));

function randomAdapter(shapes: ReturnType<typeof loraParameterShapes>, seed: number, std: number): NamedTensor[] {
  const rng = Rng.fromSeed(seed);
  return shapes.map((p) => ({ name: p.name, shape: p.shape, data: Float32Array.from({ length: p.shape[0]! * p.shape[1]! }, () => std * rng.normal()) }));
}
function ints(dims: number[], f: (i: number) => number): HostTensor {
  return { dtype: 'int64', dims, data: BigInt64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => BigInt(f(i))) };
}
function host(t: NamedTensor, dtype: 'float32' | 'float64' = 'float32'): HostTensor {
  return { dtype, dims: t.shape, data: dtype === 'float32' ? t.data : Float64Array.from(t.data) };
}
async function session(g: Graph): Promise<Session> {
  return Session.create(serialize(g).model);
}

describe('LoRA decoder graph', () => {
  // PEFT semantics: embed_tokens LoRA changes the input lookup only, while merging changes the shared
  // (tied) lm_head too, so the unmerged and merged *logits* of a tied model differ by design; the
  // encoder setting (FEATURE_EXTRACTION, embed_tokens targeted) is compared on last_hidden_state.
  it.each([
    { taskType: 'CAUSAL_LM', targets: ALL7, output: 'logits' },
    { taskType: 'FEATURE_EXTRACTION', targets: [...ALL7, 'embed_tokens'], output: 'last_hidden_state' },
  ] as const)('$taskType: equals the graph on mergeLora-merged weights ($output)', async ({ taskType, targets, output }) => {
    const ckpt = loadCheckpoint(fixture);
    const base = ckpt.readAll();
    const c = ckpt.config;
    const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: [...targets], bias: 'none', taskType };
    const adapter = randomAdapter(loraParameterShapes(c, lora), 11, 0.05);
    const [B, T] = [2, 7];
    const feeds: Record<string, HostTensor> = {
      input_ids: ints([B, T], (i) => (i * 37 + 5) % c.vocabSize),
      attention_mask: ints([B, T], () => 1),
      position_ids: ints([B, T], (i) => i % T),
    };
    const outputs = ['logits', 'hidden'] as const;
    const gl = new Graph('lora');
    const dec = buildDecoder(gl, c, {
      input: 'ids',
      mask: 'padding',
      outputs,
      params: { kind: 'initializers', tensors: base },
      lora: { config: lora, mode: 'eval' },
      maxPositions: 32,
    });
    expect(Object.keys(dec.lora).length).toBe(2 * (7 * c.numHiddenLayers + (targets.length === 8 ? 1 : 0)));
    expect(gl.inputs.map((t) => t.name)).not.toContain('dropout_seed'); // eval mode: no dropout
    const gm = new Graph('merged');
    buildDecoder(gm, c, {
      input: 'ids',
      mask: 'padding',
      outputs,
      params: { kind: 'initializers', tensors: mergeLora(c, base, adapter, lora) },
      maxPositions: 32,
    });
    const gb = new Graph('base');
    buildDecoder(gb, c, { input: 'ids', mask: 'padding', outputs, params: { kind: 'initializers', tensors: base }, maxPositions: 32 });
    const [sl, sm, sb] = await Promise.all([session(gl), session(gm), session(gb)]);
    const lf = { ...feeds };
    for (const t of adapter) lf[t.name] = host(t);
    const yl = (await sl.run(lf))[output]!.data;
    const ym = (await sm.run(feeds))[output]!.data;
    const yb = (await sb.run(feeds))[output]!.data;
    expect(yl).toBeAllclose(ym, MERGED);
    // The adapter matters: the base model's outputs are far from both.
    expect(allclose(yb, ym, { atol: 1e-2, rtol: 0 }).pass).toBe(false);
    await Promise.all([sl.release(), sm.release(), sb.release()]);
  });

  it('gives d loss / d A, B equal to central finite differences (float64, with dropout on)', async () => {
    const c = tinyLlama({ hiddenSize: 8, intermediateSize: 12, numAttentionHeads: 2, numKeyValueHeads: 1, vocabSize: 20 });
    const lora: LoraConfig = { r: 2, alpha: 4, dropout: 0.25, targetModules: [...ALL7, 'embed_tokens'], bias: 'none', taskType: 'FEATURE_EXTRACTION' };
    const base = initParameters(c, { seed: 3 }).map((t) => ({ ...t, data: t.data.map((v) => v * 10) }));
    const adapter = randomAdapter(loraParameterShapes(c, lora), 5, 0.3);
    const g = new Graph('lora_fd');
    const dec = buildDecoder(g, c, {
      input: 'ids',
      mask: 'padding',
      params: { kind: 'inputs', dtype: 'float64' },
      dtype: 'float64',
      lora: { config: lora, mode: 'train' },
      maxPositions: 16,
      markOutputs: false,
    });
    const loss = causalLmLoss(g, dec.logits!, g.input('labels', 'int64', ['batch', 'seq']));
    const names = Object.keys(dec.lora);
    const grads = grad(
      g,
      loss,
      names.map((n) => dec.lora[n]!),
    );
    g.output(loss, 'loss');
    names.forEach((n, i) => g.output(grads[i]!, `grad.${n}`));
    g.prune();
    const s = await session(g);
    const [B, T] = [2, 5];
    const feeds: Record<string, HostTensor> = {
      // Right padding (row 1's last token) with label -100: no query row is fully masked (such rows,
      // as for left-padded pad tokens, get uniform attention in the forward while the backward, like
      // HF's, differentiates through the absorbed mask, so finite differences there would disagree).
      input_ids: ints([B, T], (i) => (i * 7 + 3) % c.vocabSize),
      labels: ints([B, T], (i) => (i % 4 === 0 || i === 9 ? -100 : (i * 5 + 1) % c.vocabSize)),
      attention_mask: ints([B, T], (i) => (i === 9 ? 0 : 1)),
      position_ids: ints([B, T], (i) => i % T),
      dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(99n) },
    };
    for (const t of base) feeds[t.name] = host(t, 'float64');
    for (const t of adapter) feeds[t.name] = host(t, 'float64');
    const out = await s.run(feeds);
    const lossAt = async (name: string, j: number, delta: number): Promise<number> => {
      const x = Float64Array.from(feeds[name]!.data as Float64Array);
      x[j] = (x[j] as number) + delta;
      const r = await s.run({ ...feeds, [name]: { ...feeds[name]!, data: x } }, ['loss']);
      return (r['loss']!.data as Float64Array)[0] as number;
    };
    const h = 1e-6;
    const rng = Rng.fromSeed(8);
    let checked = 0;
    for (const name of names) {
      const n = feeds[name]!.data.length;
      const analytic = out[`grad.${name}`]!.data as Float64Array;
      const idx = [0, 1, 2].map(() => rng.int(n));
      // The embedding A gets gradient only at the looked-up vocabulary columns; probe one of those.
      if (name.endsWith('lora_embedding_A')) idx.push(3);
      const fd = await Promise.all(idx.map(async (j) => ((await lossAt(name, j, h)) - (await lossAt(name, j, -h))) / (2 * h)));
      expect(
        idx.map((j) => analytic[j] as number),
        name,
      ).toBeAllclose(fd, FD);
      checked += idx.length;
    }
    expect(checked).toBeGreaterThan(90);
    // Not vacuous: the gradients are O(1e-2) or larger somewhere.
    expect(Math.max(...names.map((nm) => Math.max(...Array.from(out[`grad.${nm}`]!.data as Float64Array, Math.abs))))).toBeGreaterThan(1e-2);
    await s.release();
  });

  it('applies dropout reproducibly per dropout_seed; p = 0 leaves no dropout in the graph', async () => {
    const c = tinyLlama();
    const base = initParameters(c, { seed: 1 });
    const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0.1, targetModules: ALL7, bias: 'none', taskType: 'CAUSAL_LM' };
    const adapter = randomAdapter(loraParameterShapes(c, lora), 2, 0.5);
    const build = (l: LoraConfig) => {
      const g = new Graph('drop');
      buildDecoder(g, c, {
        input: 'ids',
        mask: 'padding',
        params: { kind: 'initializers', tensors: base },
        lora: { config: l, mode: 'train' },
        maxPositions: 16,
      });
      return g;
    };
    const g = build(lora);
    const g0 = build({ ...lora, dropout: 0 });
    expect(g0.inputs.map((t) => t.name)).not.toContain('dropout_seed');
    // One pair of hash tables per forward, then 4 Slices + Add, Add, Mul, Less, Cast, Mul per module.
    const added = g.nodes.length - g0.nodes.length;
    expect(added).toBeGreaterThan(7 * c.numHiddenLayers * 10);
    expect(added).toBeLessThan(7 * c.numHiddenLayers * 10 + 250);
    const s = await session(g);
    const feeds: Record<string, HostTensor> = {
      input_ids: ints([1, 6], (i) => i + 3),
      attention_mask: ints([1, 6], () => 1),
      position_ids: ints([1, 6], (i) => i),
    };
    for (const t of adapter) feeds[t.name] = host(t);
    const at = async (seed: bigint) => (await s.run({ ...feeds, dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(seed) } }))['logits']!.data;
    const [a1, a2, b] = [await at(7n), await at(7n), await at(8n)];
    expect(a1).toBeAllclose(a2, { atol: 0, rtol: 0 });
    expect(allclose(a1, b, { atol: 1e-4, rtol: 0 }).pass).toBe(false);
    await s.release();
  });

  it('hashUniform is uniform, independent across streams and seeds, and stable', async () => {
    const g = new Graph('hash');
    const like = g.input('x', 'float32', [256, 64]);
    const seed = g.input('seed', 'int64', []);
    g.output(hashUniform(g, like, seed, 0), 'u0');
    g.output(hashUniform(g, like, seed, 1), 'u1');
    const s = await session(g);
    const x: HostTensor = { dtype: 'float32', dims: [256, 64], data: new Float32Array(256 * 64) };
    const run = async (v: bigint) => s.run({ x, seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(v) } });
    const r = await run(12345n);
    const P = 2147483647;
    const u0 = Array.from(r['u0']!.data as BigInt64Array, (v) => Number(v) / P);
    const u1 = Array.from(r['u1']!.data as BigInt64Array, (v) => Number(v) / P);
    const u2 = Array.from((await run(12346n))['u0']!.data as BigInt64Array, (v) => Number(v) / P);
    const n = u0.length;
    const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
    const corr = (a: number[], b: number[]) => {
      const [ma, mb] = [mean(a), mean(b)];
      let [sab, saa, sbb] = [0, 0, 0];
      for (let i = 0; i < a.length; i++) {
        sab += (a[i]! - ma) * (b[i]! - mb);
        saa += (a[i]! - ma) ** 2;
        sbb += (b[i]! - mb) ** 2;
      }
      return sab / Math.sqrt(saa * sbb);
    };
    // Mean 1/2 and keep rate 0.9 within ~5 standard errors; neighbours, streams, seeds uncorrelated.
    expect(Math.abs(mean(u0) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(u0.filter((v) => v < 0.9).length / n - 0.9)).toBeLessThan(5 * Math.sqrt(0.09 / n));
    for (const [a, b] of [
      [u0.slice(1), u0.slice(0, -1)],
      [u0, u1],
      [u0, u2],
    ] as const)
      expect(Math.abs(corr(a, b))).toBeLessThan(5 / Math.sqrt(n));
    // Counter-based and pinned: a resumed run (or a new build of this code) draws the same masks.
    expect(Array.from((r['u0']!.data as BigInt64Array).slice(0, 3), Number)).toEqual(PINNED);
    // …and they are the documented formula (BigInt on the host).
    const Pn = 2147483647n;
    const rounds = [
      [1103515245n, 12345n, 374761393n],
      [48271n, 1013904223n, 668265263n],
      [69621n, 2654435761n % Pn, 2246822519n % Pn],
      [1664525n, 3266489917n % Pn, 1181783497n],
    ];
    const host = (seed: bigint, stream: bigint, i: bigint) => {
      let x = (i + ((stream * 2654435761n) % Pn)) % Pn;
      for (const [a, c1, c2] of rounds) x = (((x * a! + (seed % Pn) + c1!) % Pn) ** 2n + c2!) % Pn;
      return Number(x);
    };
    expect([0n, 1n, 2n].map((i) => host(12345n, 0n, i))).toEqual(PINNED);
    expect(host(12345n, 1n, 100n)).toBe(Number((r['u1']!.data as BigInt64Array)[100]));
    await s.release();
  });

  it('dropoutKeep: Bernoulli(0.9), the documented formula, no structure in rows, columns, 2 × 2 blocks, streams or seeds', async () => {
    const [N, I, streams, p] = [1024, 1024, 3, 0.1];
    const g = new Graph('keep');
    const x = g.input('x', 'float32', ['rows', I]);
    const seed = g.input('seed', 'int64', []);
    const src = dropoutSource(g, seed, g.gather(g.shapeOf(x), g.scalar(0, 'int64')), streams, I);
    for (let m = 0; m < streams; m++) g.output(g.cast(dropoutKeep(g, x, p, src, m), 'uint8'), `keep${m}`);
    const s = await session(g);
    const feedX: HostTensor = { dtype: 'float32', dims: [N, I], data: new Float32Array(N * I) };
    const run = async (v: bigint) => {
      const r = await s.run({ x: feedX, seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(v) } });
      return Array.from({ length: streams }, (_, m) => r[`keep${m}`]!.data as Uint8Array);
    };
    const [k0, k1] = await run(12345n);
    const [k2] = await run(12346n);
    const [k3] = await run(12345n + 7919n);
    const n = N * I;
    const q = 1 - p;

    // The documented formula, on the host: int64 hash → 32-bit words → int32 product → threshold.
    const Pn = 2147483647n;
    const rounds = [
      [1103515245n, 12345n, 374761393n],
      [48271n, 1013904223n, 668265263n],
      [69621n, 2654435761n % Pn, 2246822519n % Pn],
      [1664525n, 3266489917n % Pn, 1181783497n],
    ];
    const hash = (sd: bigint, stream: bigint, i: bigint) => {
      let v = (i + ((stream * 2654435761n) % Pn)) % Pn;
      for (const [a, c1, c2] of rounds) v = (((v * a! + (sd % Pn) + c1!) % Pn) ** 2n + c2!) % Pn;
      return v;
    };
    const word = (sd: bigint, lo: bigint, hi: bigint, i: number) => Number(hash(sd, lo, BigInt(i)) - (hash(sd, hi, BigInt(i)) % 2n) * 2n ** 31n);
    const w = 2 * streams;
    const rowsT = Int32Array.from({ length: N * w }, (_, i) => word(12345n, 0n, 1n, i));
    const colsT = Int32Array.from({ length: w * I }, (_, i) => word(12345n, 2n, 3n, i));
    const thr = Math.round(q * 2 ** 32) - 2 ** 31;
    const hostKeep = (m: number, r: number, c: number, additiveOnly = false) => {
      const k1v = (rowsT[r * w + 2 * m]! + colsT[2 * m * I + c]!) | 0;
      const k2v = (rowsT[r * w + 2 * m + 1]! + colsT[(2 * m + 1) * I + c]!) | 0;
      return (additiveOnly ? k1v : Math.imul(k1v, k2v)) < thr ? 1 : 0;
    };
    let mismatches = 0;
    for (let r = 0; r < N; r++) for (let c = 0; c < I; c++) if (hostKeep(1, r, c) !== k1![r * I + c]) mismatches++;
    expect(mismatches).toBe(0);

    const mean = (a: ArrayLike<number>) => {
      let t = 0;
      for (let i = 0; i < a.length; i++) t += a[i]!;
      return t / a.length;
    };
    const corr = (a: (i: number) => number, b: (i: number) => number, len: number) => {
      let [sa, sb, sab, saa, sbb] = [0, 0, 0, 0, 0];
      for (let i = 0; i < len; i++) {
        const [x, y] = [a(i), b(i)];
        sa += x;
        sb += y;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
      }
      const cov = sab / len - (sa / len) * (sb / len);
      return cov / Math.sqrt((saa / len - (sa / len) ** 2) * (sbb / len - (sb / len) ** 2));
    };
    // Keep rate 0.9 within 5 standard errors, for every stream and seed.
    for (const k of [k0!, k1!, k2!, k3!]) expect(Math.abs(mean(k) - q)).toBeLessThan(5 * Math.sqrt((p * q) / n));
    // Horizontal / vertical neighbours, other streams, other seeds (incl. phase 1's decoder seed + 7919): uncorrelated.
    const lim = 5 / Math.sqrt(n);
    const at = (k: Uint8Array) => (i: number) => k[i]!;
    expect(
      Math.abs(
        corr(
          (i) => k0![i]!,
          (i) => k0![i + 1]!,
          n - 1,
        ),
      ),
    ).toBeLessThan(lim);
    expect(
      Math.abs(
        corr(
          (i) => k0![i]!,
          (i) => k0![i + I]!,
          n - I,
        ),
      ),
    ).toBeLessThan(lim);
    for (const other of [k1!, k2!, k3!]) expect(Math.abs(corr(at(k0!), at(other), n))).toBeLessThan(lim);
    // Per-row and per-column keep counts have the binomial variance I·p·q (no row or column is special).
    const varRatio = (count: (j: number) => number, groups: number, size: number) => {
      const c = Array.from({ length: groups }, (_, j) => count(j));
      const mu = mean(c);
      return c.reduce((a, v) => a + (v - mu) ** 2, 0) / (groups - 1) / (size * p * q);
    };
    const rowRatio = varRatio(
      (r) => {
        let t = 0;
        for (let c = 0; c < I; c++) t += k0![r * I + c]!;
        return t;
      },
      N,
      I,
    );
    const colRatio = varRatio(
      (c) => {
        let t = 0;
        for (let r = 0; r < N; r++) t += k0![r * I + c]!;
        return t;
      },
      I,
      N,
    );
    for (const v of [rowRatio, colRatio]) expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / 1024));
    // 2 × 2 blocks (rows r, r + dr; columns c, c + dc): the 16 keep patterns at their independent
    // frequencies (chi-square, 15 dof, < 60 ≈ p 1e-7). The test has power: the additive-only variant
    // (keep = a + b < t, no product) fails it.
    const chi2 = (keep: (r: number, c: number) => number, dr: number, dc: number) => {
      const counts = new Array<number>(16).fill(0);
      let blocks = 0;
      for (let r = 0; r + dr < N; r += 2 * dr === N ? 1 : 2) {
        if (dr === N / 2 && r >= N / 2) break;
        for (let c = 0; c + dc < I; c += dc === I / 2 ? 1 : 2) {
          if (dc === I / 2 && c >= I / 2) break;
          counts[keep(r, c) | (keep(r, c + dc) << 1) | (keep(r + dr, c) << 2) | (keep(r + dr, c + dc) << 3)]! += 1;
          blocks++;
        }
      }
      let x2 = 0;
      counts.forEach((o, pat) => {
        let e = blocks;
        for (let b = 0; b < 4; b++) e *= (pat >> b) & 1 ? q : p;
        x2 += (o - e) ** 2 / e;
      });
      return x2;
    };
    const graphKeep = (r: number, c: number) => k0![r * I + c]!;
    for (const [dr, dc] of [
      [1, 1],
      [N / 2, I / 2],
      [1, I / 2],
      [N / 2, 1],
    ] as const)
      expect(chi2(graphKeep, dr, dc), `blocks ${dr} × ${dc}`).toBeLessThan(60);
    expect(chi2((r, c) => hostKeep(0, r, c, true), N / 2, I / 2)).toBeGreaterThan(1000);
    await s.release();
  });
});
