// The cheaper backward formulations (performance work after the H100 profile): the cross-entropy
// backward as one ScatterElements into eʸ·(−u) (LogSoftmax rule), bfloat16 leading-axis gradient sums as
// ones·X MatMuls (unbroadcast), ReduceSumSquare. Values on the ORT CPU EP against hand computations and
// the formulations they replace; structure checked on the graphs.
import { Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { Graph, crossEntropy, grad, serialize } from './index.js';
import { sumLeadingAxes } from './autodiff.js';

const F32 = { atol: 1e-6, rtol: 1e-5 };

describe('cross-entropy backward', () => {
  const [N, V] = [6, 5];
  const logits = Float32Array.from({ length: N * V }, (_, i) => Math.sin(1.3 * i) * 3);
  const labels = [2, -100, 4, 0, -100, 1]; // two ignored rows

  function build(fused: boolean): Graph {
    const g = new Graph('ce');
    const x = g.input('x', 'float32', [N, V]);
    const y = g.input('y', 'int64', [N]);
    const loss = g.mul(crossEntropy(g, x, y), g.input('s', 'float32', [])); // upstream ≠ 1
    let dx: ReturnType<typeof grad>[number];
    if (fused) dx = grad(g, loss, [x])[0]!;
    else {
      // The general LogSoftmax rule by hand: dx = d − eʸ Σ d, d = scatter of the picked cotangent.
      const logp = g.logSoftmax(x, 1);
      const valid = g.op1('Not', [g.equal(y, g.scalar(-100, 'int64'))]);
      const w = g.cast(valid, 'float32');
      const u = g.div(g.mul(g.neg(w), g.input('s2', 'float32', [])), g.reduceSum(w, [0], false));
      const idx = g.unsqueeze(g.where(valid, y, g.scalar(0, 'int64')), [1]);
      const d = g.op1('ScatterElements', [g.zerosLike(logp), idx, g.unsqueeze(u, [1])], { axis: 1, reduction: 'add' });
      dx = g.sub(d, g.mul(g.exp(logp), g.reduceSum(d, [1], true)));
    }
    g.output(loss, 'loss');
    g.output(dx, 'dx');
    g.prune();
    return g;
  }

  it('is one ScatterElements-add into eʸ·(−u): no zeros, ReduceSum or Sub over [N, V]', () => {
    const g = build(true);
    const big = (name: string) => g.value(name).shape.join(',') === `${N},${V}`;
    const ops = g.nodes.filter((n) => n.outputs.some(big) || n.inputs.some((i) => i !== '' && big(i))).map((n) => n.op);
    expect(ops.sort()).toEqual(['Exp', 'GatherElements', 'Identity', 'LogSoftmax', 'Mul', 'ScatterElements']); // Identity: output dx
  });

  it('matches (softmax − onehot)·s/count with ignored rows zero, and the general rule bit for bit', async () => {
    const s = 1.7;
    const feeds = {
      x: { dtype: 'float32' as const, dims: [N, V], data: logits },
      y: { dtype: 'int64' as const, dims: [N], data: BigInt64Array.from(labels.map(BigInt)) },
      s: { dtype: 'float32' as const, dims: [], data: Float32Array.from([s]) },
    };
    await using fused = await Session.create(serialize(build(true)).model);
    await using general = await Session.create(serialize(build(false)).model);
    const a = await fused.run(feeds);
    const b = await general.run({ ...feeds, s2: feeds.s });
    const count = labels.filter((l) => l !== -100).length;
    const want: number[] = [];
    let loss = 0;
    for (let r = 0; r < N; r++) {
      const row = Array.from(logits.subarray(r * V, (r + 1) * V));
      const m = Math.max(...row);
      const z = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
      const l = labels[r] as number;
      if (l !== -100) loss += (m + Math.log(z) - (row[l] as number)) / count;
      for (let k = 0; k < V; k++) want.push(l === -100 ? 0 : ((Math.exp((row[k] as number) - m) / z - (k === l ? 1 : 0)) * s) / count);
    }
    expect(a.loss!.data).toBeAllclose([loss * s], F32);
    expect(a.dx!.data).toBeAllclose(want, F32);
    for (const r of [1, 4]) expect(Array.from((a.dx!.data as Float32Array).subarray(r * V, (r + 1) * V)).every((v) => v === 0)).toBe(true);
    expect(Array.from(a.dx!.data as Float32Array)).toEqual(Array.from(b.dx!.data as Float32Array));
  });
});

describe('top-k picked log-probs backward (k per row, as the phase-2 KL)', () => {
  const [N, V, K] = [4, 7, 3];
  const logits = Float32Array.from({ length: N * V }, (_, i) => Math.cos(0.7 * i) * 2.5);
  const idx = [0, 3, 6, 2, 2, 5, 1, 4, 1, 6, 0, 3]; // rows 1 and 2 pick an id twice
  const w = Float32Array.from({ length: N * K }, (_, i) => 0.1 + 0.07 * i);

  function build(fused: boolean): Graph {
    const g = new Graph('topk');
    const x = g.input('x', 'float32', [N, V]);
    const ids = g.input('idx', 'int64', [N, K]);
    const weights = g.input('w', 'float32', [N, K]);
    const logp = g.logSoftmax(x, 1);
    const loss = g.reduceSum(g.mul(weights, g.op1('GatherElements', [logp, ids], { axis: 1 })), [0, 1], false);
    let dx: ReturnType<typeof grad>[number];
    if (fused) dx = grad(g, loss, [x])[0]!;
    else {
      const d = g.op1('ScatterElements', [g.zerosLike(logp), ids, weights], { axis: 1, reduction: 'add' });
      dx = g.sub(d, g.mul(g.exp(logp), g.reduceSum(d, [1], true)));
    }
    g.output(loss, 'loss');
    g.output(dx, 'dx');
    g.prune();
    return g;
  }

  it('is one ScatterElements-add into eʸ·(−Σ_k u): no zeros, ReduceSum or Sub over [N, V]', () => {
    const g = build(true);
    const big = (name: string) => g.value(name).shape.join(',') === `${N},${V}`;
    const ops = g.nodes.filter((n) => n.outputs.some(big) || n.inputs.some((i) => i !== '' && big(i))).map((n) => n.op);
    expect(ops.sort()).toEqual(['Exp', 'GatherElements', 'Identity', 'LogSoftmax', 'Mul', 'ScatterElements']);
  });

  it('matches Σ_k w·(onehot_k − softmax) by hand and the general rule, duplicate ids added', async () => {
    const feeds = {
      x: { dtype: 'float32' as const, dims: [N, V], data: logits },
      idx: { dtype: 'int64' as const, dims: [N, K], data: BigInt64Array.from(idx.map(BigInt)) },
      w: { dtype: 'float32' as const, dims: [N, K], data: w },
    };
    await using fused = await Session.create(serialize(build(true)).model);
    await using general = await Session.create(serialize(build(false)).model);
    const a = await fused.run(feeds);
    const b = await general.run(feeds);
    const want: number[] = [];
    for (let r = 0; r < N; r++) {
      const row = Array.from(logits.subarray(r * V, (r + 1) * V));
      const m = Math.max(...row);
      const z = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
      let sw = 0;
      for (let k = 0; k < K; k++) sw += w[r * K + k] as number;
      for (let c = 0; c < V; c++) {
        let hit = 0;
        for (let k = 0; k < K; k++) if (idx[r * K + k] === c) hit += w[r * K + k] as number;
        want.push(hit - (sw * Math.exp((row[c] as number) - m)) / z);
      }
    }
    expect(a.dx!.data).toBeAllclose(want, F32);
    expect(a.dx!.data).toBeAllclose(b.dx!.data, F32);
  });
});

describe('sum over leading axes as ones · X', () => {
  it('equals ReduceSum over the same axes (float32 on CPU, static and symbolic rows)', async () => {
    const g = new Graph('lead');
    const x = g.input('x', 'float32', ['b', 3, 4, 5]);
    const xs = g.input('xs', 'float32', [2, 3, 4, 5]);
    g.output(g.reshape(sumLeadingAxes(g, x, 2), [4, 5]), 'mm');
    g.output(g.reshape(sumLeadingAxes(g, xs, 1), [3, 4, 5]), 'mm1');
    g.output(g.reduceSum(x, [0, 1], false), 'rs');
    g.output(g.reduceSum(xs, [0], false), 'rs1');
    await using s = await Session.create(serialize(g).model);
    const data = Float32Array.from({ length: 120 }, (_, i) => Math.cos(0.7 * i) * (1 + (i % 7)));
    const out = await s.run({ x: { dtype: 'float32', dims: [2, 3, 4, 5], data }, xs: { dtype: 'float32', dims: [2, 3, 4, 5], data } });
    expect(out.mm!.data).toBeAllclose(out.rs!.data, F32);
    expect(out.mm1!.data).toBeAllclose(out.rs1!.data, F32);
  });

  it('bfloat16 weight gradients (RMSNorm-style broadcast Mul) use a MatMul, other dtypes ReduceSum', () => {
    for (const dtype of ['bfloat16', 'float32', 'float16'] as const) {
      const g = new Graph('w');
      const w = g.input('w', dtype, [8]);
      const x = g.input('x', dtype, ['n', 8]);
      const [dw] = grad(g, g.reduceSum(g.mul(w, x), undefined, false), [w]);
      g.output(dw!, 'dw');
      g.prune();
      const ops = g.nodes.map((n) => n.op);
      expect([dtype, ops.includes('MatMul'), ops.filter((o) => o === 'ReduceSum').length]).toEqual(dtype === 'bfloat16' ? [dtype, true, 0] : [dtype, false, 1]); // the forward sum is pruned (loss not an output)
      expect(dw!.shape).toEqual([8]);
    }
  });
});

describe('ReduceSumSquare', () => {
  it('value and gradient 2·x·dy (float64 on CPU)', async () => {
    const g = new Graph('rss');
    const x = g.input('x', 'float64', [2, 3]);
    const y = g.reduceSumSquare(x, [1], false);
    const c = g.input('c', 'float64', [2]);
    const [dx] = grad(g, g.reduceSum(g.mul(y, c), undefined, false), [x]);
    g.output(y, 'y');
    g.output(dx!, 'dx');
    g.prune();
    await using s = await Session.create(serialize(g).model);
    const xs = [0.5, -1, 2, 3, -0.25, 1.5];
    const out = await s.run({
      x: { dtype: 'float64', dims: [2, 3], data: Float64Array.from(xs) },
      c: { dtype: 'float64', dims: [2], data: Float64Array.from([2, -3]) },
    });
    expect(out.y!.data).toBeAllclose([0.25 + 1 + 4, 9 + 0.0625 + 2.25], { atol: 1e-15, rtol: 1e-15 });
    expect(out.dx!.data).toBeAllclose(
      xs.map((v, i) => 2 * v * (i < 3 ? 2 : -3)),
      { atol: 1e-15, rtol: 1e-15 },
    );
  });
});
