// The fused seeded dropout (graph.fuseSeededDropout → latent_sft.SeededDropout, ops/dropout.cc) on ORT CPU:
// 1. the op against the standard ops it replaces (int32 Add, Add, Mul, Less, Cast, Mul, Mul) on one
//    graph, float32 and float16, with signed zeros, infinities and NaN in x and tables that wrap around:
//    bit for bit;
// 2. the op reading lora-graph.ts's per-forward tables in place (a column of the row table, a row of the
//    wider column table) against the same op on the sliced tables, and the fusion's look-through of the
//    Slices: exactly lora-graph.ts's Slices are folded, any other Slice stays an input;
// 3. latent_sft.HashWords (the dropout tables' words in one pass) against graph's hashWords in int64 ops, bit
//    for bit over seeds and stream offsets, and fuseHashWords: it rewrites hashWords with a constant count and
//    nothing that differs from it by one constant or has a computed count;
// 4. a LoRA step of a tiny Llama with dropout (every module fused, forward and backward): losses, grad
//    norms, adapters and AdamW moments bit for bit those of the unfused step over 3 steps, and the fused
//    step graph keeps no int32 mask arithmetic, no Slice of the tables, and one HashWords.
import { Rng } from '@latent-sft/core';
import { Graph, type Tensor, f16BitsToNumber, fuseHashWords, fuseSeededDropout, hashStreamOffset, hashWords, serialize, typedFrom } from '@latent-sft/graph';
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
import { hashWordsCase, runOnce, seededDropoutCase } from './testing.js';

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

const bitsOf = (t: HostTensor): number[] =>
  Array.from(t.dtype === 'float32' ? new Uint32Array((t.data as Float32Array).slice().buffer) : (t.data as Uint16Array));

describe('SeededDropout reading its tables in place', () => {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`${dtype}: a column of [N, W] and a row of [R, K > I] give the sliced tables' values bit for bit`, async () => {
      const c = seededDropoutCase(dtype, 37, 300, 4);
      const out = await runOnce(c.model, c.inputs, cpu);
      expect(bitsOf(out['y_tables']!)).toEqual(bitsOf(out['y']!));
      // A, B, C, D four different tables (widths 6 and 9, row lengths I + 5 and I + 11, other indices).
      expect(bitsOf(out['y_split']!)).toEqual(bitsOf(out['y']!));
      // ... and the case tells a mix-up apart: C read at A's column or with A's width, D read at B's row or with
      // B's row length, each gives other words than the right ones.
      const [r2, c2] = [c.inputs['rows2']!.data as Int32Array, c.inputs['cols2']!.data as Int32Array];
      const [N, I, K2] = [37, 300, 311];
      const col = (f: (n: number) => number) => Array.from({ length: N }, (_, n) => r2[f(n)]);
      const row = (f: (i: number) => number) => Array.from({ length: I }, (_, i) => c2[f(i)]);
      const right = [col((n) => n * 9 + 7), row((i) => K2 + i)];
      for (const wrong of [col((n) => n * 9 + 2), col((n) => n * 6 + 7)]) expect(wrong).not.toEqual(right[0]);
      for (const wrong of [row((i) => 2 * K2 + i), row((i) => I + 5 + i)]) expect(wrong).not.toEqual(right[1]);
      expect(right).toEqual([Array.from(c.inputs['c']!.data as Int32Array), Array.from(c.inputs['d']!.data as Int32Array)]);
      // the case is not degenerate: some but not all elements dropped
      const zeros = bitsOf(out['y']!).filter((b) => b === 0 || b === (dtype === 'float32' ? 0x80000000 : 0x8000)).length;
      expect(zeros / (37 * 300)).toBeGreaterThan(0.05);
      expect(zeros / (37 * 300)).toBeLessThan(0.15);
    });
  }

  /** x [N, I] dropout with a, c sliced from rows [N, W] and b, d from cols [R, K] by `slices` (starts, ends, axes, steps). */
  const slicedGraph = (N: number, I: number, K: number, slices: { a: number[][]; b: number[][]; c: number[][]; d: number[][] }) => {
    const g = new Graph('sliced_dropout');
    const x = g.input('x', 'float32', [N, I]);
    const rows = g.input('rows', 'int32', [N, 6]);
    const cols = g.input('cols', 'int32', [6, K]);
    const sl = (t: Tensor, [st, en, ax, sp]: number[][]) => g.slice(t, st!, en!, ax, sp);
    const [a, b, c, d] = [sl(rows, slices.a), sl(cols, slices.b), sl(rows, slices.c), sl(cols, slices.d)];
    const keep = g.op1('Less', [g.mul(g.add(a, b), g.add(c, d)), g.scalar(Math.round(0.9 * 2 ** 32) - 2 ** 31, 'int32')]);
    g.output(g.mul(x, g.cast(keep, 'float32')), 'y');
    return g;
  };
  const fuseAndRun = async (N: number, I: number, K: number, slices: Parameters<typeof slicedGraph>[3]) => {
    const r = Rng.fromSeed(6);
    const int32 = (n: number) => Int32Array.from({ length: n }, () => Math.floor(r.uniform() * 2 ** 32) - 2 ** 31);
    const inputs: Record<string, HostTensor> = {
      x: { dtype: 'float32', dims: [N, I], data: Float32Array.from({ length: N * I }, () => r.normal()) },
      rows: { dtype: 'int32', dims: [N, 6], data: int32(N * 6) },
      cols: { dtype: 'int32', dims: [6, K], data: int32(6 * K) },
    };
    const plain = slicedGraph(N, I, K, slices);
    const fused = slicedGraph(N, I, K, slices);
    expect(fuseSeededDropout(fused)).toBe(1);
    fused.prune();
    const node = fused.nodes.find((n) => n.op === 'SeededDropout')!;
    const want = (await runOnce(serialize(plain).model, inputs, cpu))['y']!;
    const got = (await runOnce(serialize(fused).model, inputs, cpu))['y']!;
    expect(bitsOf(got)).toEqual(bitsOf(want));
    return { node, slices: fused.nodes.filter((n) => n.op === 'Slice').length };
  };

  it("folds lora-graph.ts's Slices (stream 2: columns 4, 5 of rows; rows 4, 5 of cols, columns [0, I))", async () => {
    const [N, I, K] = [11, 30, 40];
    const { node, slices } = await fuseAndRun(N, I, K, {
      a: [[4], [5], [1]],
      b: [
        [4, 0],
        [5, I],
        [0, 1],
      ],
      c: [[5], [6], [1]],
      d: [
        [5, 0],
        [6, I],
        [0, 1],
      ],
    });
    expect(slices).toBe(0);
    expect(node.attrs).toMatchObject({ a_col: 4, b_row: 4, c_col: 5, d_row: 5 });
    expect(node.inputs.slice(1).map((n) => (n.startsWith('rows') ? 'rows' : n.startsWith('cols') ? 'cols' : n))).toEqual(['rows', 'cols', 'rows', 'cols']);
  });

  it('keeps any other Slice as the table (a step of 2, an explicit row range, columns not from 0)', async () => {
    const [N, I, K] = [11, 30, 70];
    const { node, slices } = await fuseAndRun(N, I, K, {
      a: [[4], [5], [1]],
      b: [
        [4, 0],
        [5, 2 * I],
        [0, 1],
        [1, 2],
      ],
      c: [
        [0, 2],
        [N, 3],
      ],
      d: [
        [5, 1],
        [6, I + 1],
        [0, 1],
      ],
    });
    // a folded; b (columns with step 2), c (rows [0, N) given explicitly: lora-graph.ts slices one axis only)
    // and d (columns [1, I + 1)) stay Slices read at index 0
    expect(slices).toBe(3);
    expect(node.attrs).toMatchObject({ a_col: 4, b_row: 0, c_col: 0, d_row: 0 });
  });
});

describe('HashWords', () => {
  const seeds = [0n, 1n, 11n, 2147483646n, 2147483647n, 2n ** 40n + 7n, 2n ** 62n];
  for (const [lo, hi] of [
    [0, 1],
    [2, 3],
    [hashStreamOffset(7), hashStreamOffset(8)],
  ] as const) {
    it(`the op is hashWords' int64 ops bit for bit (offsets ${lo}, ${hi}; ${seeds.length} seeds incl. 0, P − 1, P, 2^62)`, async () => {
      for (const seed of seeds) {
        const c = hashWordsCase(6 * 1001, 1001, seed, lo, hi);
        const out = await runOnce(c.model, c.inputs, cpu);
        const [want, got] = [out['want']!, out['got']!];
        expect(got.dims).toEqual([6, 1001]);
        expect(Array.from(got.data as Int32Array)).toEqual(Array.from(want.data as Int32Array));
        // words, not a constant: both signs, many distinct values
        const v = Array.from(got.data as Int32Array);
        expect(new Set(v).size).toBeGreaterThan(6000);
        expect(v.some((x) => x < 0) && v.some((x) => x > 0)).toBe(true);
      }
    });
  }

  /** hashWords with a constant (or computed) count, optionally with one round constant changed. */
  const wordsGraph = (opts: { computedCount?: boolean; tamper?: boolean }) => {
    const g = new Graph('words');
    const seed = g.input('seed', 'int64', []);
    const n = g.input('n', 'int64', []);
    const count = opts.computedCount ? g.mul(n, g.scalar(10, 'int64')) : g.scalar(40, 'int64');
    g.output(hashWords(g, count, 10, seed, 5, 6), 'w');
    if (opts.tamper) {
      const c = [...g.initializers.values()].find((t) => t.dtype === 'int64' && t.data.length === 1 && Number(t.data[0]) === 12345);
      expect(c).toBeDefined();
      (c!.data as BigInt64Array)[0] = 12346n;
    }
    return g;
  };
  it('fuseHashWords rewrites a constant-count hashWords only', () => {
    const fused = wordsGraph({});
    expect(fuseHashWords(fused)).toBe(1);
    fused.prune();
    expect(fused.nodes.map((n) => n.op)).toEqual(['HashWords', 'Identity']);
    expect(fused.nodes[0]!.attrs).toEqual({ count: 40, width: 10, offset_lo: 5, offset_hi: 6 });
    expect(fuseHashWords(wordsGraph({ computedCount: true }))).toBe(0);
    expect(fuseHashWords(wordsGraph({ tamper: true }))).toBe(0);
  });
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
      const tableSlices = g.nodes.filter((n) => n.op === 'Slice' && g.value(n.inputs[0] as string).dtype === 'int32').length;
      const columns = new Set(
        g.nodes.filter((n) => n.op === 'SeededDropout').map((n) => `${n.attrs['a_col']},${n.attrs['c_col']},${n.attrs['b_row']},${n.attrs['d_row']}`),
      );
      return {
        dropout: ops.filter((o) => o === 'SeededDropout').length,
        less: int32Less,
        tableSlices,
        streams: columns.size,
        hash: ops.filter((o) => o === 'HashWords').length,
      };
    };
    const modules = 7 * c.numHiddenLayers;
    expect(count(false)).toEqual({ dropout: 0, less: modules, tableSlices: 4 * modules, streams: 0, hash: 0 });
    // one forward per module, one backward per module whose input needs a gradient: all but layer 0's q, k, v
    // (their input is the normed frozen embedding); every module reads its own stream's columns / rows in place
    // and each table with a constant count is one HashWords: here both (the batch's dims are static, so the
    // row table's count N·W folds to a constant; with a symbolic batch only the column table's is)
    expect(count(true)).toEqual({ dropout: 2 * modules - 3, less: 0, tableSlices: 0, streams: modules, hash: 2 });
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
