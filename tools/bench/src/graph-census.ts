// A static census of one training-step graph (no device, no run): per op type the node count and the bytes
// its outputs hold at train-bench's shapes, and the largest elementwise / layout nodes by (op, input shapes)
// — where the step's memory traffic goes besides the GEMMs, before any profile. Prints "CENSUS {...}" lines.
// Usage: node graph-census.mjs [--which train|lora] [--batch 8] [--seq 512] [--params float32|bfloat16]
//        [--fused true|false] [--top 12] [--min-mb 30]
import { parseArgs } from 'node:util';
import { llama32_1b } from '@latent-sft/models';
import { buildStepGraphs, graphOptimizer } from '@latent-sft/train';
import { BENCH_LORA, benchObjective } from './train-objective.js';

const { values } = parseArgs({
  options: {
    which: { type: 'string', default: 'train' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '512' },
    params: { type: 'string', default: 'float32' },
    fused: { type: 'string', default: 'true' },
    top: { type: 'string', default: '12' },
    'min-mb': { type: 'string', default: '30' },
  },
});
const int = (k: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${k}: expected an integer >= 1, got '${v}'`);
  return n;
};
const [B, T, top, minMb] = [int('batch', values.batch), int('seq', values.seq), int('top', values.top), int('min-mb', values['min-mb'])];
if (values.which !== 'train' && values.which !== 'lora') throw new Error(`--which: expected train or lora, got '${values.which}'`);
if (values.params !== 'float32' && values.params !== 'bfloat16') throw new Error(`--params: expected float32 or bfloat16, got '${values.params}'`);
if (values.fused !== 'true' && values.fused !== 'false') throw new Error(`--fused: expected true or false, got '${values.fused}'`);
const emit = (o: Record<string, unknown>) => process.stdout.write(`CENSUS ${JSON.stringify(o)}\n`);

const config = llama32_1b();
const g = buildStepGraphs(
  {
    objective: benchObjective(config, B, T, 'bfloat16', values.which === 'lora' ? BENCH_LORA : null),
    optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-5, weightDecay: 0.01 }),
    clipNorm: 1,
    compute: 'bfloat16',
    lossScale: false,
    fused: values.fused === 'true',
    paramDtype: values.params,
  },
  1,
).fused;
if (g === undefined) throw new Error('expected one fused step graph');
// Symbolic dims of the bench objective: the batch and the sequence.
const bytesOf = (name: string): number => {
  const t = g.value(name);
  const n = t.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : d === 'batch' ? B : T), 1);
  return n * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : t.dtype === 'int64' ? 8 : t.dtype === 'bool' ? 1 : 2);
};
const byOp = new Map<string, { nodes: number; bytes: number }>();
const big = new Map<string, { nodes: number; bytes: number }>();
for (const n of g.nodes) {
  const bytes = n.outputs.reduce((a, o) => a + bytesOf(o), 0);
  const e = byOp.get(n.op) ?? { nodes: 0, bytes: 0 };
  byOp.set(n.op, { nodes: e.nodes + 1, bytes: e.bytes + bytes });
  if (bytes >= minMb * 1e6 && !['Gemm', 'MatMul', 'AdamW', 'AdamWCopy'].includes(n.op)) {
    const key = `${n.op}(${n.inputs.map((i) => (i === '' ? '-' : `${g.value(i).dtype}${g.value(i).shapeText}`)).join(', ')})`;
    const b = big.get(key) ?? { nodes: 0, bytes: 0 };
    big.set(key, { nodes: b.nodes + 1, bytes: b.bytes + bytes });
  }
}
emit({ which: values.which, params: values.params, fused: values.fused === 'true', batch: B, seq: T, nodes: g.nodes.length });
for (const [op, e] of [...byOp].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) emit({ op, nodes: e.nodes, gb_out: e.bytes / 1e9 });
for (const [node, e] of [...big].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) emit({ node, count: e.nodes, gb_out: e.bytes / 1e9 });
