// Where a decode step's GPU time goes (issue 19): the two halves of one Llama-3.2-1B decode step timed
// apart, each as its own small graph on fixed device buffers. "attention": the 16 layers'
// GroupQueryAttention ops alone (one query per row, a static cache of capacity C written in place);
// every row at C/2 keys; "matmuls": the 16 layers' 7 projections alone (x [B, 2048] through q, k, v, o, gate, up, down;
// "matmuls-fused": q/k/v and gate/up as one Gemm each, as the engine runs them). If the
// sum is far below the engine's ms per step, the time is elsewhere (head, norms, glue); if attention
// dominates, the op's decode kernel is the problem. Prints "BENCH {...}" lines.
// Usage: node decode-probe.mjs [--device cuda|cpu] [--dtype bfloat16|float32] [--batch 64] [--capacity 512] [--runs 50]
import { parseArgs } from 'node:util';
import { Graph, type Tensor, serialize } from '@latent-sft/graph';
import { llama32_1b, ropeTables } from '@latent-sft/models';
import { DeviceSession, type DType, type DeviceTensor, allocCpu } from '@latent-sft/runtime';

const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    dtype: { type: 'string', default: 'bfloat16' },
    batch: { type: 'string', default: '64' },
    capacity: { type: 'string', default: '512' },
    runs: { type: 'string', default: '50' },
  },
});
const dtype = values.dtype === 'float32' ? 'float32' : 'bfloat16';
const device = values.device === 'cpu' ? ({ kind: 'cpu' } as const) : ({ kind: 'cuda', deviceId: 0 } as const);
const [B, C, runs] = [Number(values.batch), Number(values.capacity), Number(values.runs)];
const c = llama32_1b();
const [L, H, kvH, hd, D, F] = [c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.hiddenSize, c.intermediateSize];
const emit = (o: Record<string, unknown>): boolean =>
  process.stdout.write(`BENCH ${JSON.stringify({ bench: 'decode-probe', device: device.kind, dtype, batch: B, capacity: C, ...o })}\n`);

/**
 * Runs `g` `runs` times on zero-filled device inputs (bound once) and returns ms per run; `cpuInputs`
 * (int32 scalars) live in host memory, `int32Fill` int32 device inputs are filled with one value.
 */
async function time(name: string, g: Graph, cpuInputs: Record<string, number> = {}, int32Fill: Record<string, number> = {}): Promise<number> {
  const s = DeviceSession.create(serialize(g).model, { device });
  const b = s.createBinding();
  const held: DeviceTensor[] = [];
  for (const i of s.inputs) {
    const dims = i.dims.map((d) => (d < 0 ? 1 : d));
    const dt = i.dtype as DType;
    const t = i.name in cpuInputs ? allocCpu(dt, dims) : s.alloc(dt, dims);
    if (i.name in cpuInputs) t.upload(new Int32Array([cpuInputs[i.name] as number]));
    if (i.name in int32Fill) t.upload(new Int32Array(t.size).fill(int32Fill[i.name] as number));
    held.push(t);
    b.bindInput(i.name, t);
  }
  for (const o of s.outputs) b.bindOutputToDevice(o.name);
  for (let w = 0; w < 3; w++) await s.runAsync(b);
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) await s.runAsync(b);
  const ms = (performance.now() - t0) / runs;
  for (const o of Object.values(b.outputs())) o.release();
  b.release();
  for (const t of held) t.release();
  s.release();
  emit({ part: name, ms_per_run: ms });
  return ms;
}

// The attention half: L GroupQueryAttention decode ops, each with its own cache pair.
const ga = new Graph('probe_attention');
const q = ga.input('q', dtype, [B, 1, H * hd]);
const k = ga.input('k', dtype, [B, 1, kvH * hd]);
const v = ga.input('v', dtype, [B, 1, kvH * hd]);
const seqlens = ga.input('seqlens_k', 'int32', [B]);
const total = ga.input('total_sequence_length', 'int32', []);
const rope = ropeTables(ga, c, C, dtype);
for (let i = 0; i < L; i++) {
  const pk = ga.input(`past.${i}.key`, dtype, [B, kvH, C, hd]);
  const pv = ga.input(`past.${i}.value`, dtype, [B, kvH, C, hd]);
  const [o] = ga.op('GroupQueryAttention', [q, k, v, pk, pv, seqlens, total, rope.cos, rope.sin], { num_heads: H, kv_num_heads: kvH, do_rotary: 1 }) as [
    Tensor,
  ];
  ga.output(o, `out.${i}`);
}
// Every row at half the capacity (the mean length of a 128-token prompt + 256 new tokens at C = 512).
const attention = await time('attention', ga, { total_sequence_length: C }, { seqlens_k: Math.floor(C / 2) });

// The matmul half: L × (q, k, v, o, gate, up, down) on x [B, D], weights [out, in] (Gemm transB as the decoder);
// "matmuls-fused": the same products as the engine's step graph runs them since session 8 (q/k/v one Gemm,
// gate/up one Gemm: 4 per layer).
function matmulGraph(name: string, shapes: ReadonlyArray<[number, number]>): Graph {
  const gm = new Graph(name);
  const x = gm.input('x', dtype, [B, D]);
  for (let i = 0; i < L; i++) {
    shapes.forEach(([o, inDim], j) => {
      const w = gm.input(`w.${i}.${j}`, dtype, [o, inDim]);
      const xin = inDim === D ? x : gm.input(`x${inDim}.${i}.${j}`, dtype, [B, inDim]);
      gm.output(gm.op1('Gemm', [xin, w], { transB: 1 }), `y.${i}.${j}`);
    });
  }
  return gm;
}
const matmuls = await time(
  'matmuls',
  matmulGraph('probe_matmuls', [
    [H * hd, D],
    [kvH * hd, D],
    [kvH * hd, D],
    [D, H * hd],
    [F, D],
    [F, D],
    [D, F],
  ]),
);
emit({ part: 'sum', ms_per_run: attention + matmuls });
await time(
  'matmuls-fused',
  matmulGraph('probe_matmuls_fused', [
    [(H + 2 * kvH) * hd, D],
    [D, H * hd],
    [2 * F, D],
    [D, F],
  ]),
);
