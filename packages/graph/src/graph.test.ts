// Builder tests: shape/dtype inference, build-time errors naming op and shapes, folding of static
// shape arithmetic, pruning, the rewrites' node replacement and removal, serialization determinism and
// external-data weights loaded by ORT.
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { Graph, buildTrainStep, grad, saveModel, serialize, sgd } from './index.js';

describe('shape inference', () => {
  it('broadcasts, batches MatMul and keeps symbolic dims', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['B', 'T', 8]);
    const w = g.input('w', 'float32', [8, 4]);
    const y = g.matmul(x, w);
    expect(y.shape).toEqual(['B', 'T', 4]);
    expect(g.add(y, g.input('b', 'float32', [4])).shape).toEqual(['B', 'T', 4]);
    expect(g.reduceSum(y, [1], false).shape).toEqual(['B', 4]);
    expect(g.transpose(y, [2, 0, 1]).shape).toEqual([4, 'B', 'T']);
    expect(g.reshape(y, [0, -1]).shape[0]).toBe('B');
    expect(g.concat([y, y], 2).shape).toEqual(['B', 'T', 8]);
    expect(g.slice(y, [1], [3], [2]).shape).toEqual(['B', 'T', 2]);
    expect(g.gather(g.input('e', 'float32', [100, 16]), g.input('ids', 'int64', ['B', 'T'])).shape).toEqual(['B', 'T', 16]);
  });

  it('throws at build time naming the op and the input shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 5]);
    expect(() => g.matmul(a, b)).toThrow(/MatMul\(a:float32\[2, 3\], b:float32\[4, 5\]\): inner dims 3 and 4 differ/);
    expect(() => g.add(a, b)).toThrow(/do not broadcast/);
    expect(() => g.reshape(a, [4, -1])).toThrow(/cannot reshape/);
    expect(() => g.softmax(a, 2)).toThrow(/axis 2 out of range/);
    expect(() => g.add(a, g.input('c', 'float64', [2, 3]))).toThrow(/dtype mismatch/);
  });

  it('folds Shape → Gather → Concat on static dims into an initializer', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 3, 4]);
    const s = g.concat([g.gather(g.shapeOf(x), g.ints([0])), g.ints([-1])], 0);
    expect(g.nodes).toHaveLength(0);
    expect(g.knownInts(s)).toEqual([2, -1]);
    expect(g.reshape(x, s).shape).toEqual([2, 12]);
    const y = g.input('y', 'float32', ['N', 3]);
    g.shapeOf(y);
    expect(g.nodes.map((n) => n.op)).toEqual(['Reshape', 'Shape']);
  });

  it('drops exact Cast round trips (y → wider → y.dtype) but keeps lossy ones', () => {
    const g = new Graph();
    const m = g.input('m', 'float32', [4]);
    const bf = g.cast(m, 'bfloat16');
    const wide = g.op1('Cast', [bf], { to: 'float32' });
    expect(g.op1('Cast', [wide], { to: 'bfloat16' })).toBe(bf); // bf16 → f32 → bf16 is the identity
    expect(g.op1('Cast', [bf], { to: 'bfloat16' })).toBe(bf);
    const back = g.cast(bf, 'float32'); // f32 → bf16 → f32 rounds: kept
    expect(back).not.toBe(m);
    expect(g.nodes.map((n) => n.op)).toEqual(['Cast', 'Cast', 'Cast']);
    expect(g.cast(g.cast(g.input('h', 'float16', [2]), 'bfloat16'), 'float16').dtype).toBe('float16'); // f16 → bf16 is lossy: two Casts
    expect(g.nodes.length).toBe(5);
  });

  it('prune keeps only what the outputs need', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    g.exp(x);
    g.output(g.neg(x), 'y');
    g.prune();
    expect(g.nodes.map((n) => n.op)).toEqual(['Neg', 'Identity']);
  });

  it('mergeNodes: one node with the merged outputs by name, before their first reader; refuses an input produced later or a wrong shape', () => {
    const g = new Graph();
    const [a, b] = [g.input('a', 'float32', [2]), g.input('b', 'float32', [3])];
    const ca = g.cast(a, 'float16');
    const e = g.exp(g.input('c', 'float32', [2]));
    const cb = g.cast(b, 'float16');
    g.output(g.add(ca, g.cast(e, 'float16')), 'y');
    g.output(g.neg(cb), 'z');
    const casts = g.nodes.filter((n) => n.op === 'Cast' && (n.inputs[0] === 'a' || n.inputs[0] === 'b'));
    const m = g.mergeNodes(casts, 'CastMulti', [a, b], { to: 'float16' });
    expect(m.outputs).toEqual([ca.name, cb.name]);
    expect(g.nodes.map((n) => n.op)).toEqual(['Exp', 'Cast', 'CastMulti', 'Add', 'Identity', 'Neg', 'Identity']); // right before the Add, ca's first reader
    expect(g.producer(cb.name)).toBe(m);
    // an input produced after the first reader of a merged output
    const h = new Graph();
    const hx = h.input('x', 'float32', [2]);
    const c1 = h.cast(hx, 'float16');
    h.output(h.neg(c1), 'y');
    const late = h.exp(hx);
    const c2 = h.cast(late, 'float16');
    h.output(c2, 'z');
    const hc = h.nodes.filter((n) => n.op === 'Cast');
    expect(() => h.mergeNodes(hc, 'CastMulti', [hx, late], { to: 'float16' })).toThrow(
      /mergeNodes: input 'Exp_\d+_out' is produced after the first use of a merged output/,
    );
    // outputs that do not match the merged ones
    const w = new Graph();
    const wx = w.input('x', 'float32', [2]);
    w.output(w.cast(wx, 'float16'), 'y');
    w.output(w.cast(w.input('v', 'float32', [2]), 'float16'), 'z');
    const wc = w.nodes.filter((n) => n.op === 'Cast');
    expect(() => w.mergeNodes(wc, 'CastMulti', [wx, w.input('u', 'float32', [5])], { to: 'float16' })).toThrow(
      /mergeNodes: output 1 of CastMulti is float16\[5\]/,
    );
  });

  it('replaceNode takes a symbolic dim for another symbol only with looseSymbolicDims, never another size; removeNodes refuses a node still read', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2, 'n']);
    const flat = g.reshape(x, [2, -1]); // [2, a fresh symbol]
    const a = g.neg(x); // [2, n]
    g.output(g.exp(a), 'out');
    expect(flat.shape[1]).not.toBe('n');
    const [b] = g.replaceNode(g.producer(a.name)!, 'Neg', [flat], {}, { looseSymbolicDims: true });
    expect(g.nodes.find((n) => n.op === 'Exp')!.inputs).toEqual([b!.name]);
    expect(() => g.removeNodes([g.producer(flat.name)!])).toThrow(/removeNodes: 'Neg_\d+' still reads 'Reshape_\d+_out'/);
    const unused = g.producer(g.sqrt(x).name)!;
    g.removeNodes([unused]);
    expect(g.nodes.map((n) => n.op)).toEqual(['Reshape', 'Neg', 'Exp', 'Identity']);
    // Without looseSymbolicDims another symbol is refused (a graph of its own: a refused rewrite leaves its node behind).
    const st = new Graph();
    const sx = st.input('x', 'float32', [2, 'n']);
    const sa = st.neg(sx);
    st.output(st.exp(sa), 'out');
    expect(() => st.replaceNode(st.producer(sa.name)!, 'Neg', [st.reshape(sx, [2, -1])])).toThrow(
      /replaceNode: output 0 of Neg is float32\[2, .*\], '.*' is float32\[2, n\]/,
    );
    const h = new Graph();
    const hx = h.neg(h.input('x', 'float32', [2, 'n']));
    h.output(h.exp(hx), 'out');
    expect(() => h.replaceNode(h.producer(hx.name)!, 'Neg', [h.input('z', 'float32', [3, 'n'])], {}, { looseSymbolicDims: true })).toThrow(
      /replaceNode: output 0 of Neg is float32\[3, n\], '.*' is float32\[2, n\]/,
    );
  });
});

describe('autodiff bookkeeping', () => {
  it('sums contributions of a value used several times', async () => {
    const g = new Graph();
    const x = g.input('x', 'float64', [3]);
    const y = g.reduceSum(g.add(g.mul(x, x), g.exp(x)), undefined, false);
    g.output(grad(g, y, [x])[0]!, 'dx');
    g.prune();
    await using s = await Session.create(serialize(g).model);
    const xs = [0.5, -1, 2];
    const out = await s.run({ x: { dtype: 'float64', dims: [3], data: Float64Array.from(xs) } });
    expect(out.dx?.data).toBeAllclose(
      xs.map((v) => 2 * v + Math.exp(v)),
      { atol: 1e-12, rtol: 1e-12 },
    );
  });

  it('stopGradient: W detached in h·Wᵀ gets no gradient there, its other use keeps it; runs in ORT', async () => {
    // Latent-SFT shape: the decoder embeds ids with W (trained), the encoder's latent logits use W detached.
    const [V, D, N] = [4, 3, 3];
    const g = new Graph('stop');
    const w = g.input('w', 'float64', [V, D]);
    const h = g.input('h', 'float64', [N, D]);
    const c1 = g.input('c1', 'float64', [N, D]);
    const c2 = g.input('c2', 'float64', [N, V]);
    const ids = g.ints([1, 3, 1]);
    const wd = g.stopGradient(w);
    expect(wd.shape).toEqual([V, D]);
    const logits = g.matmul(h, g.transpose(wd, [1, 0]));
    const lossEmbed = g.reduceSum(g.mul(g.gather(w, ids), c1), undefined, false);
    const lossLatent = g.reduceSum(g.mul(logits, c2), undefined, false);
    const [dwBoth, dh] = grad(g, g.add(lossEmbed, lossLatent), [w, h]);
    const [dwLatent] = grad(g, lossLatent, [w]);
    g.output(logits, 'logits');
    g.output(dwBoth!, 'dw_both');
    g.output(dh!, 'dh');
    g.output(dwLatent!, 'dw_latent');
    g.prune();
    const stops = g.nodes.filter((n) => n.stopGradient === true);
    expect(stops).toHaveLength(1);
    expect(stops[0]?.op).toBe('Identity');
    expect(stops[0]?.name).toMatch(/^StopGradient_\d+$/);

    const seq = (n: number, a: number, b: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(a * i + b));
    const [wv, hv, c1v, c2v] = [seq(V * D, 0.7, 0.1), seq(N * D, 1.3, 0.2), seq(N * D, 0.9, 0.3), seq(N * V, 1.7, 0.4)];
    await using s = await Session.create(serialize(g).model);
    const out = await s.run({
      w: { dtype: 'float64', dims: [V, D], data: wv },
      h: { dtype: 'float64', dims: [N, D], data: hv },
      c1: { dtype: 'float64', dims: [N, D], data: c1v },
      c2: { dtype: 'float64', dims: [N, V], data: c2v },
    });
    const at = (a: Float64Array, cols: number, r: number, c: number): number => a[r * cols + c] as number;
    const idv = [1, 3, 1];
    const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
    // logits = h Wᵀ (the stop is numerically the identity).
    const logitsRef = range(N).flatMap((n) => range(V).map((v) => range(D).reduce((a, k) => a + at(hv, D, n, k) * at(wv, D, v, k), 0)));
    // dW: only the Gather path (c1 rows scatter-added at ids); dh = c2 W is intact.
    const dwRef = range(V).flatMap((v) => range(D).map((k) => range(N).reduce((a, n) => a + (idv[n] === v ? at(c1v, D, n, k) : 0), 0)));
    const dhRef = range(N).flatMap((n) => range(D).map((k) => range(V).reduce((a, v) => a + at(c2v, V, n, v) * at(wv, D, v, k), 0)));
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expect(out.logits?.data).toBeAllclose(logitsRef, tol);
    expect(out.dw_both?.data).toBeAllclose(dwRef, tol);
    expect(out.dh?.data).toBeAllclose(dhRef, tol);
    expect(Array.from(out.dw_latent?.data as Float64Array)).toEqual(new Array(V * D).fill(0));
  });

  it('rejects gradients through non-differentiable ops and integer wrt', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [3]);
    const i = g.input('i', 'int64', [3]);
    expect(() => grad(g, x, [i])).toThrow(/only float values/);
  });
});

describe('serialization', () => {
  const build = () =>
    buildTrainStep({
      params: { w: { dtype: 'float32', shape: [4, 3] } },
      inputs: { x: { dtype: 'float32', shape: ['N', 4] } },
      buildLoss: (g, p, i) => g.reduceMean(g.tanh(g.matmul(i.x!, p.w!)), undefined, false),
      optimizer: sgd(0.1),
    }).graph;

  it('is deterministic: same code, same bytes', () => {
    const a = serialize(build()).model;
    const b = serialize(build()).model;
    expect(a.length).toBeGreaterThan(100);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('writes external-data weights that ORT loads from a file path', async () => {
    const g = new Graph('ext');
    const x = g.input('x', 'float32', [2, 4]);
    const wv = Float32Array.from({ length: 16 }, (_, i) => i / 8 - 1);
    const w = g.initializer('w', { dtype: 'float32', dims: [4, 4], data: wv });
    const b = g.initializer('b', { dtype: 'float32', dims: [4], data: Float32Array.from([1, 2, 3, 4]) });
    g.output(g.add(g.matmul(x, w), b), 'y');
    const dir = mkdtempSync(join(tmpdir(), 'graph-ext-'));
    const res = saveModel(g, join(dir, 'm.onnx'), { externalData: { path: join(dir, 'm.weights'), thresholdBytes: 32 } });
    expect(res.external.map((c) => c.name)).toEqual(['w']);
    expect(statSync(join(dir, 'm.weights')).size).toBe(64);
    expect(readFileSync(join(dir, 'm.onnx')).includes(Buffer.from('m.weights'))).toBe(true);
    await using s = await Session.create(join(dir, 'm.onnx'));
    const xv = [1, 0, 0, 0, 0, 1, 1, 0];
    const out = await s.run({ x: { dtype: 'float32', dims: [2, 4], data: Float32Array.from(xv) } });
    const expected = [0, 1].flatMap((r) =>
      [0, 1, 2, 3].map((c) => [0, 1, 2, 3].reduce((acc, k) => acc + (xv[r * 4 + k] as number) * (wv[k * 4 + c] as number), 0) + c + 1),
    );
    expect(out.y?.data).toBeAllclose(expected, { atol: 1e-6, rtol: 1e-6 });
  });
});
