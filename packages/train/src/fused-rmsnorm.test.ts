// latent_sft.RMSNorm (graph.fuseRmsNorm) on the CPU: the rewritten RMSNorm and its backward (RMSNormGrad
// + the ReduceSum of its dW partials) against the standard-op chain the decoder writes (HF's
// LlamaRMSNorm: Cast → x² → ReduceMean → + ε → Sqrt → Div → Cast → · w), differentiated by the op
// table; in float16 (ORT's CPU provider has no bfloat16 Mul) and, built directly, float32. Rows span
// more than one CPU dW partial (32 rows each) and the last dim is odd.
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, fuseRmsNorm } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { expectLikeStandardOps, gradTestModel } from '../test/expect-fused.js';
import { runFloat32 } from './testing.js';

const cpu = { kind: 'cpu' } as const;
const [B, T, D] = [3, 15, 13]; // 45 rows: two CPU dW partials
const EPS = 1e-5;

type Mode = 'plain' | 'fused' | 'direct';
/** loss = Σ r ⊙ float32(rmsnorm(x) ⊙ w) with x, w cast to dtype; outputs y, loss, dx, dw. */
function normGraph(dtype: 'float16' | 'float32', mode: Mode): { model: Uint8Array; fused: number } {
  const g = new Graph('rms');
  const xIn = g.input('x', 'float32', [B, T, D]);
  const wIn = g.input('w', 'float32', [D]);
  const r = g.input('r', 'float32', [B, T, D]);
  const [x, w] = [g.cast(xIn, dtype), g.cast(wIn, dtype)];
  let y: Tensor;
  if (mode === 'direct') {
    y = g.op('RMSNorm', [x, w], { epsilon: EPS })[0] as Tensor;
  } else {
    const xf = g.cast(x, 'float32');
    const variance = g.reduceMean(g.mul(xf, xf), [-1]);
    y = g.mul(w, g.cast(g.div(xf, g.sqrt(g.add(variance, g.scalar(EPS, 'float32')))), dtype));
  }
  const yf = g.cast(y, 'float32');
  const loss = g.reduceSum(g.mul(yf, r), undefined, false);
  const fused = mode === 'fused' ? fuseRmsNorm(g) : 0;
  return { model: gradTestModel(g, loss, g.identity(yf), { x: xIn, w: wIn }), fused };
}

function inputs(seed: number): Record<string, HostTensor> {
  const rng = Rng.fromSeed(seed);
  const f = (dims: number[], fn: (i: number) => number): HostTensor => ({
    dtype: 'float32',
    dims,
    data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => fn(i)),
  });
  // Rows of very different scales (the normalization matters), weights around 1.
  return {
    x: f([B, T, D], (i) => (1 + (Math.floor(i / D) % 5) * 3) * rng.normal()),
    w: f([D], () => 1 + 0.3 * rng.normal()),
    r: f([B, T, D], () => rng.normal()),
  };
}

const run = (model: Uint8Array, feeds: Record<string, HostTensor>) => runFloat32(model, feeds, cpu);

/**
 * float16: y is rounded twice in both (n to f16, then w·n to f16); a value at a rounding boundary lands
 * one ulp (2⁻¹¹ relative) apart. The gradients: the standard chain rounds dy·w and each float32 → f16
 * step to f16 on the way back where the fused op stays in float32: a few f16 ulps normwise.
 */
const F16 = { y: { rtol: 2e-3, atol: 1e-3 }, grad: 4e-3 };
/** float32: the same operations in another order (1/√ then ·, sums in another order), ~1e-7 relative. */
const F32 = { y: { rtol: 1e-5, atol: 1e-6 }, grad: 1e-5 };

describe('RMSNorm vs the standard-op RMSNorm it replaces (CPU)', () => {
  for (const [dtype, mode, tol] of [
    ['float16', 'fused', F16],
    ['float32', 'direct', F32],
  ] as const) {
    it(`${dtype} (${mode === 'fused' ? 'rewritten by fuseRmsNorm' : 'built directly'}): output, loss, dX and dW`, async () => {
      const fused = normGraph(dtype, mode);
      const plain = normGraph(dtype, 'plain');
      if (mode === 'fused') expect(fused.fused).toBe(1);
      const feeds = inputs(4);
      const [a, b] = [await run(fused.model, feeds), await run(plain.model, feeds)];
      expectLikeStandardOps(a, b, tol, ['dx', 'dw']);
    });
  }

  it('is not applied when the float32 input has another use, or in float32 graphs', () => {
    const g = new Graph('x');
    const x = g.cast(g.input('x', 'float32', [2, 4]), 'float16');
    const w = g.cast(g.input('w', 'float32', [4]), 'float16');
    const xf = g.cast(x, 'float32');
    const y = g.mul(w, g.cast(g.div(xf, g.sqrt(g.add(g.reduceMean(g.mul(xf, xf), [-1]), g.scalar(EPS, 'float32')))), 'float16'));
    g.output(y, 'y');
    g.output(g.identity(xf), 'xf'); // second use of the float32 input
    expect(fuseRmsNorm(g)).toBe(0);
    const g2 = new Graph('y');
    const x2 = g2.input('x', 'float32', [2, 4]);
    g2.output(g2.mul(g2.input('w', 'float32', [4]), g2.div(x2, g2.sqrt(g2.add(g2.reduceMean(g2.mul(x2, x2), [-1]), g2.scalar(EPS, 'float32'))))), 'y');
    expect(fuseRmsNorm(g2)).toBe(0);
  });

  it('bad input: one-line errors from the op table', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float16', [2, 4]);
    expect(() => g.op('RMSNorm', [x, g.input('w', 'float16', [3])], { epsilon: EPS })).toThrow(/W must be float16\[4\]/);
    expect(() => g.op('RMSNorm', [x, g.input('w2', 'float16', [4])], { epsilon: 0 })).toThrow(/epsilon must be > 0/);
  });
});
