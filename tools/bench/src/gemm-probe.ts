// How fast ORT's CUDA Gemm runs the training steps' matrix products (issues 18 and 20), beside
// bench_torch.py's `--which gemm` (torch.matmul on the same shapes, same dtype) in the same lease: if ORT's
// kernels are slower than PyTorch's on the same products, no graph change closes the step's gap. Each shape
// is one graph of REPEAT Gemm nodes on the same inputs (distinct outputs, run one after another), its run
// time divided by REPEAT; the inputs are filled with small seeded values. Shapes: the 1B step at 4,096 tokens
// (forward NT with the weights [out, in], input gradient NN, weight gradient TN, the LoRA r 64 factors) and
// the 7B phase-2 step at 1,328 tokens. Prints "BENCH {...}" lines: us per product and TFLOP/s.
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
const REPEAT = 16;

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
const only = values.only.split(',').filter((s) => s !== '');
const rng = Rng.fromSeed(1);

for (const op of ops)
  for (const [name, M, N, K, ta0, tb0] of GEMM_SHAPES) {
    if (only.length > 0 && !only.includes(name)) continue;
    const [ta, tb] = op === 'gemm' ? [ta0, tb0] : [0, 0];
    const g = new Graph('gemm_probe');
    const a = g.input('a', dtype, ta ? [K, M] : [M, K]);
    const b = g.input('b', dtype, tb ? [N, K] : [K, N]);
    for (let r = 0; r < REPEAT; r++) g.output(op === 'gemm' ? g.op1('Gemm', [a, b], { transA: ta, transB: tb }) : g.matmul(a, b), `c${r}`);
    const s = DeviceSession.create(serialize(g).model, { device });
    const bind = s.createBinding();
    const held: DeviceTensor[] = [];
    for (const i of s.inputs) {
      const t = s.alloc(i.dtype as DType, i.dims);
      const v = Float32Array.from({ length: t.size }, () => 0.02 * rng.normal());
      t.upload(dtype === 'float32' ? v : typedFrom(dtype, v));
      held.push(t);
      bind.bindInput(i.name, t);
    }
    const outs = s.outputs.map((o) => s.alloc(dtype, [M, N]));
    s.outputs.forEach((o, i) => bind.bindOutput(o.name, outs[i] as DeviceTensor));
    for (let w = 0; w < 3; w++) await s.runAsync(bind);
    const t0 = performance.now();
    for (let r = 0; r < runs; r++) await s.runAsync(bind);
    const us = ((performance.now() - t0) * 1000) / runs / REPEAT;
    process.stdout.write(
      `BENCH ${JSON.stringify({ bench: 'gemm', impl: 'latent-sft-ort', op, device: device.kind, dtype, shape: name, m: M, n: N, k: K, trans_a: ta0, trans_b: tb0, us, tflops: (2 * M * N * K) / us / 1e6 })}\n`,
    );
    for (const t of [...held, ...outs]) t.release();
    bind.release();
    s.release();
  }
