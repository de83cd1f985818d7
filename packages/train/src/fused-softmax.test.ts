// latent_sft.MaskedSoftmax (graph.fuseMaskedSoftmax) on the CPU: the rewritten attention softmax and its
// backward against the standard-op graph it replaces (Cast → [Mul scale] → Add mask → Softmax → Cast,
// differentiated by the op table), in float16 (ORT's CPU provider has no bfloat16 Softmax) and, built
// directly, float32; with a broadcast mask that blocks whole rows. Then a small Llama step graph in
// float16 both ways (every fused kernel: softmax, RMSNorm, SwiGLU, AdamW).
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, fuseMaskedSoftmax, grad, serialize } from '@latent-sft/graph';
import { MASK_MIN, tinyLlama } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { normwise, runFloat32 } from './testing.js';
import { tinyBatch, tinyObjective } from '../test/tiny-llama.js';
import { Trainer, buildStepGraphs, graphOptimizer } from './index.js';

const cpu = { kind: 'cpu' } as const;
const [B, H, T, S] = [2, 3, 5, 7];

type Mode = 'plain' | 'fused' | 'direct';
/** loss = Σ r ⊙ float32(softmax(scale·x + mask)) with x = cast(w, dtype); outputs probs, loss, dw. */
function softmaxGraph(dtype: 'float16' | 'float32', scale: number, mode: Mode): { model: Uint8Array; fused: number } {
  const g = new Graph('sm');
  const w = g.input('w', 'float32', [B, H, T, S]);
  const mask = g.input('mask', 'float32', [B, 1, T, S]);
  const r = g.input('r', 'float32', [B, H, T, S]);
  const x = g.cast(w, dtype);
  let probs: Tensor;
  if (mode === 'direct') {
    probs = g.op('MaskedSoftmax', [x, mask], { scale })[0] as Tensor;
  } else {
    const z0 = g.cast(x, 'float32');
    const z = scale === 1 ? z0 : g.mul(z0, g.scalar(scale, 'float32'));
    probs = g.cast(g.softmax(g.add(z, mask), -1), dtype);
  }
  const pf = g.cast(probs, 'float32');
  const loss = g.reduceSum(g.mul(pf, r), undefined, false);
  const fused = mode === 'fused' ? fuseMaskedSoftmax(g) : 0;
  const [dw] = grad(g, loss, [w]);
  g.output(g.identity(pf), 'probs');
  g.output(loss, 'loss');
  g.output(dw as Tensor, 'dw');
  g.prune();
  return { model: serialize(g).model, fused };
}

function inputs(seed: number): Record<string, HostTensor> {
  const rng = Rng.fromSeed(seed);
  const f = (dims: number[], fn: (i: number) => number): HostTensor => ({
    dtype: 'float32',
    dims,
    data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => fn(i)),
  });
  // Banded-causal (key s ≤ t + 2) for both batch rows; batch 1 also blocks keys 0..4, so its queries 0..2 see nothing.
  const mask = f([B, 1, T, S], (i) => {
    const b = Math.floor(i / (T * S)),
      t = Math.floor(i / S) % T,
      s = i % S;
    return s > t + 2 || (b === 1 && s <= 4) ? MASK_MIN : 0;
  });
  return { w: f([B, H, T, S], () => 3 * rng.normal()), mask, r: f([B, H, T, S], () => rng.normal()) };
}

const run = (model: Uint8Array, feeds: Record<string, HostTensor>) => runFloat32(model, feeds, cpu);

/** float16: both compute in float32 and round to float16 once; a value near a rounding boundary may land
 * one f16 ulp (2⁻¹¹ relative) apart, and the backward reads those rounded probabilities. */
const F16 = { rtol: 2e-3, atol: 1e-4 };
/** float32: exp/sum in another order, ~1e-7 relative. */
const F32 = { rtol: 1e-5, atol: 1e-7 };

describe('MaskedSoftmax vs the standard-op softmax it replaces (CPU)', () => {
  for (const [dtype, scale, mode, tol] of [
    ['float16', 1, 'fused', F16],
    ['float16', 0.125, 'fused', F16],
    ['float32', 0.3, 'direct', F32],
  ] as const) {
    it(`${dtype}, scale ${scale} (${mode === 'fused' ? 'rewritten by fuseMaskedSoftmax' : 'built directly'}): probabilities, loss, gradient`, async () => {
      const fused = softmaxGraph(dtype, scale, mode);
      const plain = softmaxGraph(dtype, scale, 'plain');
      if (mode === 'fused') expect(fused.fused).toBe(1);
      const feeds = inputs(3);
      const [a, b] = [await run(fused.model, feeds), await run(plain.model, feeds)];
      expect(a['probs']).toBeAllclose(b['probs']!, tol);
      expect(a['loss']).toBeAllclose(b['loss']!, tol);
      expect(a['dw']).toBeAllclose(b['dw']!, tol);
      // Fully blocked rows (batch 1, queries 0..2, every head) are uniform 1/S, as the standard op makes them.
      for (let h = 0; h < H; h++)
        for (let t = 0; t < 3; t++) {
          const row = a['probs']!.subarray(((H + h) * T + t) * S, ((H + h) * T + t + 1) * S);
          expect(row).toBeAllclose(new Float32Array(S).fill(1 / S), { rtol: 1e-3, atol: 0 });
        }
      expect(Math.max(...Array.from(b['dw']!, Math.abs))).toBeGreaterThan(1e-2); // not trivially 0
    });
  }

  it('is not applied when the float32 scores have another use, or in float32 graphs', () => {
    const g = new Graph('x');
    const x = g.cast(g.input('w', 'float32', [2, 4]), 'float16');
    const z = g.cast(x, 'float32');
    const p = g.cast(g.softmax(g.add(z, g.input('m', 'float32', [1, 4])), -1), 'float16');
    g.output(p, 'p');
    g.output(g.identity(z), 'z'); // second use of the float32 scores
    expect(fuseMaskedSoftmax(g)).toBe(0);
    const g2 = new Graph('y');
    g2.output(g2.softmax(g2.add(g2.input('w', 'float32', [2, 4]), g2.input('m', 'float32', [1, 4])), -1), 'p');
    expect(fuseMaskedSoftmax(g2)).toBe(0);
  });
});

/**
 * First-step gradients of the float16 step vs the float32 step: the standard ops and the fused kernels
 * both land ~2e-3 normwise from float32 (f16 rounding), and the fused ones are no further from it.
 */
const GRAD_VS_F32 = 4e-3;
const FUSED_OVER_PLAIN = 1.5;

describe('a small Llama step in float16 with and without the fused softmax, RMSNorm, SwiGLU and cross-entropy (CPU)', () => {
  it('the rewrite finds every layer; losses over 3 AdamW steps agree; gradients as close to float32 as the standard ops', async () => {
    const [Bt, Tt] = [2, 6];
    const { objective, init } = tinyObjective(Bt, Tt);
    const built = buildStepGraphs(
      { objective, optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }), clipNorm: 1, compute: 'float16', lossScale: false, fused: true },
      1,
    );
    expect(built.fused!.nodes.filter((n) => n.op === 'MaskedSoftmax').length).toBe(tinyLlama().numHiddenLayers);
    expect(built.fused!.nodes.filter((n) => n.op === 'MaskedSoftmaxGrad').length).toBe(tinyLlama().numHiddenLayers);
    expect(built.fused!.nodes.filter((n) => n.op === 'Softmax').length).toBe(0);
    expect(built.fused!.nodes.filter((n) => n.op === 'RMSNorm').length).toBe(2 * tinyLlama().numHiddenLayers + 1);
    expect(built.fused!.nodes.filter((n) => n.op === 'RMSNormGrad').length).toBe(2 * tinyLlama().numHiddenLayers + 1);
    expect(built.fused!.nodes.filter((n) => n.op === 'SwiGLU').length).toBe(tinyLlama().numHiddenLayers);
    expect(built.fused!.nodes.filter((n) => n.op === 'SwiGLUGrad').length).toBe(tinyLlama().numHiddenLayers);
    expect(built.fused!.nodes.filter((n) => n.op === 'Sigmoid').length).toBe(0);
    // The LM-head cross-entropy: one vocabulary chunk at the default width, no [tokens, vocab] log-softmax.
    expect(built.fused!.nodes.filter((n) => n.op === 'CEChunkStats').length).toBe(1);
    expect(built.fused!.nodes.filter((n) => n.op === 'CEChunkGrad').length).toBe(1);
    expect(built.fused!.nodes.filter((n) => n.op === 'LogSoftmax').length).toBe(0);
    const batch = tinyBatch(Bt, Tt);
    const losses = async (fusedKernels: boolean) => {
      const t = await Trainer.create(
        {
          objective,
          optimizer: { kind: 'adamw', lr: 1e-3 },
          schedule: { kind: 'constant' },
          totalSteps: 3,
          clipNorm: 1,
          precision: { compute: 'float16', lossScale: null },
          device: cpu,
          fusedKernels,
        },
        { trainable: init, frozen: {} },
      );
      const out: number[] = [];
      for (let s = 0; s < 3; s++) out.push((await t.step([batch])).loss);
      await t.release();
      return out;
    };
    const [a, b] = [await losses(true), await losses(false)];
    expect(a).toBeAllclose(b, { rtol: 1e-3, atol: 0 });
    expect(a[2]!).toBeLessThan(a[0]!);
    // Gradients: one SGD step of lr 1 moves each parameter by −grad.
    const grads = async (dtype: 'float16' | 'float32', fusedKernels: boolean) => {
      const o = tinyObjective(Bt, Tt, dtype).objective;
      const t = await Trainer.create(
        {
          objective: o,
          optimizer: { kind: 'sgd', lr: 1 },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          clipNorm: null,
          precision: { compute: dtype, lossScale: null },
          device: cpu,
          fusedKernels,
        },
        { trainable: init, frozen: {} },
      );
      await t.step([batch]);
      const st = await t.state();
      await t.release();
      return new Map(st.trainable.map((p) => [p.name, Float32Array.from(p.data as Float32Array, (v, j) => (init[p.name]!.data as Float32Array)[j]! - v)]));
    };
    const [ref, fused, plain] = [await grads('float32', false), await grads('float16', true), await grads('float16', false)];
    for (const [name, r] of ref) {
      const [ef, ep] = [normwise(fused.get(name)!, r), normwise(plain.get(name)!, r)];
      expect(ef, `${name}: fused vs float32`).toBeLessThan(GRAD_VS_F32);
      expect(ef, `${name}: fused ${ef} vs plain ${ep} (from float32)`).toBeLessThan(FUSED_OVER_PLAIN * ep);
    }
  });
});
