// How fast ORT's CUDA Gemm runs the training steps' matrix products (issues 18 and 20), beside
// bench_torch.py's `--which gemm` (torch.matmul on the same shapes, same dtype) in the same lease: if ORT's
// kernels are slower than PyTorch's on the same products, no graph change closes the step's gap.
// Method (slope): each shape is two graphs, one of R1 and one of R2 Gemm nodes on the same inputs (distinct
// outputs, run one after another), each run `runs` times (interleaved, after warm-up runs), host wall time
// per session run t(R1), t(R2) (the median over the runs). A session run costs a fixed part (the run call,
// binding, launch and the sync at its end) plus one part per node, so the per-product time is the slope
// (t(R2) − t(R1)) / (R2 − R1), which bench_torch.py's back-to-back torch.matmul calls (CUDA events, no
// per-run cost) are compared with; the intercept t(R1) − R1 · slope is the per-run fixed cost. (Session 10's
// probe divided one graph's run time by its 16 nodes, so its small products carried 1/16 of the run's
// fixed cost.) The slope is what one more node costs ORT: the kernel, or the host's launch of it where that
// is the longer. The inputs are filled with small seeded values. Shapes: the 1B step at 4,096 tokens
// (forward NT with the weights [out, in], input gradient NN, weight gradient TN, the LoRA r 64 factors) and
// the 7B phase-2 step at 1,328 tokens. Prints "BENCH {...}" lines: `us` per product (the slope) and TFLOP/s,
// `run_overhead_us` (the intercept), `t_r1_us` / `t_r2_us` (per run), `method: 'slope'`.
// --op matmul: the same products as ONNX MatMul with the operands laid out untransposed (A [M, K], B [K, N]):
// whether ORT's MatMul kernel does better than its Gemm on them (the decoder would then store Wᵀ).
// Usage: node gemm-probe.mjs [--device cuda|cpu] [--dtype bfloat16|float16|float32] [--runs 20] [--only name,...] [--op gemm,matmul]
import { parseArgs } from 'node:util';
import { Graph, serialize, typedFrom } from '@latent-sft/graph';
import { DeviceSession, type DType, type DeviceTensor } from '@latent-sft/runtime';
import { Rng } from '@latent-sft/core';

/** [name, M, N, K, transA, transB]: C[M, N] = op(A)·op(B), A [M, K] (transA: [K, M]), B [K, N] (transB: [N, K]). */
export const GEMM_SHAPES: ReadonlyArray<readonly [string, number, number, number, 0 | 1, 0 | 1]> = [
  ['1b.q_proj.fwd', 4096, 2048, 2048, 0, 1],
  ['1b.k_proj.fwd', 4096, 512, 2048, 0, 1],
  ['1b.up_proj.fwd', 4096, 8192, 2048, 0, 1],
  ['1b.down_proj.fwd', 4096, 2048, 8192, 0, 1],
  ['1b.up_proj.dx', 4096, 2048, 8192, 0, 0],
  ['1b.up_proj.dw', 8192, 2048, 4096, 1, 0],
  ['1b.lora_a.fwd', 4096, 64, 2048, 0, 1],
  ['1b.lora_b.fwd', 4096, 2048, 64, 0, 1],
  ['1b.lora_a.dw', 64, 2048, 4096, 1, 0],
  ['7b.q_proj.fwd', 1328, 3584, 3584, 0, 1],
  ['7b.up_proj.fwd', 1328, 18944, 3584, 0, 1],
  ['7b.down_proj.fwd', 1328, 3584, 18944, 0, 1],
  ['7b.up_proj.dx', 1328, 3584, 18944, 0, 0],
];
/**
 * The node counts of a shape's two graphs: far enough apart that the difference of their run times is
 * many products' worth (32 here) against the noise of a run; the two graphs' 48 outputs of [M, N] (3 GiB
 * at the largest shape, 1B up_proj in bf16) fit the GPU.
 */
const R1 = 8;
const R2 = 40;

const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    dtype: { type: 'string', default: 'bfloat16' },
    runs: { type: 'string', default: '20' },
    only: { type: 'string', default: '' },
    op: { type: 'string', default: 'gemm' },
  },
});
const ops = values.op.split(',');
for (const o of ops) if (o !== 'gemm' && o !== 'matmul') throw new Error(`--op: expected gemm and/or matmul, got '${o}'`);
if (!['bfloat16', 'float16', 'float32'].includes(values.dtype)) throw new Error(`--dtype: expected bfloat16, float16 or float32, got '${values.dtype}'`);
const dtype = values.dtype as 'bfloat16' | 'float16' | 'float32';
const device = values.device === 'cpu' ? ({ kind: 'cpu' } as const) : ({ kind: 'cuda', deviceId: 0 } as const);
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got '${values.runs}'`);
const only = values.only.split(',').filter((s) => s !== '');
const rng = Rng.fromSeed(1);

/** A graph of `repeat` products on one pair of inputs, its inputs filled, its outputs bound; `run` runs it once. */
function probe(op: string, M: number, N: number, K: number, ta: number, tb: number, repeat: number, held: DeviceTensor[]) {
  const g = new Graph('gemm_probe');
  const a = g.input('a', dtype, ta ? [K, M] : [M, K]);
  const b = g.input('b', dtype, tb ? [N, K] : [K, N]);
  for (let r = 0; r < repeat; r++) g.output(op === 'gemm' ? g.op1('Gemm', [a, b], { transA: ta, transB: tb }) : g.matmul(a, b), `c${r}`);
  const s = DeviceSession.create(serialize(g).model, { device });
  const bind = s.createBinding();
  for (const i of s.inputs) {
    const t = s.alloc(i.dtype as DType, i.dims);
    const v = Float32Array.from({ length: t.size }, () => 0.02 * rng.normal());
    t.upload(dtype === 'float32' ? v : typedFrom(dtype, v));
    held.push(t);
    bind.bindInput(i.name, t);
  }
  for (const o of s.outputs) {
    const t = s.alloc(dtype, [M, N]);
    held.push(t);
    bind.bindOutput(o.name, t);
  }
  return {
    run: () => s.runAsync(bind),
    release: () => {
      bind.release();
      s.release();
    },
  };
}

const median = (xs: readonly number[]): number => {
  const v = [...xs].sort((x, y) => x - y);
  const h = v.length >> 1;
  return v.length % 2 === 1 ? (v[h] as number) : ((v[h - 1] as number) + (v[h] as number)) / 2;
};

for (const op of ops)
  for (const [name, M, N, K, ta0, tb0] of GEMM_SHAPES) {
    if (only.length > 0 && !only.includes(name)) continue;
    const [ta, tb] = op === 'gemm' ? [ta0, tb0] : [0, 0];
    const held: DeviceTensor[] = [];
    const graphs = [probe(op, M, N, K, ta, tb, R1, held), probe(op, M, N, K, ta, tb, R2, held)] as const;
    for (let w = 0; w < 3; w++) for (const p of graphs) await p.run();
    // Interleaved, so both graphs see the same clocks and host load; the median of each drops a stray slow run.
    const times: [number[], number[]] = [[], []];
    for (let r = 0; r < runs; r++)
      for (const [i, p] of graphs.entries()) {
        const t0 = performance.now();
        await p.run();
        times[i]?.push((performance.now() - t0) * 1000);
      }
    const [t1, t2] = times.map(median) as [number, number];
    const us = (t2 - t1) / (R2 - R1);
    const overhead = t1 - R1 * us;
    process.stdout.write(
      `BENCH ${JSON.stringify({
        bench: 'gemm',
        impl: 'latent-sft-ort',
        op,
        device: device.kind,
        dtype,
        shape: name,
        m: M,
        n: N,
        k: K,
        trans_a: ta0,
        trans_b: tb0,
        method: 'slope',
        us,
        tflops: us > 0 ? (2 * M * N * K) / us / 1e6 : null,
        run_overhead_us: overhead,
        r1: R1,
        r2: R2,
        t_r1_us: t1,
        t_r2_us: t2,
        runs,
      })}\n`,
    );
    for (const t of held) t.release();
    for (const p of graphs) p.release();
  }
