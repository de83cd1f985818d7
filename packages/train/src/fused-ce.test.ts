// The chunked LM-head cross-entropy on the CPU (graph's linear-cross-entropy.ts, the addon's
// ops/cross_entropy.cc): the two kernels against their float64 reference in every dtype, then the
// rewritten-and-lowered loss against the standard-op head + crossEntropy it replaces — loss and the
// gradients of h and W — over 11 vocabulary chunks with a tail, ignored rows and labels on chunk edges;
// and what the lowered graph no longer holds. The small Llama step with every fused kernel (this one
// included) is in fused-softmax.test.ts.
import { Rng } from '@latent-sft/core';
import { Graph, type Node, type Tensor, crossEntropy, fuseLinearCrossEntropy, grad, lowerLinearLogProb, serialize } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyQwen2 } from '@latent-sft/models';
import { tinyBatch, tinyObjective } from '../test/tiny-llama.js';
import { Trainer } from './index.js';
import { ceChunkCase, ceChunkReference, floatValues, normwise, runFloat32, runOnce } from './testing.js';

const cpu = { kind: 'cpu' } as const;

/** Largest |a − b| − rel·|b|, over max |b|: 0 when every element is within `rel` of its reference. */
function excess(a: Float64Array, b: Float64Array, rel: number): number {
  const max = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs((a[i] as number) - (b[i] as number)) - rel * Math.abs(b[i] as number));
  return w / max;
}

describe('CEChunkStats / CEChunkGrad kernels vs their float64 reference (CPU)', () => {
  const [R, C, offset, vocab] = [37, 1001, 3000, 5000];
  // Σ e^(z − max) over 1001 float32 terms in sequence: a few 1e-7 relative; the max and z[target] are
  // stored values, exact. dz: e^(z − lse) with z − lse rounded to float32 first (|z − lse| ≤ ~30: ~2e-6
  // relative), then one rounding to the dtype; far below 1e-5 of the largest |dz| otherwise.
  const SUM_REL = 1e-5;
  for (const [dtype, ulp] of [
    ['float32', 2 ** -23],
    ['bfloat16', 2 ** -8],
    ['float16', 2 ** -11],
  ] as const) {
    it(`${dtype}: row max and target logit exact, Σ within ${SUM_REL}, NaN for a target outside the vocabulary; dz within one ulp`, async () => {
      const c = ceChunkCase(dtype, R, C, offset, vocab, 5);
      const out = await runOnce(c.model, c.inputs, cpu);
      const ref = ceChunkReference(c.inputs, offset, vocab);
      const st = floatValues(out['stats'] as HostTensor);
      for (let i = 0; i < R; i++) {
        expect(st[3 * i], `max row ${i}`).toBe(ref.stats[3 * i]);
        expect(Math.abs((st[3 * i + 1] as number) / (ref.stats[3 * i + 1] as number) - 1), `sum row ${i}`).toBeLessThan(SUM_REL);
        if (i === 5) expect(st[3 * i + 2], 'target -1').toBeNaN();
        else expect(st[3 * i + 2], `target logit row ${i}`).toBe(ref.stats[3 * i + 2]);
      }
      expect([st[3 * 3 + 2], st[3 * 4 + 2]], 'targets just outside the chunk').toEqual([0, 0]);
      expect(st[2], 'target in the chunk').not.toBe(0);
      const dz = floatValues(out['dzT'] as HostTensor);
      expect(excess(dz, ref.dzT, ulp), 'dz').toBeLessThan(1e-5);
      // The target column carries the +dlogp: row 0's target is the chunk's first column.
      expect(Math.abs((dz[0] as number) - (ref.dzT[0] as number))).toBeLessThan(Math.abs(ref.dzT[0] as number) * ulp + 1e-6);
    });
  }
});

type Mode = 'plain' | 'fused';
const [N, D, V, CHUNK] = [24, 48, 1000, 96]; // 11 chunks, the last 40 columns wide
/** Labels: ignored rows (−100), the first/last column of chunks, the vocabulary's ends, the rest random. */
function labels(r: Rng): BigInt64Array {
  const fixed = [-100, 0, 95, 96, 191, 959, 960, 999, -100];
  return BigInt64Array.from({ length: N }, (_, i) => BigInt(i < fixed.length ? (fixed[i] as number) : Math.floor(r.uniform() * V)));
}

/** loss = crossEntropy(float32(h·Wᵀ), labels) with h, W cast to dtype; outputs loss, dh (and dW unless frozen). */
function ceGraph(dtype: 'float16' | 'float32', mode: Mode, frozenW = false): { g: Graph; fused: number } {
  const g = new Graph('linear_ce');
  const h32 = g.input('h', 'float32', [N, D]);
  const w32 = g.input('w', 'float32', [V, D]);
  const y = g.input('labels', 'int64', [N]);
  const [h, w] = [g.cast(h32, dtype), g.cast(w32, dtype)];
  const logits = g.cast(g.reshape(g.op1('Gemm', [h, w], { transB: 1 }), [2, N / 2, V]), 'float32');
  const loss = crossEntropy(g, g.reshape(logits, [-1, V]), y);
  const fused = mode === 'fused' ? fuseLinearCrossEntropy(g, { chunk: CHUNK }) : 0;
  const wrt: Tensor[] = frozenW ? [h32] : [h32, w32];
  const grads = grad(g, loss, wrt);
  lowerLinearLogProb(g);
  g.output(loss, 'loss');
  g.output(grads[0] as Tensor, 'dh');
  if (!frozenW) g.output(grads[1] as Tensor, 'dw');
  g.prune();
  return { g, fused };
}

function ceInputs(seed: number, bad = false): Record<string, HostTensor> {
  const r = Rng.fromSeed(seed);
  const f = (dims: number[], s: number): HostTensor => ({
    dtype: 'float32',
    dims,
    data: Float32Array.from({ length: dims[0]! * dims[1]! }, () => s * r.normal()),
  });
  const y = labels(r);
  if (bad) y[N - 1] = BigInt(V);
  return { h: f([N, D], 1), w: f([V, D], 0.5), labels: { dtype: 'int64', dims: [N], data: y } };
}

const run = (g: Graph, inputs: Record<string, HostTensor>) => runFloat32(serialize(g).model, inputs, cpu);

describe('the chunked cross-entropy vs the standard-op LM head + crossEntropy it replaces (CPU)', () => {
  it('float32: loss within 1e-6, dh and dW within 2e-6 normwise (sums in another order)', async () => {
    const fused = ceGraph('float32', 'fused');
    expect(fused.fused).toBe(1);
    const [a, b] = [await run(fused.g, ceInputs(1)), await run(ceGraph('float32', 'plain').g, ceInputs(1))];
    expect(a['loss']).toBeAllclose(b['loss']!, { rtol: 1e-6, atol: 0 });
    for (const k of ['dh', 'dw']) expect(normwise(a[k]!, b[k]!), k).toBeLessThan(2e-6);
    // Ignored rows get no gradient; the first row is ignored.
    expect(Array.from(a['dh']!.subarray(0, D)).every((v) => v === 0)).toBe(true);
    expect(Math.max(...Array.from(b['dw']!, Math.abs)), 'not trivially 0').toBeGreaterThan(1e-3);
  });

  it('float16: as close to the float32 loss and gradients as the standard ops (each chunk of dh rounded once)', async () => {
    const ref = await run(ceGraph('float32', 'plain').g, ceInputs(2));
    const [a, b] = [await run(ceGraph('float16', 'fused').g, ceInputs(2)), await run(ceGraph('float16', 'plain').g, ceInputs(2))];
    expect(a['loss']).toBeAllclose(b['loss']!, { rtol: 1e-3, atol: 0 });
    for (const k of ['dh', 'dw']) {
      const [ea, eb] = [normwise(a[k]!, ref[k]!), normwise(b[k]!, ref[k]!)];
      expect(ea, `${k} fused vs float32`).toBeLessThan(4e-3);
      expect(ea, `${k}: fused ${ea} vs plain ${eb} (from float32)`).toBeLessThan(1.5 * eb + 5e-4);
    }
  });

  it('a frozen W: no weight-gradient GEMMs, the same dh', async () => {
    const frozen = ceGraph('float32', 'fused', true);
    const gemms = (g: Graph) => g.nodes.filter((n) => n.op === 'Gemm').length;
    const K = Math.ceil(V / CHUNK);
    expect(gemms(frozen.g)).toBe(3 * K); // forward z, backward zᵀ and dh per chunk
    expect(gemms(ceGraph('float32', 'fused').g)).toBe(4 * K); // + dW per chunk
    const [a, b] = [await run(frozen.g, ceInputs(3)), await run(ceGraph('float32', 'plain', true).g, ceInputs(3))];
    expect(normwise(a['dh']!, b['dh']!)).toBeLessThan(2e-6);
  });

  it('the lowered graph holds no [rows, vocab] tensor: only W and dW have a vocabulary-sized dim', () => {
    const { g } = ceGraph('float16', 'fused');
    expect(g.nodes.filter((n) => n.op === 'CEChunkStats').length).toBe(Math.ceil(V / CHUNK));
    expect(g.nodes.some((n) => ['LogSoftmax', 'GatherElements', 'LinearLogProb', 'LinearLogProbGrad'].includes(n.op))).toBe(false);
    const big = g.nodes.flatMap((n) => n.outputs).filter((o) => g.value(o).shape.includes(V));
    expect(big.length).toBeGreaterThan(0);
    for (const o of big) expect(g.value(o).shape, o).toEqual([V, D]);
    const plain = ceGraph('float16', 'plain').g;
    expect(plain.nodes.flatMap((n) => n.outputs).some((o) => plain.value(o).shape.join() === `${N},${V}`)).toBe(true);
  });

  it('the chunks run one after another whatever order ORT picks: each chunk waits (latent_sft.After) for the previous one', () => {
    const { g } = ceGraph('float16', 'fused');
    const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const ancestors = (n: Node): Set<Node> => {
      const seen = new Set<Node>();
      const stack = [n];
      while (stack.length > 0)
        for (const i of (stack.pop() as Node).inputs) {
          const p = producer.get(i);
          if (p !== undefined && !seen.has(p)) {
            seen.add(p);
            stack.push(p);
          }
        }
      return seen;
    };
    const K = Math.ceil(V / CHUNK);
    for (const op of ['CEChunkStats', 'CEChunkGrad']) {
      const ks = g.nodes.filter((n) => n.op === op).sort((a, b) => (a.attrs['offset'] as number) - (b.attrs['offset'] as number));
      expect(ks.length).toBe(K);
      for (let c = 1; c < K; c++) expect(ancestors(ks[c]!).has(ks[c - 1]!), `${op} chunk ${c} after chunk ${c - 1}`).toBe(true);
    }
    // Each chunk's dh product (Gemm with transA) waits for its dW product (the Gemm that reads that chunk's dzᵀ first).
    for (const grad of g.nodes.filter((n) => n.op === 'CEChunkGrad')) {
      const dz = grad.outputs[0] as string;
      const readers = g.nodes.filter((n) => n.op === 'Gemm' && n.inputs[0] === dz);
      const [dhGemm, dwGemm] = [readers.find((n) => n.attrs['transA'] === 1), readers.find((n) => n.attrs['transA'] === undefined)];
      expect(dhGemm !== undefined && dwGemm !== undefined && ancestors(dhGemm).has(dwGemm)).toBe(true);
    }
    expect(g.nodes.filter((n) => n.op === 'After').length).toBe(3 * K - 2); // forward K − 1, backward h K − 1, W_c K
  });

  it('a label outside the vocabulary makes the loss NaN (never a silently wrong value)', async () => {
    const a = await run(ceGraph('float32', 'fused').g, ceInputs(4, true));
    expect(a['loss']![0]).toBeNaN();
  });

  it('is not applied when the logits have another use, the head has a bias, or the log-softmax is not float32', () => {
    const build = (variant: 'output' | 'bias' | 'f16') => {
      const g = new Graph('v');
      const h = g.input('h', 'float16', [N, D]);
      const w = g.input('w', 'float16', [V, D]);
      const z = variant === 'bias' ? g.op1('Gemm', [h, w, g.input('b', 'float16', [V])], { transB: 1 }) : g.op1('Gemm', [h, w], { transB: 1 });
      const logits = variant === 'f16' ? z : g.cast(z, 'float32');
      if (variant === 'output') g.output(g.identity(logits), 'logits');
      g.output(crossEntropy(g, logits, g.input('labels', 'int64', [N])), 'loss');
      return fuseLinearCrossEntropy(g, { chunk: CHUNK });
    };
    expect([build('output'), build('bias'), build('f16')]).toEqual([0, 0, 0]);
  });

  it('serialize refuses a graph whose LinearLogProb was not lowered', () => {
    const g = new Graph('unlowered');
    const loss = crossEntropy(
      g,
      g.cast(g.op1('Gemm', [g.input('h', 'float32', [N, D]), g.input('w', 'float32', [V, D])], { transB: 1 }), 'float32'),
      g.input('labels', 'int64', [N]),
    );
    expect(fuseLinearCrossEntropy(g)).toBe(1);
    g.output(loss, 'loss');
    expect(() => serialize(g)).toThrow(/LinearLogProb node .* has no kernel; lower it first/);
  });
});

describe('a small Qwen2 step (untied, trainable lm_head) with and without the chunked cross-entropy (CPU, float32)', () => {
  it('the same loss and the same gradient of every parameter, lm_head included, within 2e-6 normwise', async () => {
    const [Bt, Tt] = [2, 6];
    const config = tinyQwen2({ vocabSize: 301 }); // 5 chunks of 64 columns, the last 45 wide
    const { objective, init } = tinyObjective(Bt, Tt, 'float32', config);
    const batch = tinyBatch(Bt, Tt);
    // One SGD step of lr 1e4 moves each parameter by −1e4·grad (large, so that p − p' is not lost to the rounding of p').
    const LR = 1e4;
    const step = async (crossEntropy: boolean) => {
      const t = await Trainer.create(
        {
          objective,
          optimizer: { kind: 'sgd', lr: LR },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          clipNorm: null,
          precision: { compute: 'float32', lossScale: null },
          device: cpu,
          fusedKernels: { optimizer: false, softmax: false, rmsnorm: false, swiglu: false, crossEntropy, ceChunk: 64 },
        },
        { trainable: init, frozen: {} },
      );
      const { loss } = await t.step([batch]);
      const st = await t.state();
      await t.release();
      const grads = new Map(
        st.trainable.map((p) => [p.name, Float32Array.from(p.data as Float32Array, (v, j) => ((init[p.name]!.data as Float32Array)[j]! - v) / LR)]),
      );
      return { loss, grads };
    };
    const [a, b] = [await step(true), await step(false)];
    // The loss relative to its size, as the gradients: two float32 sums in other orders differ by a few ulps,
    // how many depends on the CPU's GEMM kernels (an absolute 5e-7, about one ulp at 5.8, failed on an AMD EPYC).
    expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss)).toBeLessThan(2e-6);
    expect(a.grads.has('lm_head.weight')).toBe(true);
    for (const [name, r] of b.grads) expect(normwise(a.grads.get(name)!, r), name).toBeLessThan(2e-6);
  });
});
