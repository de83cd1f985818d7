// Mixed precision on ORT CPU: fp32 master weights, fp16 forward (Cast, MatMul, Sub, Mul, ReduceMean
// in fp16), loss scaling by a `loss_scale` input, fp32 unscaled grads. Compared with the fp32 step.
import { Session } from '@latent-sft/runtime';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor, buildTrainStep, grad, serialize } from './index.js';

/** fp16 carries ~3 significant digits. */
const FP16_TOL = { atol: 2e-3, rtol: 2e-2 };

const build = (mixed: boolean) =>
  buildTrainStep({
    params: { w: { dtype: 'float32', shape: [4, 3] } },
    inputs: { x: { dtype: 'float32', shape: [5, 4] }, y: { dtype: 'float32', shape: [5, 3] } },
    buildLoss: (g, p, i) => {
      const dt = p.w!.dtype;
      const d = g.sub(g.matmul(g.cast(i.x!, dt), p.w as Tensor), g.cast(i.y!, dt));
      return g.reduceMean(g.mul(d, d), undefined, false);
    },
    ...(mixed ? { precision: { compute: 'float16' as const, lossScale: true } } : {}),
  });

describe('mixed precision', () => {
  it('fp16 forward with fp32 masters and loss scale matches the fp32 step', async () => {
    const w: HostTensor = { dtype: 'float32', dims: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 0.5) };
    const x: HostTensor = { dtype: 'float32', dims: [5, 4], data: Float32Array.from({ length: 20 }, (_, i) => Math.cos(i)) };
    const y: HostTensor = { dtype: 'float32', dims: [5, 3], data: Float32Array.from({ length: 15 }, (_, i) => (i % 3) - 1) };
    const mixed = build(true);
    expect(mixed.graph.inputs.map((t) => t.name)).toEqual(['w', 'x', 'y', 'loss_scale']);
    expect(mixed.graph.outputs.map((t) => t.dtype)).toEqual(['float32', 'float32']);
    await using sm = await Session.create(serialize(mixed.graph).model);
    await using sf = await Session.create(serialize(build(false).graph).model);
    const ref = await sf.run({ w, x, y });
    const out = await sm.run({ w, x, y, loss_scale: { dtype: 'float32', dims: [], data: Float32Array.from([1024]) } });
    expect(out.loss?.data).toBeAllclose(ref.loss!.data, FP16_TOL);
    expect(out['w.grad']?.data).toBeAllclose(ref['w.grad']!.data, FP16_TOL);
  });
});

describe('16-bit Gather gradient (an embedding)', () => {
  it('scatters into float32 zeros made as float32 (no Cast of a 16-bit zero table), with duplicate rows summed in float32', async () => {
    const g = new Graph('emb');
    const w = g.input('w', 'float32', [6, 2]);
    const ids = g.input('ids', 'int64', [4]);
    const w16 = g.cast(w, 'float16');
    const loss = g.cast(g.reduceSum(g.mul(g.gather(w16, ids, 0), g.cast(g.input('r', 'float32', [4, 2]), 'float16')), undefined, false), 'float32');
    const [dw] = grad(g, loss, [w]);
    g.output(loss, 'loss');
    g.output(dw as Tensor, 'dw');
    g.prune();
    const isZeros = (name: string) => {
      const p = g.producer(name);
      const z = p?.op === 'Expand' ? g.initializers.get(p.inputs[0] as string) : undefined;
      return z !== undefined && z.data.length === 1 && Number(z.data[0]) === 0;
    };
    const zeroCasts = g.nodes.filter((n) => n.op === 'Cast' && isZeros(n.inputs[0] as string));
    expect(zeroCasts).toEqual([]);
    await using s = await Session.create(serialize(g).model);
    const r = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const out = await s.run({
      w: { dtype: 'float32', dims: [6, 2], data: new Float32Array(12) },
      ids: { dtype: 'int64', dims: [4], data: BigInt64Array.from([1n, 3n, 1n, 5n]) },
      r: { dtype: 'float32', dims: [4, 2], data: r },
    });
    // Rows 1 (twice: 1+5, 2+6), 3 and 5 get r's rows; the others 0.
    expect(Array.from(out['dw']!.data as Float32Array)).toEqual([0, 0, 6, 8, 0, 0, 3, 4, 0, 0, 7, 8]);
  });
});
