// latent_sft.SwiGLU (graph.fuseSwiGlu) on the CPU: the kernels against their float32 reference in every
// dtype, then the rewritten gating and its backward (SwiGLUGrad) against the standard-op chain the
// decoder writes (Mul(Mul(gate, Sigmoid(gate)), up), differentiated by the op table) in float16 (ORT's
// CPU provider has no bfloat16 Sigmoid/Mul) and float32. The small Llama step with every fused kernel
// is in fused-softmax.test.ts.
import { Rng } from '@latent-sft/core';
import { Graph, fuseSwiGlu } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { expectLikeStandardOps, gradTestModel } from '../test/expect-fused.js';
import { floatValues, runFloat32, runOnce, swigluCase, swigluReference, worstRel } from './testing.js';

const cpu = { kind: 'cpu' } as const;
const [B, T, I] = [3, 7, 4099]; // 86,079 elements: two CPU chunks and a tail that is not a multiple of 4

describe('SwiGLU / SwiGLUGrad kernels vs their float32 reference (CPU)', () => {
  // std::exp vs Math.exp rounded to float32 may differ by one float32 ulp (2⁻²³ relative), which can move
  // a 16-bit result across a rounding boundary: one ulp of the dtype at most.
  for (const [dtype, ulp] of [
    ['float32', 2 ** -23],
    ['bfloat16', 2 ** -8],
    ['float16', 2 ** -11],
  ] as const) {
    it(`${dtype}: y, dgate, dup within one ulp of the reference, finite at |gate| = 100`, async () => {
      const c = swigluCase(dtype, [B, T, I], 3);
      const out = await runOnce(c.model, c.inputs, cpu);
      const ref = swigluReference(c.inputs);
      const got = (k: string) => floatValues(out[k] as HostTensor);
      expect(worstRel(got('y'), ref.y, false), 'y').toBeLessThanOrEqual(2 * ulp);
      expect(worstRel(got('dup'), ref.dup, false), 'dup').toBeLessThanOrEqual(2 * ulp);
      expect(worstRel(got('dgate'), ref.dgate, true), 'dgate').toBeLessThanOrEqual(4 * ulp);
      for (const k of ['y', 'dgate', 'dup']) expect(got(k).every(Number.isFinite), k).toBe(true);
      // SwiGLUPacked (gate and up as the two halves of one tensor, the generation step's form): y bit for bit.
      expect(Array.from((out['y_packed'] as HostTensor).data as ArrayLike<number>)).toEqual(Array.from((out['y'] as HostTensor).data as ArrayLike<number>));
      // silu(−100) = −0 · …, silu(100) = 100 · u: the extremes are exact.
      expect(got('y')[0]).toBeCloseTo(0, 12);
      expect(got('y')[8]).toBe(ref.y[8]);
    });
  }
});

type Mode = 'plain' | 'fused';
/** loss = Σ r ⊙ float32(gate·σ(gate)·up) with gate, up cast to dtype; outputs y, loss, dgate, dup. */
function swigluGraph(dtype: 'float16' | 'float32', mode: Mode): { model: Uint8Array; fused: number } {
  const g = new Graph('swiglu');
  const gIn = g.input('gate', 'float32', [B, T, I]);
  const uIn = g.input('up', 'float32', [B, T, I]);
  const r = g.input('r', 'float32', [B, T, I]);
  const [gate, up] = [g.cast(gIn, dtype), g.cast(uIn, dtype)];
  const y = g.mul(g.mul(gate, g.sigmoid(gate)), up);
  const yf = g.cast(y, 'float32');
  const loss = g.reduceSum(g.mul(yf, r), undefined, false);
  const yOut = g.identity(yf); // made before the rewrite: in float32, yf is the rewritten Mul's own output
  const fused = mode === 'fused' ? fuseSwiGlu(g) : 0;
  return { model: gradTestModel(g, loss, yOut, { gate: gIn, up: uIn }), fused };
}

function inputs(seed: number): Record<string, HostTensor> {
  const rng = Rng.fromSeed(seed);
  const n = B * T * I;
  const f = (s: number): HostTensor => ({ dtype: 'float32', dims: [B, T, I], data: Float32Array.from({ length: n }, () => s * rng.normal()) });
  return { gate: f(3), up: f(1), r: f(1) };
}

/**
 * float16: the standard chain rounds σ(g), g·σ(g) and y (and, backward, each of its seven products) to
 * f16, the fused op rounds the SiLU and the result once: y one f16 ulp (2⁻¹¹) apart at a rounding
 * boundary, the gradients a few f16 ulps normwise — the RMSNorm test's tolerances.
 */
const F16 = { y: { rtol: 2e-3, atol: 1e-3 }, grad: 4e-3 };
/**
 * float32: the same operations, the derivative as s·(1 + g·(1 − s)) instead of s + g·s·(1 − s), ~1e-7
 * relative; but ORT's CPU Sigmoid (MLAS) is a clamped rational approximation, good to ~1e-6 absolute, so
 * where σ(g) is tiny (g < −12) y differs by a few 1e-6 absolute.
 */
const F32 = { y: { rtol: 1e-5, atol: 1e-5 }, grad: 1e-5 };

describe('SwiGLU vs the standard-op gating it replaces (CPU)', () => {
  for (const [dtype, tol] of [
    ['float16', F16],
    ['float32', F32],
  ] as const) {
    it(`${dtype} (rewritten by fuseSwiGlu): output, loss, dGate and dUp`, async () => {
      const fused = swigluGraph(dtype, 'fused');
      const plain = swigluGraph(dtype, 'plain');
      expect(fused.fused).toBe(1);
      const feeds = inputs(4);
      const [a, b] = [await runFloat32(fused.model, feeds, cpu), await runFloat32(plain.model, feeds, cpu)];
      expectLikeStandardOps(a, b, tol, ['dup', 'dgate']);
    });
  }

  it('is not applied to a sigmoid of another tensor, a broadcast up, or when σ(gate) has another use', () => {
    const g = new Graph('x');
    const [a, b] = [g.input('a', 'float16', [2, 4]), g.input('b', 'float16', [2, 4])];
    g.output(g.mul(g.mul(a, g.sigmoid(b)), b), 'y1'); // σ of the other tensor
    g.output(g.mul(g.mul(a, g.sigmoid(a)), g.input('u', 'float16', [4])), 'y2'); // up broadcast
    const s = g.sigmoid(b);
    g.output(g.mul(g.mul(b, s), a), 'y3');
    g.output(g.identity(s), 's'); // σ(gate) used again
    expect(fuseSwiGlu(g)).toBe(0);
    const g2 = new Graph('y');
    const x = g2.input('x', 'float16', [2, 4]);
    g2.output(g2.mul(g2.input('u', 'float16', [2, 4]), g2.mul(g2.sigmoid(x), x)), 'y'); // operands swapped: matched
    expect(fuseSwiGlu(g2)).toBe(1);
  });

  it('bad input: one-line errors from the op table', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float16', [2, 4]);
    expect(() => g.op('SwiGLU', [x, g.input('u', 'float16', [2, 3])])).toThrow(/up must have the dtype and shape of gate \(float16\[2, ?4\]\)/);
    expect(() => g.op('SwiGLU', [x, g.input('u2', 'bfloat16', [2, 4])])).toThrow(/up must have the dtype and shape of gate/);
    expect(() => g.op('SwiGLU', [g.input('i', 'int32', [2]), g.input('j', 'int32', [2])], {})).toThrow(/gate must be float32, bfloat16 or float16/);
  });
});
