// Static cost of the train-bench step graphs (issue 10), WITHOUT running them: builds the Llama-3.2-1B
// full fine-tuning step and the LoRA r 64 step exactly as tools/bench/src/train-bench.ts does (same
// objective, AdamW + clip, bf16 compute, batch 8 × 512) and prints, per ONNX op type, the node count and
// the bytes written (sum over node outputs of elements × dtype size, from the builder's static shapes)
// and read (same over node inputs, broadcast operands counted at their own size). A proxy for the
// memory traffic of the unfused elementwise ops that dominate the ORT profile; Gemm/MatMul FLOPs are not
// in it. Also: Casts by (from → to), the Range/Equal/Slice/ScatterND traffic, dims left symbolic.
//   pnpm exec tsx --conditions=@latent-sft/source tools/bench/src/graph-stats.ts [--which train,lora] [--fused true|false]
//     [--batch 8] [--seq 512] [--layers N] [--json out.json] [--baseline before.json] [--nodes K]
// --json saves the numbers; --baseline prints before / after columns against such a file; --nodes lists
// the K (op, output dtype, output shape) groups that write the most bytes.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Graph, dtypeBytes } from '@latent-sft/graph';
import { llama32_1b, type LoraConfig, type ModelConfig } from '@latent-sft/models';
import { buildStepGraphs, graphOptimizer } from '@latent-sft/train';
import { BENCH_LORA, benchObjective } from './train-objective.js';

const { values } = parseArgs({
  options: {
    which: { type: 'string', default: 'train,lora' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '512' },
    layers: { type: 'string' },
    compute: { type: 'string', default: 'bfloat16' },
    json: { type: 'string' },
    baseline: { type: 'string' },
    top: { type: 'string', default: '25' },
    nodes: { type: 'string', default: '0' },
    fused: { type: 'string', default: 'true' },
  },
});
const B = Number(values.batch),
  T = Number(values.seq);
const compute = values.compute as 'bfloat16' | 'float16' | 'float32';
const base = llama32_1b();
const config: ModelConfig = values.layers ? { ...base, numHiddenLayers: Number(values.layers) } : base;

interface OpStat {
  nodes: number;
  written: number;
  read: number;
}
interface GraphStats {
  nodes: number;
  written: number;
  read: number;
  symbolic: number;
  byOp: Record<string, OpStat>;
  casts: Record<string, OpStat>;
}

function stats(g: Graph): GraphStats {
  const byOp: Record<string, OpStat> = {};
  const casts: Record<string, OpStat> = {};
  let symbolic = 0;
  const bytesOf = (name: string): number => {
    if (name === '') return 0;
    const t = g.value(name);
    let n = 1;
    for (const d of t.shape) {
      if (typeof d !== 'number') {
        symbolic++;
        return 0;
      }
      n *= d;
    }
    return n * dtypeBytes[t.dtype];
  };
  const s: GraphStats = { nodes: 0, written: 0, read: 0, symbolic: 0, byOp, casts };
  const add = (m: Record<string, OpStat>, k: string, w: number, r: number) => {
    m[k] ??= { nodes: 0, written: 0, read: 0 };
    const o = m[k];
    o.nodes++;
    o.written += w;
    o.read += r;
  };
  for (const n of g.nodes) {
    const w = n.outputs.reduce((a, o) => a + bytesOf(o), 0);
    const r = n.inputs.reduce((a, i) => a + bytesOf(i), 0);
    add(byOp, n.op, w, r);
    if (n.op === 'Cast') add(casts, `${g.value(n.inputs[0] as string).dtype}→${g.value(n.outputs[0] as string).dtype}`, w, r);
    s.nodes++;
    s.written += w;
    s.read += r;
  }
  s.symbolic = symbolic;
  return s;
}

function build(which: 'train' | 'lora'): Graph {
  const lora: LoraConfig | null = which === 'lora' ? BENCH_LORA : null;
  const graphs = buildStepGraphs(
    {
      objective: benchObjective(config, B, T, compute, lora),
      optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-5, weightDecay: 0.01 }),
      clipNorm: 1.0,
      compute,
      lossScale: false,
      fused: values.fused === 'true',
    },
    1,
  );
  return graphs.fused as Graph;
}

/** The K heaviest (op, output dtype, shape) groups by bytes written. */
function biggest(g: Graph, k: number): string {
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const n of g.nodes) {
    const o = g.value(n.outputs[0] as string);
    if (!o.shape.every((d) => typeof d === 'number')) continue;
    const bytes = (o.shape as number[]).reduce((a, b) => a * b, 1) * dtypeBytes[o.dtype];
    const key = `${n.op} → ${o.dtype}[${o.shape.join(', ')}]`;
    const e = groups.get(key) ?? { n: 0, bytes: 0 };
    e.n++;
    e.bytes += bytes;
    groups.set(key, e);
  }
  return `${[...groups.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, k)
    .map(([key, e]) => `  ${(e.bytes / 1e9).toFixed(2).padStart(7)} GB  ${String(e.n).padStart(4)} × ${key}`)
    .join('\n')}\n`;
}

/** Ops ORT runs as views (no copy): their "written" bytes are not traffic. */
const VIEWS = ['Reshape', 'Squeeze', 'Unsqueeze'];
const noViews = (s: GraphStats) => s.written - VIEWS.reduce((a, op) => a + (s.byOp[op]?.written ?? 0), 0);

const GB = (b: number) => (b / 1e9).toFixed(2);
const pct = (a: number, b: number) => (b === 0 ? '–' : `${(((a - b) / b) * 100).toFixed(0)} %`);

function table(which: string, now: GraphStats, before: GraphStats | undefined, top: number): string {
  const lines: string[] = [];
  const ops = [...new Set([...Object.keys(now.byOp), ...Object.keys(before?.byOp ?? {})])];
  const written = (s: GraphStats | undefined, op: string) => s?.byOp[op]?.written ?? 0;
  ops.sort((a, b) => Math.max(written(now, b), written(before, b)) - Math.max(written(now, a), written(before, a)));
  lines.push(`### ${which}: ${config.numHiddenLayers} layers, batch ${B} × ${T}, ${compute} compute`, '');
  if (before === undefined) {
    lines.push('| op | nodes | GB written | GB read |', '|---|---:|---:|---:|');
    for (const op of ops.slice(0, top)) {
      const o = now.byOp[op] as OpStat;
      lines.push(`| ${op} | ${o.nodes} | ${GB(o.written)} | ${GB(o.read)} |`);
    }
    lines.push(`| **total** (${ops.length} op types) | **${now.nodes}** | **${GB(now.written)}** | **${GB(now.read)}** |`);
    lines.push(`| total without views (${VIEWS.join(', ')}) | | ${GB(noViews(now))} | |`);
  } else {
    lines.push('| op | nodes before | nodes after | GB written before | GB written after | change |', '|---|---:|---:|---:|---:|---:|');
    for (const op of ops.slice(0, top)) {
      const [b, a] = [before.byOp[op], now.byOp[op]];
      lines.push(
        `| ${op} | ${b?.nodes ?? 0} | ${a?.nodes ?? 0} | ${GB(b?.written ?? 0)} | ${GB(a?.written ?? 0)} | ${pct(a?.written ?? 0, b?.written ?? 0)} |`,
      );
    }
    lines.push(
      `| **total** | **${before.nodes}** | **${now.nodes}** | **${GB(before.written)}** | **${GB(now.written)}** | **${pct(now.written, before.written)}** |`,
    );
    lines.push(`| written without views (${VIEWS.join(', ')}) | | | ${GB(noViews(before))} | ${GB(noViews(now))} | ${pct(noViews(now), noViews(before))} |`);
    lines.push(`| bytes read, total | | | ${GB(before.read)} | ${GB(now.read)} | ${pct(now.read, before.read)} |`);
  }
  lines.push(
    '',
    'Casts by type: ' +
      Object.entries(now.casts)
        .sort((a, b) => b[1].written - a[1].written)
        .map(([k, o]) => `${k} ${o.nodes} (${GB(o.written)} GB)`)
        .join(', ') +
      (before
        ? `; before: ${Object.entries(before.casts)
            .sort((a, b) => b[1].written - a[1].written)
            .map(([k, o]) => `${k} ${o.nodes} (${GB(o.written)} GB)`)
            .join(', ')}`
        : ''),
  );
  if (now.symbolic > 0) lines.push(`(${now.symbolic} operand(s) had a symbolic dim and count 0 bytes)`);
  lines.push('');
  return lines.join('\n');
}

const baseline = values.baseline ? (JSON.parse(readFileSync(values.baseline, 'utf8')) as Record<string, GraphStats>) : undefined;
const out: Record<string, GraphStats> = {};
for (const w of values.which.split(',') as Array<'train' | 'lora'>) {
  const t0 = performance.now();
  const g = build(w);
  const s = stats(g);
  out[w] = s;
  process.stderr.write(`${w}: built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${table(w, s, baseline?.[w], Number(values.top))}\n`);
  if (Number(values.nodes) > 0) process.stdout.write(`${biggest(g, Number(values.nodes))}\n`);
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(out, null, 1)}\n`);
