// The fused optimizer ops (domain latent_sft, kernels in @latent-sft/runtime's addon) on the CPU:
// AdamW against its exact float32 reference, SumSquares against float64, and the Trainer with the
// fused graph against the standard-op graph (bit for bit without clipping; with clipping the only
// difference is the norm's float64 accumulation). The CUDA kernels are checked against these CPU
// kernels on the GPU machine by tools/bench/src/fused-check.ts.
import { Graph, type Tensor, serialize } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { adamwMomentDtype } from '@latent-sft/graph';
import {
  ADAMW_MULTI_TENSORS,
  adamwGraph,
  adamwInputs,
  adamwMultiCase,
  castMultiCase,
  adamwReference,
  floatValues,
  runAdamWInPlace,
  runOnce,
  sumSquaresCase,
  sumSquaresReference,
} from './testing.js';
import { f32, linearObjective, mlpBatch, mlpData, mlpInit, mlpObjective, normals } from '../test/objectives.js';
import { type Objective, type OptimizerConfig, Trainer, buildStepGraphs, graphOptimizer } from './index.js';
import { globalNormFusedGraph } from './graph-optim.js';
import { inPlaceHazard } from './in-place.js';

const cpu = { kind: 'cpu' } as const;
/** Fused vs standard-op trainer with clipping: the clip coefficient differs by the norm's accumulation
 * (float64 vs float32), ~1e-7 relative, and AdamW's m/√v amplifies it little over 6 steps. */
const CLIPPED = { rtol: 1e-5, atol: 1e-8 };

describe('latent_sft.AdamW on the CPU', () => {
  for (const gdt of ['float32', 'bfloat16', 'float16'] as const) {
    it(`equals the float32 reference bit for bit (gradient ${gdt}, 1,003 elements)`, async () => {
      const inp = adamwInputs(1003, gdt, 7);
      const out = await runOnce(adamwGraph(1003, gdt), inp, cpu);
      const ref = adamwReference(inp);
      expect(out['p_new']!.data).toEqual(ref.p);
      expect(out['m_new']!.data).toEqual(ref.m);
      expect(out['v_new']!.data).toEqual(ref.v);
      // The update moved every parameter (the reference is not trivially the input).
      expect(Array.from(ref.p).filter((x, i) => x === (inp['p']!.data as Float32Array)[i]).length).toBe(0);
    });
  }
  for (const pdt of ['bfloat16', 'float16'] as const) {
    for (const gdt of ['float32', pdt] as const) {
      it(`${pdt} parameters, ${adamwMomentDtype(pdt)} moments (gradient ${gdt}): the float32 reference rounded once, bit for bit, also in place`, async () => {
        const n = (1 << 16) + 7; // two CPU chunks and a tail
        const inp = adamwInputs(n, gdt, 9, pdt);
        const out = await runOnce(adamwGraph(n, gdt, pdt), inp, cpu);
        const ref = adamwReference(inp);
        for (const k of ['p', 'm', 'v'] as const) {
          expect(out[`${k}_new`]!.dtype, k).toBe(k === 'p' ? pdt : adamwMomentDtype(pdt));
          expect(Float32Array.from(floatValues(out[`${k}_new`]!)), k).toEqual(ref[k]);
        }
        // Rounding to 16 bits did not swallow the update: most parameters moved.
        const p0 = floatValues(inp['p']!);
        expect(Array.from(ref.p).filter((x, i) => x !== p0[i]).length).toBeGreaterThan(n / 2);
        const inPlace = await runAdamWInPlace(inp, gdt, cpu);
        for (const k of ['p', 'm', 'v'] as const) expect(inPlace[k], `${k} in place`).toEqual(ref[k]);
      });
    }
  }
  it('splits work into 65,536-element chunks without changing values (200,003 elements)', async () => {
    const inp = adamwInputs(200_003, 'bfloat16', 8);
    const out = await runOnce(adamwGraph(200_003, 'bfloat16'), inp, cpu);
    expect(out['p_new']!.data).toEqual(adamwReference(inp).p);
  });
});

describe('latent_sft.AdamWMulti on the CPU', () => {
  for (const coef of [0.7, Number.NaN]) {
    it(`${ADAMW_MULTI_TENSORS.length} tensors of mixed sizes and dtypes: bit for bit AdamW on each (coef ${coef})`, async () => {
      const c = adamwMultiCase(11, coef);
      const out = await runOnce(c.model, c.inputs, cpu);
      ADAMW_MULTI_TENSORS.forEach(([n, , pdt], i) => {
        for (const k of ['p', 'm', 'v']) {
          const [multi, single] = [out[`multi_${k}_${i}`]!, out[`single_${k}_${i}`]!];
          expect(multi.dtype).toBe(k === 'p' ? pdt : adamwMomentDtype(pdt));
          expect(multi.data.length).toBe(n);
          expect(multi.data, `${k}_${i}`).toEqual(single.data);
          // the update moved p (coef 0.7) or left it bit for bit (coef NaN: the skip)
          if (k === 'p' && Number.isNaN(coef)) expect(multi.data).toEqual(c.inputs[`p_${i}`]!.data);
          if (k === 'p' && !Number.isNaN(coef)) expect(multi.data).not.toEqual(c.inputs[`p_${i}`]!.data);
        }
      });
    });
  }
});

describe('latent_sft.CastMulti on the CPU', () => {
  for (const to of ['bfloat16', 'float16'] as const) {
    it(`float32 → ${to}: bit for bit ORT's Cast (ties, ±0, ±∞, NaN, subnormals, overflow; 3 tensors, 2 CPU chunks)`, async () => {
      const c = castMultiCase(to, 4);
      const out = await runOnce(c.model, c.inputs, cpu);
      for (let i = 0; i < 3; i++) {
        expect(out[`multi_${i}`]!.dtype).toBe(to);
        expect(out[`multi_${i}`]!.data.length).toBe(c.inputs[`x${i}`]!.data.length);
        expect(Array.from(out[`multi_${i}`]!.data as Uint16Array), `tensor ${i}`).toEqual(Array.from(out[`cast_${i}`]!.data as Uint16Array));
      }
      expect(new Set(out['multi_1']!.data as Uint16Array).size).toBeGreaterThan(10000); // not a constant
    });
  }

  it('fuseMultiTensorCast (CUDA step graphs: multiTensorCast): one CastMulti for every master, no Cast of a master, in place still safe', () => {
    const opts = {
      objective: bf16Linear(6, 3),
      optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }),
      clipNorm: 1.0,
      compute: 'bfloat16' as const,
      lossScale: false,
      fused: { optimizer: true, softmax: true },
    };
    const plain = buildStepGraphs(opts, 1).fused!;
    const cuda = buildStepGraphs({ ...opts, multiTensorCast: true }, 1).fused!;
    const castsOf = (g: typeof plain) => g.nodes.filter((n) => n.op === 'Cast' && ['W', 'b'].includes(n.inputs[0] as string));
    expect(castsOf(plain).length).toBe(2);
    expect(castsOf(cuda).length).toBe(0);
    const multi = cuda.nodes.filter((n) => n.op === 'CastMulti');
    expect(multi.length).toBe(1);
    const plainCasts = plain.nodes.filter(
      (n) => n.op === 'Cast' && plain.inputs.some((i) => i.name === n.inputs[0]) && plain.value(n.inputs[0]!).dtype === 'float32',
    );
    expect(multi[0]!.outputs).toEqual(plainCasts.flatMap((n) => n.outputs));
    expect(multi[0]!.inputs.slice(0, 2)).toEqual(['W', 'b']);
    // before every reader of its outputs
    const at = cuda.nodes.indexOf(multi[0]!);
    for (const o of multi[0]!.outputs) expect(cuda.nodes.findIndex((n) => n.inputs.includes(o))).toBeGreaterThan(at);
    expect(cuda.nodes.length).toBe(plain.nodes.length - (multi[0]!.inputs.length - 1));
    const pairs = ['W', 'b'].flatMap((n) => [
      { input: n, output: `${n}.new` },
      { input: `m.${n}`, output: `m.${n}.new` },
      { input: `v.${n}`, output: `v.${n}.new` },
    ]);
    expect(inPlaceHazard(cuda, pairs)).toBe('');
  });
});

describe('latent_sft.SumSquares on the CPU', () => {
  it('mixed dtypes: equals the float64 sum rounded once', async () => {
    const c = sumSquaresCase(
      [
        { dtype: 'float32', dims: [37] },
        { dtype: 'bfloat16', dims: [64, 5] },
        { dtype: 'float16', dims: [3] },
      ],
      5,
    );
    const out = await runOnce(c.model, c.inputs, cpu);
    expect(out['y']!.dims).toEqual([]);
    expect(Array.from(out['y']!.data as Float32Array)).toEqual([sumSquaresReference(c.inputs)]);
  });
  it('300,000 elements (several summation chunks): within float32 rounding of the float64 sum', async () => {
    const c = sumSquaresCase(
      [
        { dtype: 'float32', dims: [300, 1000] },
        { dtype: 'bfloat16', dims: [7] },
      ],
      6,
    );
    const out = await runOnce(c.model, c.inputs, cpu);
    expect(out['y']!.data).toBeAllclose([sumSquaresReference(c.inputs)], { rtol: 1e-7, atol: 0 });
  });
});

/** linearObjective in bf16 (graph building only): its weight gradients reach the optimizer as Cast(bf16 → f32). */
function bf16Linear(D: number, O: number): Objective {
  const base = linearObjective(D, O);
  return {
    ...base,
    buildLoss(g, p, i) {
      const x = g.cast(i['x'] as Tensor, 'bfloat16');
      const d = g.sub(g.add(g.matmul(x, p['W'] as Tensor), p['b'] as Tensor), g.cast(i['y'] as Tensor, 'bfloat16'));
      return { loss: g.reduceMean(g.mul(d, d), undefined, false) };
    },
  };
}

async function trajectories(o: {
  objective: Objective;
  init: Record<string, HostTensor>;
  batches: Array<Record<string, HostTensor>>;
  optimizer: OptimizerConfig;
  clipNorm: number | null;
  compute?: 'float32' | 'float16';
  gradAccum?: number;
}) {
  const run = async (fusedKernels: boolean) => {
    const trainer = await Trainer.create(
      {
        objective: o.objective,
        optimizer: o.optimizer,
        schedule: { kind: 'linear', warmupSteps: 2, totalSteps: 10 },
        totalSteps: 10,
        clipNorm: o.clipNorm,
        gradAccum: o.gradAccum ?? 1,
        precision: { compute: o.compute ?? 'float32', lossScale: null },
        device: cpu,
        fusedKernels,
      },
      { trainable: o.init, frozen: {} },
    );
    try {
      const norms: number[] = [];
      for (let i = 0; i < o.batches.length; i += o.gradAccum ?? 1) norms.push((await trainer.step(o.batches.slice(i, i + (o.gradAccum ?? 1)))).gradNorm);
      const s = await trainer.state();
      return { norms, tensors: [...s.trainable, ...s.optimizer] };
    } finally {
      await trainer.release();
    }
  };
  return { fused: await run(true), plain: await run(false) };
}

describe('Trainer: fused AdamW graph vs the standard-op graph (CPU)', () => {
  const data = mlpData(64);
  const mlpBatches = Array.from({ length: 6 }, (_, s) =>
    mlpBatch(
      data,
      Array.from({ length: 16 }, (_, i) => (s * 16 + i * 5) % 64),
    ),
  );
  const adamw: OptimizerConfig = { kind: 'adamw', lr: 0.02, weightDecay: 0.1 };

  it('float32, no clipping: parameters and m/v bit for bit after 6 steps', async () => {
    const r = await trajectories({ objective: mlpObjective(16), init: mlpInit(16), batches: mlpBatches, optimizer: adamw, clipNorm: null });
    expect(r.fused.tensors.map((t) => t.name)).toEqual(r.plain.tensors.map((t) => t.name));
    r.fused.tensors.forEach((t, i) => expect(t.data, t.name).toEqual(r.plain.tensors[i]!.data));
    expect(r.fused.norms).toBeAllclose(r.plain.norms, { rtol: 1e-6, atol: 0 });
  });

  it('float16 compute without loss scaling (the fused op reads the fp16 weight gradients), no clipping: bit for bit', async () => {
    const D = 6,
      O = 3;
    const init = { W: f32([D, O], normals(1, D * O, 0.3)), b: f32([O], normals(2, O, 0.3)) };
    const batches = Array.from({ length: 5 }, (_, s) => ({ x: f32([8, D], normals(100 + s, 8 * D)), y: f32([8, O], normals(200 + s, 8 * O)) }));
    // (ORT's CPU provider has no bfloat16 Sub; the narrowing is the same for both 16-bit types.)
    const r = await trajectories({ objective: linearObjective(D, O, 'float16'), init, batches, optimizer: adamw, clipNorm: null, compute: 'float16' });
    expect(r.fused.norms.every((x) => x > 0)).toBe(true);
    r.fused.tensors.forEach((t, i) => expect(t.data, t.name).toEqual(r.plain.tensors[i]!.data));
  });

  it('float32, clip 0.05 (active every step), gradient accumulation over 2: within the norm accumulation difference', async () => {
    const r = await trajectories({ objective: mlpObjective(16), init: mlpInit(16), batches: mlpBatches, optimizer: adamw, clipNorm: 0.05, gradAccum: 2 });
    expect(Math.min(...r.plain.norms)).toBeGreaterThan(0.05);
    expect(r.fused.norms).toBeAllclose(r.plain.norms, { rtol: 1e-6, atol: 0 });
    r.fused.tensors.forEach((t, i) => expect(t.data, t.name).toBeAllclose(r.plain.tensors[i]!.data, CLIPPED));
  });

  it('the fused step graph: one AdamW per parameter (multiTensor off), one SumSquares, no float32 copies of bf16 grads, no Identity outputs', () => {
    const names = ['W', 'b'];
    const opts = {
      objective: bf16Linear(6, 3),
      optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }),
      clipNorm: 1.0,
      compute: 'bfloat16' as const,
      lossScale: false,
    };
    // Without the 16-bit weight copies (AdamWCopy): weight-copies.test.ts.
    const fused = buildStepGraphs({ ...opts, fused: { optimizer: true, softmax: true, weightCopies: false, multiTensor: false } }, 1).fused!;
    const plain = buildStepGraphs(opts, 1).fused!;
    const count = (g: typeof fused, op: string) => g.nodes.filter((n) => n.op === op).length;
    expect(count(fused, 'AdamW')).toBe(names.length);
    expect(count(fused, 'SumSquares')).toBe(1);
    expect(count(fused, 'ReduceSumSquare')).toBe(0);
    expect(count(plain, 'ReduceSumSquare')).toBe(names.length);
    const adamwNodes = fused.nodes.filter((n) => n.op === 'AdamW');
    for (const n of adamwNodes) expect(fused.value(n.inputs[1]!).dtype).toBe('bfloat16'); // W's gradient; b's too (bias add in bf16)
    expect(adamwNodes.flatMap((n) => n.outputs)).toEqual(names.flatMap((n) => [`${n}.new`, `m.${n}.new`, `v.${n}.new`]));
    expect(fused.nodes.filter((n) => n.op === 'Identity' && n.outputs.some((o) => o.endsWith('.new')))).toEqual([]);
    expect(count(fused, 'Cast')).toBeLessThan(count(plain, 'Cast'));
  });

  it('multiTensor (default with the optimizer): one AdamWMulti with every parameter, the same outputs by name, in place', () => {
    const opts = {
      objective: bf16Linear(6, 3),
      optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }),
      clipNorm: 1.0,
      compute: 'bfloat16' as const,
      lossScale: false,
    };
    const single = buildStepGraphs({ ...opts, fused: { optimizer: true, softmax: true, multiTensor: false } }, 1).fused!;
    const multi = buildStepGraphs({ ...opts, fused: { optimizer: true, softmax: true } }, 1).fused!;
    const adamw = single.nodes.filter((n) => n.op === 'AdamW');
    const merged = multi.nodes.filter((n) => n.op === 'AdamWMulti');
    expect(adamw.length).toBe(2);
    expect(merged.length).toBe(1);
    expect(multi.nodes.filter((n) => n.op === 'AdamW').length).toBe(0);
    expect(multi.nodes.length).toBe(single.nodes.length - 1);
    // the scalars once, then each parameter's p, g, m, v; the outputs the single nodes' in order
    expect(merged[0]!.inputs).toEqual([...adamw[0]!.inputs.slice(4), ...adamw.flatMap((n) => n.inputs.slice(0, 4))]);
    expect(merged[0]!.outputs).toEqual(adamw.flatMap((n) => n.outputs));
    expect(merged[0]!.attrs).toEqual(adamw[0]!.attrs);
    expect(multi.outputs.map((o) => o.name)).toEqual(single.outputs.map((o) => o.name));
    const pairs = ['W', 'b'].flatMap((n) => [
      { input: n, output: `${n}.new` },
      { input: `m.${n}`, output: `m.${n}.new` },
      { input: `v.${n}`, output: `v.${n}.new` },
    ]);
    expect(inPlaceHazard(multi, pairs)).toBe('');
    // without weight decay the decay input is a constant 1 per parameter: still one node
    const noDecay = buildStepGraphs(
      { ...opts, optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3, weightDecay: 0 }), fused: { optimizer: true, softmax: true } },
      1,
    ).fused!;
    expect(noDecay.nodes.filter((n) => n.op === 'AdamWMulti').length).toBe(1);
    expect(noDecay.nodes.filter((n) => n.op === 'AdamW').length).toBe(0);
  });

  it('multiTensor: the Trainer trains bit for bit as with one AdamW per parameter (bf16 moments with 16-bit parameters too)', async () => {
    const D = 6,
      O = 3;
    const init = { W: f32([D, O], normals(1, D * O, 0.3)), b: f32([O], normals(2, O, 0.3)) };
    const batches = Array.from({ length: 4 }, (_, s) => ({ x: f32([8, D], normals(100 + s, 8 * D)), y: f32([8, O], normals(200 + s, 8 * O)) }));
    for (const params of ['float32', 'float16'] as const) {
      const run = async (multiTensor: boolean) => {
        const t = await Trainer.create(
          {
            objective: linearObjective(D, O, 'float16'),
            optimizer: adamw,
            schedule: { kind: 'constant' },
            totalSteps: 4,
            clipNorm: 0.5,
            precision: { compute: 'float16', lossScale: null, params },
            device: cpu,
            fusedKernels: { optimizer: true, softmax: true, multiTensor },
          },
          { trainable: init, frozen: {} },
        );
        try {
          expect(t.stateMode.inPlace).toBe(true);
          const losses: number[] = [];
          for (const b of batches) losses.push((await t.step([b])).loss);
          const st = await t.state();
          return { losses, tensors: [...st.trainable, ...st.optimizer] };
        } finally {
          await t.release();
        }
      };
      const [a, b] = [await run(true), await run(false)];
      expect(a.losses, params).toEqual(b.losses);
      expect(a.tensors.map((t) => t.name)).toEqual(b.tensors.map((t) => t.name));
      a.tensors.forEach((t, i) => expect(t.data, `${params} ${t.name}`).toEqual(b.tensors[i]!.data));
    }
  });

  it('SGD keeps the standard-op update under fusedKernels: true; a bad value is a one-line error naming the field', async () => {
    const t = await Trainer.create(
      {
        objective: mlpObjective(4),
        optimizer: { kind: 'sgd', lr: 0.1 },
        schedule: { kind: 'constant' },
        totalSteps: 1,
        device: cpu,
        fusedKernels: true,
      },
      { trainable: mlpInit(4), frozen: {} },
    );
    expect(t.fusedKernels).toEqual({
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
    await t.release();
    await expect(
      Trainer.create(
        {
          objective: mlpObjective(4),
          optimizer: { kind: 'sgd', lr: 0.1 },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          device: cpu,
          fusedKernels: 'yes' as unknown as boolean,
        },
        { trainable: mlpInit(4), frozen: {} },
      ),
    ).rejects.toThrow(
      /fusedKernels.*expected true, false, 'auto' or \{ optimizer, softmax, rmsnorm\?, swiglu\?, dropout\?, crossEntropy\?, weightCopies\?, attention\?, rope\?, multiTensor\? \}/,
    );
  });
});

describe('globalNormFusedGraph: the clip coefficient as the skip signal of the fused AdamW (CPU)', () => {
  /** norm and coef of x [4] with clip `maxNorm`, the loss in the guard or not. */
  const coefOf = async (x: number[], loss: number, maxNorm: number | null, guarded: boolean) => {
    const g = new Graph('guard');
    const xs = g.input('x', 'float32', [4]);
    const l = g.input('loss', 'float32', []);
    const { norm, coef } = globalNormFusedGraph(g, [xs], maxNorm, guarded ? [l] : []);
    g.output(norm, 'norm');
    g.output(coef, 'coef');
    const out = await runOnce(serialize(g).model, { x: f32([4], x), loss: { dtype: 'float32', dims: [], data: Float32Array.of(loss) } }, cpu);
    return [out['norm']!.data[0] as number, out['coef']!.data[0] as number];
  };

  it('finite norm and loss: clip_grad_norm_’s coefficient exactly (min(1, max / (norm + 1e-6)); 1 without clipping)', async () => {
    const fr = Math.fround;
    expect(await coefOf([3, 4, 0, 0], 2.5, 1, true)).toEqual([5, fr(1 / fr(5 + fr(1e-6)))]);
    expect(await coefOf([3, 4, 0, 0], 2.5, 10, true)).toEqual([5, 1]);
    expect(await coefOf([3, 4, 0, 0], 2.5, null, true)).toEqual([5, 1]);
  });

  it('NaN when the norm is not finite (inf or NaN gradient) or the loss is not finite, with and without clipping', async () => {
    for (const maxNorm of [1, null]) {
      expect((await coefOf([3, Number.POSITIVE_INFINITY, 0, 0], 2.5, maxNorm, true))[1]).toBeNaN();
      expect((await coefOf([3, Number.NaN, 0, 0], 2.5, maxNorm, false))[1]).toBeNaN();
      expect((await coefOf([3, 4, 0, 0], Number.NaN, maxNorm, true))[1]).toBeNaN();
      expect((await coefOf([3, 4, 0, 0], Number.NEGATIVE_INFINITY, maxNorm, true))[1]).toBeNaN();
      expect((await coefOf([3, 4, 0, 0], Number.NEGATIVE_INFINITY, maxNorm, false))[1]).toBe(
        maxNorm === null ? 1 : Math.fround(1 / Math.fround(5 + Math.fround(1e-6))),
      );
    }
  });
});
