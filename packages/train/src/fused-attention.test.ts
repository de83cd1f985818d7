// latent_sft.FlashAttention (graph.fuseFlashAttention, FusedParts.attention) on the CPU: the op and its
// backward against an exact float64 reference (rep > 1, T and S off the 64-key blocks, broadcast masks,
// rows whose keys are all blocked, the Dsum workspace); the rewrite of the decoder's 16-bit attention
// (structure: one per layer, no 16-bit [.., T, S] tensor left, the CUDA head-size filter, the input
// error); then a small Llama trained in float16 with it against the MaskedSoftmax path it replaces —
// full fine-tuning (also with recompute 'layers') and LoRA with seeded dropout.
import { type Logger, Rng } from '@latent-sft/core';
import { Graph, type Tensor, fuseFlashAttention, fuseMaskedSoftmax, grad, serialize } from '@latent-sft/graph';
import { MASK_MIN, tinyLlama } from '@latent-sft/models';
import { DeviceSession, type HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyBatch, tinyLoraObjective, tinyObjective } from '../test/tiny-llama.js';
import { type FusedParts, type Objective, type Recompute, Trainer, buildStepGraphs, graphOptimizer } from './index.js';
import { defaultFusedParts } from './step-graphs.js';
import { type FlashAttentionDims, flashAttentionCase, flashAttentionReference, floatValues, normwise, runOnce } from './testing.js';

const cpu = { kind: 'cpu' } as const;

/**
 * float32: dots over D and sums over S ≤ 130 keys in float32, in another order than the float64
 * reference: ~1e-6 of the largest value (sequential sums of S terms: up to S·2⁻²⁴ ≈ 8e-6), where values
 * that nearly cancel (dK, dQ, dV entries near 0) are off by as much in absolute terms.
 */
const F32 = { rtol: 1e-5, atolOfMax: 4e-6, normwise: 2e-6 };
/**
 * 16-bit (u = one ulp of the dtype: 2⁻¹¹ float16, 2⁻⁸ bfloat16): the kernel rounds e^(z − m) before P·V
 * and dS before dQ, dK (the operands tensor cores take, as the MaskedSoftmax path rounds the
 * probabilities), then each result once: within u of each value plus 2u of the largest, u normwise.
 */
const ulpTol = (u: number) => ({ rtol: u, atolOfMax: 2 * u, normwise: u });
const TOL = { float32: F32, float16: ulpTol(2 ** -11), bfloat16: ulpTol(2 ** -8) } as const;
/** The row statistics are float32 in every dtype (16-bit products are exact in float32). */
const STATS = { rtol: 1e-5, atol: 1e-6 };

function expectClose(got: Float64Array, ref: Float64Array, tol: { rtol: number; atolOfMax: number; normwise: number }, what: string): void {
  const max = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expect(max, `${what}: not trivially 0`).toBeGreaterThan(1e-3);
  expect(got, what).toBeAllclose(ref, { rtol: tol.rtol, atol: tol.atolOfMax * max });
  expect(normwise(Float32Array.from(got), Float32Array.from(ref)), `${what} normwise`).toBeLessThan(tol.normwise);
}

describe('FlashAttention / FlashAttentionGrad kernels vs the float64 reference (CPU)', () => {
  const cases: ReadonlyArray<['float32' | 'float16' | 'bfloat16', FlashAttentionDims, number[], number]> = [
    ['float32', { B: 2, G: 2, rep: 2, T: 37, S: 45, D: 16 }, [2, 1, 1, 37, 45], 0.25],
    ['float32', { B: 2, G: 2, rep: 3, T: 37, S: 130, D: 24 }, [2, 2, 3, 37, 130], 0.3],
    ['float32', { B: 2, G: 1, rep: 1, T: 37, S: 130, D: 8 }, [1, 1, 1, 37, 130], 1],
    ['float32', { B: 2, G: 2, rep: 2, T: 37, S: 45, D: 16 }, [2, 1, 1, 1, 45], 0.25],
    ['float16', { B: 2, G: 2, rep: 2, T: 37, S: 45, D: 64 }, [2, 1, 1, 37, 45], 0.125],
    ['float16', { B: 2, G: 2, rep: 2, T: 37, S: 130, D: 16 }, [1, 1, 1, 37, 130], 0.3],
    ['bfloat16', { B: 2, G: 2, rep: 2, T: 37, S: 130, D: 64 }, [2, 2, 2, 37, 130], 0.125],
  ];
  for (const [dtype, dims, maskDims, scale] of cases) {
    const { B, G, rep, T, S, D } = dims;
    it(`${dtype}: rep ${rep}, T ${T}, S ${S}, D ${D}, mask [${maskDims.join(', ')}], scale ${scale}: O, stats, dQ, dK, dV, Dsum`, async () => {
      const c = flashAttentionCase(dtype, dims, maskDims, scale, 7);
      const out = await runOnce(c.model, c.inputs, cpu);
      const ref = flashAttentionReference(c.inputs, dims, scale, out['o'] as HostTensor);
      const got = (k: string) => floatValues(out[k] as HostTensor);
      const tol = TOL[dtype];
      expectClose(got('o'), ref.o, tol, 'O');
      for (const k of ['dq', 'dk', 'dv'] as const) expectClose(got(k), ref[k], tol, k);
      // Dsum = Σ dO·O (the O it was given) in float32.
      expect(got('dsum'), 'Dsum').toBeAllclose(ref.dsum, STATS);
      // stats: (max z, Σ e^(z − max)) per row; a row whose keys are all blocked has max = the float32 min and
      // Σ = S (its softmax uniform, as the standard ops make it).
      const stats = got('stats');
      const part = (a: Float64Array, j: number) => a.filter((_, i) => i % 2 === j);
      const m = c.inputs['mask'] as HostTensor;
      const blocked: number[] = [];
      const md = m.dims as number[];
      const mAt = (idx: number[]) => (m.data as Float32Array)[idx.reduce((a, x, i) => a * (md[i] as number) + ((md[i] as number) === 1 ? 0 : x), 0)] as number;
      for (let row = 0; row < B * G * rep * T; row++) {
        const [b, g, i] = [Math.floor(row / (G * rep * T)), Math.floor(row / (rep * T)) % G, row % (rep * T)];
        if (Array.from({ length: S }, (_, s) => mAt([b, g, Math.floor(i / T), i % T, s])).every((v) => v === Math.fround(MASK_MIN))) blocked.push(row);
      }
      expect(blocked.length, 'the case has fully blocked rows').toBeGreaterThan(0);
      for (const row of blocked) expect([stats[2 * row], stats[2 * row + 1]], `blocked row ${row}`).toEqual([Math.fround(MASK_MIN), S]);
      expect(part(stats, 0), 'row max').toBeAllclose(part(ref.stats, 0), STATS);
      expect(part(stats, 1), 'row sum').toBeAllclose(part(ref.stats, 1), STATS);
    });
  }
});

/**
 * Runs `g` once on the CPU with each output bound to a tensor filled with NaN first, so an output element the op
 * does not write shows; returns the outputs.
 */
async function runPrefilled(g: Graph, inputs: Record<string, HostTensor>): Promise<Record<string, number[]>> {
  const session = DeviceSession.create(serialize(g).model, { device: cpu });
  const binding = session.createBinding();
  const held = Object.entries(inputs).map(([k, t]) => {
    const d = session.upload(t);
    binding.bindInput(k, d);
    return d;
  });
  const outs = g.outputs.map((t) => {
    const name = t.name;
    const dims = t.shape as number[];
    const n = dims.reduce((a, b) => a * b, 1);
    const data = t.dtype === 'float32' ? new Float32Array(n).fill(Number.NaN) : new Uint16Array(n).fill(0x7e00); // float16 NaN
    const d = session.upload({ dtype: t.dtype, dims, data } as HostTensor);
    binding.bindOutput(name, d);
    return [name, d] as const;
  });
  try {
    await session.runAsync(binding);
    return Object.fromEntries(outs.map(([name, d]) => [name, Array.from(floatValues(d.toHost()))]));
  } finally {
    for (const t of [...held, ...outs.map(([, d]) => d)]) t.release();
    binding.release();
    session.release();
  }
}

describe('FlashAttention / FlashAttentionGrad on empty shapes (CPU; the CUDA op returns the same: memsets)', () => {
  /** float16 inputs of [B, G, rep·T, D] queries and [B, G, S, D] keys (zeros), a mask of ones' dims. */
  const graphs = (B: number, G: number, rep: number, T: number, S: number, D: number) => {
    const N = rep * T;
    const z = (dims: number[], dtype: 'float16' | 'float32' = 'float16'): HostTensor =>
      ({
        dtype,
        dims,
        data: dtype === 'float32' ? new Float32Array(dims.reduce((a, b) => a * b, 1)) : new Uint16Array(dims.reduce((a, b) => a * b, 1)),
      }) as HostTensor;
    const fwd = new Graph('fa_empty');
    const [q, k, v, m] = [
      fwd.input('q', 'float16', [B, G, N, D]),
      fwd.input('k', 'float16', [B, G, S, D]),
      fwd.input('v', 'float16', [B, G, S, D]),
      fwd.input('m', 'float32', [1, 1, 1, 1, 1]),
    ];
    const [o, stats] = fwd.op('FlashAttention', [q, k, v, m], { scale: 0.5, rep }) as [Tensor, Tensor];
    fwd.output(o, 'o');
    fwd.output(stats, 'stats');
    const bwd = new Graph('fa_grad_empty');
    const ins = [
      bwd.input('dO', 'float16', [B, G, N, D]),
      bwd.input('q', 'float16', [B, G, N, D]),
      bwd.input('k', 'float16', [B, G, S, D]),
      bwd.input('v', 'float16', [B, G, S, D]),
      bwd.input('m', 'float32', [1, 1, 1, 1, 1]),
      bwd.input('o', 'float16', [B, G, N, D]),
      bwd.input('stats', 'float32', [B, G, N, 2]),
    ];
    bwd.op('FlashAttentionGrad', ins, { scale: 0.5, rep }).forEach((t, i) => bwd.output(t, ['dq', 'dk', 'dv', 'dsum'][i] as string));
    const fwdIn = { q: z([B, G, N, D]), k: z([B, G, S, D]), v: z([B, G, S, D]), m: z([1, 1, 1, 1, 1], 'float32') };
    return { fwd, bwd, fwdIn, bwdIn: { ...fwdIn, dO: z([B, G, N, D]), o: z([B, G, N, D]), stats: z([B, G, N, 2], 'float32') }, N };
  };
  const zeros = (n: number) => new Array<number>(n).fill(0);

  for (const [B, G, rep, T, S, D] of [
    [0, 2, 2, 3, 5, 8],
    [2, 0, 2, 3, 5, 8],
    [2, 2, 2, 0, 5, 8],
    [2, 2, 2, 3, 5, 0],
    [2, 2, 2, 3, 0, 8],
  ] as const) {
    it(`B ${B} G ${G} rep ${rep} T ${T} S ${S} D ${D}: every output written, zeros (stats, Dsum and gradients included)`, async () => {
      const { fwd, bwd, fwdIn, bwdIn, N } = graphs(B, G, rep, T, S, D);
      const rows = B * G * N;
      if (S === 0 && rows > 0) {
        // No key to attend to: the forward refuses (on both providers); the grad's gradients are 0.
        await expect(runPrefilled(fwd, fwdIn)).rejects.toThrow(/K and V must have at least one key \(S >= 1\)/);
      } else {
        expect(await runPrefilled(fwd, fwdIn)).toEqual({ o: zeros(rows * D), stats: zeros(2 * rows) });
      }
      expect(await runPrefilled(bwd, bwdIn)).toEqual({ dq: zeros(rows * D), dk: zeros(B * G * S * D), dv: zeros(B * G * S * D), dsum: zeros(rows) });
    });
  }
});

describe('FlashAttention shape and gradient rules', () => {
  const build = (mask: number[], rep = 2, dtypes: [string, string] = ['float16', 'float16']) => {
    const g = new Graph('fa');
    const q = g.input('q', dtypes[0] as 'float16', [2, 3, 10, 8]);
    const k = g.input('k', dtypes[1] as 'float16', [2, 3, 6, 8]);
    const v = g.input('v', 'float16', [2, 3, 6, 8]);
    const m = g.input('m', 'float32', mask);
    return { g, q, k, v, m, outs: g.op('FlashAttention', [q, k, v, m], { scale: 0.5, rep }) };
  };
  it('infers O and stats, the grad op Q, K, V and Dsum; refuses mismatched operands with a message naming them', () => {
    const { g, q, k, v, m, outs } = build([2, 1, 2, 5, 6]);
    expect(outs.map((t) => `${t.dtype}${t.shapeText}`)).toEqual(['float16[2, 3, 10, 8]', 'float32[2, 3, 10, 2]']);
    const grads = g.op('FlashAttentionGrad', [q, q, k, v, m, outs[0]!, outs[1]!], { scale: 0.5, rep: 2 });
    expect(grads.map((t) => `${t.dtype}${t.shapeText}`)).toEqual(['float16[2, 3, 10, 8]', 'float16[2, 3, 6, 8]', 'float16[2, 3, 6, 8]', 'float32[2, 3, 10]']);
    expect(() => build([2, 1, 1, 10, 6])).toThrow(/M must be float32 broadcastable to \[B, G, rep, T, S\] = \[2, 3, 2, 5, 6\].*got float32\[2, 1, 1, 10, 6\]/);
    expect(() => build([2, 1, 1, 5, 6], 3)).toThrow(/Q's N = 10 is not a multiple of rep 3/);
    expect(() => build([1, 1, 1, 5, 6], 2, ['float16', 'bfloat16'])).toThrow(/K must be float16/);
  });
  it('differentiates Q, K, V by FlashAttentionGrad; the mask and the stats output have no gradient', () => {
    const { g, q, k, v, outs } = build([1, 1, 1, 5, 6]);
    const loss = g.reduceSum(g.cast(outs[0]!, 'float32'), undefined, false);
    const d = grad(g, loss, [q, k, v]);
    const node = g.nodes.find((n) => n.op === 'FlashAttentionGrad')!;
    expect(d.map((t) => t.name)).toEqual(node.outputs.slice(0, 3));
    expect(node.attrs).toEqual({ rep: 2, scale: 0.5 });
    const s = build([1, 1, 1, 5, 6]);
    const viaStats = s.g.reduceSum(s.outs[1]!, undefined, false);
    expect(() => grad(s.g, viaStats, [s.q])).toThrow(/FlashAttention: its stats output has no gradient/);
    const w = new Graph('fa_mask');
    const mw = w.input('m', 'float32', [1, 1, 1, 5, 6]);
    const qw = w.input('q', 'float16', [2, 3, 10, 8]);
    const kw = w.input('k', 'float16', [2, 3, 6, 8]);
    const [o] = w.op('FlashAttention', [qw, kw, kw, w.mul(mw, w.scalar(2, 'float32'))], { rep: 2 });
    expect(() => grad(w, w.reduceSum(w.cast(o!, 'float32'), undefined, false), [mw])).toThrow(/FlashAttention: the mask has no gradient/);
  });
});

/** The forward graph of `objective` in `compute` (inputs declared as the step graphs declare them), not rewritten. */
function forwardGraph(objective: Objective, compute: 'float16' | 'float32'): Graph {
  const g = new Graph('forward');
  const view: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(objective.trainable)) view[n] = g.cast(g.input(n, s.dtype, s.shape), compute);
  const inp: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(objective.batch)) inp[n] = g.input(n, s.dtype, s.shape);
  g.output(objective.buildLoss(g, view, inp).loss, 'loss');
  return g;
}

/** 16-bit values of `g` whose last two dims are [T or rep·T, S]: the scores and probabilities the fused attention does not write. */
function scoreTensors(g: Graph, T: number, reps: readonly number[]): string[] {
  const names = new Set(g.nodes.flatMap((n) => n.outputs));
  return [...names].filter((n) => {
    const t = g.value(n);
    return (t.dtype === 'float16' || t.dtype === 'bfloat16') && t.rank >= 4 && t.shape.at(-1) === T && reps.some((r) => t.shape.at(-2) === r * T);
  });
}

const [Bt, Tt] = [2, 7];
/** head size 8: 1/√8 scales the scores (the op's scale attribute); the default tiny Llama's 4 scales q instead. */
const hd8 = tinyLlama({ hiddenSize: 32 });
const layers = hd8.numHiddenLayers;

describe('fuseFlashAttention on the decoder graph', () => {
  const sgd = graphOptimizer({ kind: 'sgd', lr: 1 });
  const step = (
    objective: Objective,
    fused: FusedParts,
    extra: { compute?: 'float16' | 'float32'; attentionHeadDims?: number[]; recompute?: Recompute } = {},
  ) =>
    buildStepGraphs(
      {
        objective,
        optimizer: sgd,
        clipNorm: null,
        compute: extra.compute ?? 'float16',
        lossScale: false,
        fused,
        ...(extra.attentionHeadDims ? { attentionHeadDims: extra.attentionHeadDims } : {}),
        ...(extra.recompute ? { recompute: extra.recompute } : {}),
      },
      1,
    ).fused!;
  const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;

  it('rewrites each layer (head size 4 and 8) and leaves no 16-bit [.., T, S] tensor in the step graph, also with recompute', () => {
    for (const config of [tinyLlama(), hd8]) {
      const { objective } = tinyObjective(Bt, Tt, 'float16', config);
      const rep = config.numAttentionHeads / config.numKeyValueHeads;
      const plain = step(objective, { optimizer: false, softmax: true });
      expect(scoreTensors(plain, Tt, [1, rep]).length).toBeGreaterThan(0); // the check sees them where they are
      for (const recompute of ['none', 'layers'] as const) {
        const g = step(objective, { optimizer: false, softmax: true, attention: true }, { recompute });
        expect(count(g, 'FlashAttentionGrad')).toBe(config.numHiddenLayers);
        // recompute 'layers': each layer's attention runs again in the backward
        expect(count(g, 'FlashAttention')).toBe(recompute === 'none' ? config.numHiddenLayers : 2 * config.numHiddenLayers);
        expect([count(g, 'MaskedSoftmax'), count(g, 'MaskedSoftmaxGrad'), count(g, 'MatMul')]).toEqual([0, 0, 0]);
        expect(scoreTensors(g, Tt, [1, rep])).toEqual([]);
        const attrs = g.nodes.filter((n) => n.op === 'FlashAttention').map((n) => n.attrs);
        expect(attrs[0]).toEqual({ rep, scale: config === hd8 ? Math.fround(1 / Math.sqrt(8)) : 1 });
      }
    }
  });

  it('counts one rewrite per layer on the forward graph; none in float32, none for other head sizes, none twice', () => {
    const f16 = forwardGraph(tinyObjective('batch', Tt, 'float16', hd8).objective, 'float16');
    expect(fuseMaskedSoftmax(f16)).toBe(layers);
    expect(fuseFlashAttention(f16, { headDims: [64, 128] })).toBe(0); // the CUDA kernel's sizes
    expect(fuseFlashAttention(f16, { headDims: [8] })).toBe(layers);
    expect(fuseFlashAttention(f16)).toBe(0);
    const f32 = forwardGraph(tinyObjective('batch', Tt, 'float32', hd8).objective, 'float32');
    expect(fuseMaskedSoftmax(f32)).toBe(0);
    expect(fuseFlashAttention(f32)).toBe(0);
    // The step graphs: the CUDA head sizes keep the MaskedSoftmax path for these heads.
    const { objective } = tinyObjective(Bt, Tt, 'float16', hd8);
    const cudaLike = step(objective, { optimizer: false, softmax: true, attention: true }, { attentionHeadDims: [64, 128] });
    expect([count(cudaLike, 'FlashAttention'), count(cudaLike, 'MaskedSoftmax')]).toEqual([0, layers]);
    const f32Step = step(tinyObjective(Bt, Tt, 'float32', hd8).objective, { optimizer: false, softmax: true, attention: true }, { compute: 'float32' });
    expect(count(f32Step, 'FlashAttention')).toBe(0);
  });

  it('attention without the fused softmax is a one-line input error naming fusedKernels.attention', async () => {
    const { objective, init } = tinyObjective(Bt, Tt, 'float16', hd8);
    expect(() => step(objective, { optimizer: false, softmax: false, attention: true })).toThrow(
      /^field 'fusedKernels\.attention': the fused attention needs the fused softmax \(fusedKernels\.softmax\)[^\n]*$/,
    );
    await expect(
      Trainer.create(
        {
          objective,
          optimizer: { kind: 'sgd', lr: 1 },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          device: cpu,
          precision: { compute: 'float16', lossScale: null },
          fusedKernels: { optimizer: true, softmax: false, attention: true },
        },
        { trainable: init, frozen: {} },
      ),
    ).rejects.toThrow(/^field 'fusedKernels\.attention': [^\n]*$/);
  });

  /** A logger that keeps its warnings' messages (and fields). */
  const warnings = () => {
    const warns: Array<{ obj: object; msg: string }> = [];
    const logger: Logger = {
      info() {},
      warn: (obj, msg) => warns.push({ obj, msg: msg ?? '' }),
      error() {},
      debug() {},
      child: () => logger,
    };
    return { warns, logger };
  };

  it('warns in one line, naming the head dim and the supported ones, when attention rewrites no layer (head dim 32 with CUDA headDims)', () => {
    const run = (hiddenSize: number) => {
      const { warns, logger } = warnings();
      const { objective } = tinyObjective(Bt, Tt, 'float16', tinyLlama({ hiddenSize })); // 4 heads: head dim hiddenSize / 4
      const g = buildStepGraphs(
        {
          objective,
          optimizer: sgd,
          clipNorm: null,
          compute: 'float16',
          lossScale: false,
          fused: { optimizer: false, softmax: true, attention: true },
          attentionHeadDims: [64, 128],
          logger,
        },
        1,
      ).fused!;
      return { warns, flash: count(g, 'FlashAttention') };
    };
    const hd32 = run(128);
    expect(hd32.flash).toBe(0);
    expect(hd32.warns.map((w) => w.msg)).toEqual([
      'fusedKernels.attention rewrote no attention layer (head dim 32; FlashAttention takes 64, 128 here): the attention stays MatMul, MaskedSoftmax, MatMul',
    ]);
    expect(hd32.warns[0]?.obj).toEqual({ headDims: [32], supported: [64, 128], compute: 'float16' });
    const hd64 = run(256);
    expect(hd64.flash).toBe(layers);
    expect(hd64.warns).toEqual([]);
  });

  it("the Trainer's logger gets that warning (float32 compute: no 16-bit attention), none when a layer is rewritten", () => {
    const warned = (compute: 'float16' | 'float32') => {
      const { warns, logger } = warnings();
      Trainer.stepGraphs({
        objective: tinyObjective(Bt, Tt, compute, hd8).objective,
        optimizer: { kind: 'sgd', lr: 1 },
        schedule: { kind: 'constant' },
        totalSteps: 1,
        device: cpu,
        precision: { compute, lossScale: null },
        fusedKernels: { optimizer: false, softmax: true, attention: true },
        logger,
      });
      return warns.map((w) => w.msg);
    };
    expect(warned('float32')).toEqual([
      'fusedKernels.attention rewrote no attention layer (the float32 graph has no 16-bit MaskedSoftmax attention to rewrite): the attention stays MatMul, MaskedSoftmax, MatMul',
    ]);
    expect(warned('float16')).toEqual([]);
  });
});

/** Trains `objective` for STEPS SGD steps; per step the loss and every gradient ((p before − p after) / lr). */
const STEPS = 3;
const LR = 0.1;
async function train(
  objective: Objective,
  init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> },
  batches: ReadonlyArray<Record<string, HostTensor>>,
  attention: boolean,
  recompute: Recompute = 'none',
  compute: 'float16' | 'float32' = 'float16',
): Promise<{ losses: number[]; grads: Array<Map<string, Float32Array>> }> {
  const t = await Trainer.create(
    {
      objective,
      optimizer: { kind: 'sgd', lr: LR },
      schedule: { kind: 'constant' },
      totalSteps: STEPS,
      clipNorm: null,
      precision: { compute, lossScale: null },
      device: cpu,
      fusedKernels: { optimizer: false, softmax: true, attention },
      recompute,
    },
    init,
  );
  try {
    const losses: number[] = [];
    const grads: Array<Map<string, Float32Array>> = [];
    let before = new Map(Object.entries(init.trainable).map(([n, h]) => [n, h.data as Float32Array]));
    for (const batch of batches) {
      losses.push((await t.step([batch])).loss);
      const after = new Map((await t.state()).trainable.map((p) => [p.name, p.data as Float32Array]));
      grads.push(new Map([...after].map(([n, p]) => [n, Float32Array.from(p, (v, j) => ((before.get(n)![j] as number) - v) / LR)])));
      before = after;
    }
    return { losses, grads };
  } finally {
    await t.release();
  }
}

/**
 * Fused attention vs the MaskedSoftmax path, both float16: the same float32 softmax with the probabilities
 * rounded to float16 once either way (the fused kernel's unnormalised, before P·V), the products summed in
 * another order: activations ~1 f16 ulp (2⁻¹¹) apart at rounding boundaries, through two layers, the loss
 * and the backward, 3 steps apart. Each float16 path's gradients land up to ~8e-3 normwise from the float32
 * run's (measured: fused 7.7e-3, MaskedSoftmax 6.3e-3, worst parameter and step), and the two paths as far
 * from each other (6.1e-3): float16 noise, not a bias of the fused kernel.
 */
const LOSS = { rtol: 1e-3, atol: 0 };
const GRAD = 1e-2;
const GRAD_VS_F32 = 1e-2;

type Run = Awaited<ReturnType<typeof train>>;
function expectLikeMaskedSoftmax(fused: Run, plain: Run, f32: Run): void {
  expect(fused.losses.every(Number.isFinite)).toBe(true);
  expect(fused.losses).toBeAllclose(plain.losses, LOSS);
  expect(fused.losses).toBeAllclose(f32.losses, LOSS);
  fused.grads.forEach((step, s) => {
    for (const [name, g] of step) {
      const [p, r] = [plain.grads[s]!.get(name)!, f32.grads[s]!.get(name)!];
      expect(Math.max(...Array.from(r, Math.abs)), `step ${s} ${name}: not trivially 0`).toBeGreaterThan(0);
      expect(normwise(g, p), `step ${s} ${name}: fused vs MaskedSoftmax`).toBeLessThan(GRAD);
      expect(normwise(g, r), `step ${s} ${name}: fused vs float32`).toBeLessThan(GRAD_VS_F32);
    }
  });
}

describe('a small Llama in float16 with the fused attention vs the MaskedSoftmax path (CPU)', () => {
  it('losses and every gradient over 3 SGD steps; recompute layers gives the same bits', async () => {
    // A symbolic batch dim: the rewritten attention's rows dim is then another symbol than the MatMul's it replaces.
    const [o16, o32] = [tinyObjective('batch', Tt, 'float16', hd8), tinyObjective('batch', Tt, 'float32', hd8)];
    const batches = Array.from({ length: STEPS }, () => tinyBatch(Bt, Tt)); // row 1 left-padded: its first queries see no key
    const weights = { trainable: o16.init, frozen: {} };
    const [fused, plain, f32, recomputed] = [
      await train(o16.objective, weights, batches, true),
      await train(o16.objective, weights, batches, false),
      await train(o32.objective, weights, batches, false, 'none', 'float32'),
      await train(o16.objective, weights, batches, true, 'layers'),
    ];
    expectLikeMaskedSoftmax(fused, plain, f32);
    expect(fused.losses[2]!).toBeLessThan(fused.losses[0]!);
    expect(recomputed.losses).toEqual(fused.losses);
    recomputed.grads.forEach((step, s) => {
      for (const [name, g] of step) expect(Array.from(g), `recomputed step ${s} ${name}`).toEqual(Array.from(fused.grads[s]!.get(name)!));
    });
  });

  it('LoRA with seeded dropout: losses and every adapter gradient over 3 SGD steps', async () => {
    const lora = { config: hd8, dropout: 0.25, seededB: true };
    const [o16, o32] = [tinyLoraObjective(Bt, Tt, 'float16', lora), tinyLoraObjective(Bt, Tt, 'float32', lora)];
    const r = Rng.fromSeed(12);
    const batches = Array.from({ length: STEPS }, (_, s) => {
      const ids = {
        dtype: 'int64',
        dims: [Bt, Tt],
        data: BigInt64Array.from({ length: Bt * Tt }, () => BigInt(3 + Math.floor(r.uniform() * (hd8.vocabSize - 3)))),
      } as HostTensor;
      return {
        ...tinyBatch(Bt, Tt),
        input_ids: ids,
        labels: ids,
        dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(11 + 1000 * s)) } as HostTensor,
      };
    });
    expectLikeMaskedSoftmax(
      await train(o16.objective, o16.init, batches, true),
      await train(o16.objective, o16.init, batches, false),
      await train(o32.objective, o32.init, batches, false, 'none', 'float32'),
    );
  });
});

describe("fusedKernels 'auto' / true per device kind (defaultFusedParts)", () => {
  it('turns FlashAttention and the fused RoPE on for CUDA only, every other part as on the CPU', () => {
    const cpu = defaultFusedParts('cpu');
    expect(cpu).toEqual({
      optimizer: true,
      softmax: true,
      rmsnorm: true,
      swiglu: true,
      dropout: true,
      crossEntropy: true,
      weightCopies: false,
      attention: false,
      rope: false,
      multiTensor: true,
    });
    expect(defaultFusedParts('cuda')).toEqual({ ...cpu, attention: true, rope: true });
  });
});
