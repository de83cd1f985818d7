// The fused seeded dropout (graph.fuseSeededDropout → latent_sft.SeededDropout, ops/dropout.cc) on ORT CPU:
// 1. the op against the standard ops it replaces (int32 Add, Add, Mul, Less, Cast, Mul, Mul) on one
//    graph, float32 and float16, with signed zeros, infinities and NaN in x and tables that wrap around:
//    bit for bit;
// 2. a LoRA step of a tiny Llama with dropout (every module fused, forward and backward): losses, grad
//    norms, adapters and AdamW moments bit for bit those of the unfused step over 3 steps, and the fused
//    step graph keeps no int32 mask arithmetic.
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, f16BitsToNumber, fuseSeededDropout, serialize, typedFrom } from '@latent-sft/graph';
import {
  type LoraConfig,
  causalLmLoss,
  decoder,
  embed,
  initParameters,
  loraParameterShapes,
  paddingBias,
  parameterShapes,
  tinyLlama,
} from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { type Objective, Trainer, buildStepGraphs, graphOptimizer } from './index.js';
import { runOnce } from './testing.js';

const cpu = { kind: 'cpu' } as const;

/** y = x · (Cast(Less((a + b)·(c + d), threshold)) · scale) in the standard ops, as lora-graph.ts writes it. */
function dropoutGraph(dtype: 'float32' | 'float16', N: number, I: number, threshold: number, p: number, fused: boolean): Uint8Array {
  const g = new Graph('dropout_case');
  const x = g.input('x', dtype, [N, I]);
  const [a, b, c, d] = (['a', 'b', 'c', 'd'] as const).map((n, k) => g.input(n, 'int32', k % 2 === 0 ? [N, 1] : [1, I]));
  const keep = g.op1('Less', [g.mul(g.add(a!, b!), g.add(c!, d!)), g.scalar(threshold, 'int32')]);
  g.output(g.mul(x, g.mul(g.cast(keep, dtype), g.scalar(1 / (1 - p), dtype))), 'y');
  if (fused) expect(fuseSeededDropout(g)).toBe(1);
  g.prune();
  return serialize(g).model;
}

describe('SeededDropout against the standard ops', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    it(`${dtype}: bit for bit, special values and wrapping tables included`, async () => {
      const [N, I] = [37, 300];
      const r = Rng.fromSeed(5);
      const xs = Float32Array.from({ length: N * I }, (_, i) => (i % 97 === 0 ? [0, -0, Infinity, -Infinity, Number.NaN][(i / 97) % 5]! : 4 * r.normal()));
      const int32 = (n: number) => Int32Array.from({ length: n }, () => Math.floor(r.uniform() * 2 ** 32) - 2 ** 31);
      const inputs: Record<string, HostTensor> = {
        x: { dtype, dims: [N, I], data: typedFrom(dtype, xs) } as HostTensor,
        a: { dtype: 'int32', dims: [N, 1], data: int32(N) },
        b: { dtype: 'int32', dims: [1, I], data: int32(I) },
        c: { dtype: 'int32', dims: [N, 1], data: int32(N) },
        d: { dtype: 'int32', dims: [1, I], data: int32(I) },
      };
      const threshold = Math.round(0.9 * 2 ** 32) - 2 ** 31;
      const want = (await runOnce(dropoutGraph(dtype, N, I, threshold, 0.1, false), inputs, cpu)).y!;
      const got = (await runOnce(dropoutGraph(dtype, N, I, threshold, 0.1, true), inputs, cpu)).y!;
      const asBits = (t: HostTensor) => (dtype === 'float32' ? new Uint32Array((t.data as Float32Array).slice().buffer) : (t.data as Uint16Array));
      expect(Array.from(asBits(got))).toEqual(Array.from(asBits(want)));
      // the mask is neither all kept nor all dropped, and a dropped negative x gives −0 as the Mul does
      const y = Array.from(asBits(got), (v) => (dtype === 'float32' ? new Float32Array(new Uint32Array([v]).buffer)[0]! : f16BitsToNumber(v)));
      const dropped = y.filter((v, i) => v === 0 && xs[i] !== 0).length;
      expect(dropped / y.length).toBeGreaterThan(0.05);
      expect(dropped / y.length).toBeLessThan(0.15);
      expect(y.some((v, i) => Object.is(v, -0) && xs[i]! < 0)).toBe(true);
    });
  }
});

describe('a LoRA step with the fused dropout', () => {
  const c = tinyLlama();
  const LORA: LoraConfig = {
    r: 4,
    alpha: 8,
    dropout: 0.25,
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    bias: 'none',
    taskType: 'CAUSAL_LM',
  };
  const [B, T] = [2, 9];
  const f32 = (shape: readonly number[]) => ({ dtype: 'float32' as const, shape });
  const ids = { dtype: 'int64' as const, shape: [B, T] };
  const objective: Objective = {
    trainable: Object.fromEntries(loraParameterShapes(c, LORA).map((p) => [p.name, f32(p.shape)])),
    frozen: Object.fromEntries(parameterShapes(c).map((p) => [p.name, f32(p.shape)])),
    batch: { input_ids: ids, attention_mask: ids, position_ids: ids, labels: ids, dropout_seed: { dtype: 'int64', shape: [] } },
    buildLoss(g, trainable, inputs) {
      const t: Record<string, Tensor> = { ...trainable, ...inputs };
      const l = { lora: { config: LORA, tensors: t, dropoutSeed: t['dropout_seed']! } };
      const x = embed(g, c, t, t['input_ids']!, l);
      const dec = decoder(g, c, t, x, {
        bias: paddingBias(g, t['attention_mask']!, t['position_ids']!),
        positions: t['position_ids']!,
        maxPositions: 16,
        ...l,
      });
      return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
    },
  };
  const fused = (dropout: boolean) => ({ optimizer: false, softmax: false, rmsnorm: false, swiglu: false, crossEntropy: false, dropout });

  it('fuses every LoRA module, forward and backward, and leaves no int32 mask arithmetic', () => {
    const count = (dropout: boolean) => {
      const g = buildStepGraphs(
        { objective, optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-2 }), clipNorm: 1, compute: 'float32', lossScale: false, fused: fused(dropout) },
        1,
      ).fused!;
      const ops = g.nodes.map((n) => n.op);
      const int32Less = g.nodes.filter((n) => n.op === 'Less' && g.value(n.inputs[0] as string).dtype === 'int32').length;
      return { dropout: ops.filter((o) => o === 'SeededDropout').length, less: int32Less };
    };
    const modules = 7 * c.numHiddenLayers;
    expect(count(false)).toEqual({ dropout: 0, less: modules });
    // one forward per module, one backward per module whose input needs a gradient: all but layer 0's q, k, v
    // (their input is the normed frozen embedding)
    expect(count(true)).toEqual({ dropout: 2 * modules - 3, less: 0 });
  });

  it('trains bit for bit as the standard ops over 3 steps (losses, grad norms, adapters, moments)', async () => {
    const r = Rng.fromSeed(9);
    const host = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims: shape, data });
    const init = {
      trainable: Object.fromEntries(
        loraParameterShapes(c, LORA).map((p) => [
          p.name,
          host(
            p.shape,
            Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => 0.1 * r.normal()),
          ),
        ]),
      ),
      frozen: Object.fromEntries(initParameters(c, { seed: 3 }).map((p) => [p.name, host(p.shape, p.data)])),
    };
    const run = async (dropout: boolean) => {
      const t = await Trainer.create(
        {
          objective,
          optimizer: { kind: 'adamw', lr: 1e-2 },
          schedule: { kind: 'constant' },
          totalSteps: 3,
          clipNorm: 1,
          device: cpu,
          fusedKernels: fused(dropout),
        },
        init,
      );
      try {
        const out: number[] = [];
        for (let s = 0; s < 3; s++) {
          const q = Rng.fromSeed(50 + s);
          const i64 = (f: (i: number) => number): HostTensor => ({
            dtype: 'int64',
            dims: [B, T],
            data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(f(i))),
          });
          const tok = Array.from({ length: B * T }, () => 3 + Math.floor(q.uniform() * (c.vocabSize - 3)));
          const res = await t.step([
            {
              input_ids: i64((i) => tok[i]!),
              labels: i64((i) => tok[i]!),
              attention_mask: i64((i) => (i >= T && i % T < 2 ? 0 : 1)),
              position_ids: i64((i) => i % T),
              dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(11 + 1000 * s)) },
            },
          ]);
          out.push(res.loss, res.gradNorm);
        }
        const st = await t.state();
        return { out, state: [...st.trainable, ...st.optimizer].map((x) => [x.name, Array.from(new Uint32Array((x.data as Float32Array).slice().buffer))]) };
      } finally {
        await t.release();
      }
    };
    const [plain, withKernel] = [await run(false), await run(true)];
    expect(withKernel.out).toEqual(plain.out);
    expect(withKernel.state).toEqual(plain.state);
    expect(plain.out[0]).not.toEqual(plain.out[2]); // it trains
  });
});
