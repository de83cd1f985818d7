// Activation recomputation per decoder layer (Trainer.recompute, issue 20) measured on the CPU: a small
// Llama (default hidden 256, 8 layers, MLP 1024, vocab 2048; batch 4 × 512), full fine-tuning and LoRA
// r 16 with dropout, AdamW, float32 on ORT's CPU provider, recompute 'none' vs 'layers'. Each run is
// its own child process, so its peak RSS (the kernel's maxRSS: ORT's CPU arena and memory pattern
// included) is that run's. Also, without running anything, the bytes of the forward values that the
// step graph's backward reads (from the static shapes; what stays alive between forward and backward).
// Prints "BENCH {...}" lines. CPU numbers only: the GPU runs are in run-gpu.sh (train-bench / phase-bench
// --recompute layers).
// Usage: pnpm exec tsx --conditions=@latent-sft/source tools/bench/src/recompute-cpu.ts [--which train,lora]
//        [--hidden 256] [--layers 8] [--inter 1024] [--vocab 2048] [--batch 4] [--seq 512] [--steps 2] [--arena on|off]
//        [--static-only llama-3.2-1b] (only the static bytes, of train-bench's steps: the 1B shape at --batch ×
//        --seq, bf16 with every fused kernel, LoRA r 64; nothing runs)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '@latent-sft/core';
import { type Graph, dtypeBytes } from '@latent-sft/graph';
import { type LoraConfig, type ModelConfig, llama32_1b, loraParameterShapes, parameterShapes } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { type Recompute, Trainer, buildStepGraphs, graphOptimizer } from '@latent-sft/train';
import { tableFill } from './bench-init.js';
import { BENCH_LORA, benchObjective } from './train-objective.js';

const { values } = parseArgs({
  options: {
    which: { type: 'string', default: 'train,lora' },
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '8' },
    inter: { type: 'string', default: '1024' },
    vocab: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '4' },
    seq: { type: 'string', default: '512' },
    steps: { type: 'string', default: '2' },
    'static-only': { type: 'string' },
    // on: ORT's defaults (CPU arena, memory pattern); off: neither, so each tensor is its own allocation
    // and the RSS follows the live tensors.
    arena: { type: 'string', default: 'on' },
    // Internal: run one (which, recompute) in this process.
    child: { type: 'string' },
  },
});
const int = (k: 'hidden' | 'layers' | 'inter' | 'vocab' | 'batch' | 'seq' | 'steps'): number => {
  const v = Number(values[k]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: expected an integer >= 1, got '${values[k]}'`);
  return v;
};
const [D, L, F, V, B, T, steps] = [int('hidden'), int('layers'), int('inter'), int('vocab'), int('batch'), int('seq'), int('steps')];
if (values.arena !== 'on' && values.arena !== 'off') throw new Error(`--arena: expected on or off, got '${values.arena}'`);
const heads = D / 64;
const staticOnly = values['static-only'];
if (staticOnly !== undefined && staticOnly !== 'llama-3.2-1b') throw new Error(`--static-only: expected llama-3.2-1b, got '${staticOnly}'`);
const config: ModelConfig =
  staticOnly !== undefined
    ? llama32_1b()
    : {
        ...llama32_1b(),
        hiddenSize: D,
        numHiddenLayers: L,
        intermediateSize: F,
        vocabSize: V,
        numAttentionHeads: heads,
        numKeyValueHeads: Math.max(1, heads / 2),
        headDim: 64,
      };
const compute: 'bfloat16' | 'float32' = staticOnly !== undefined ? 'bfloat16' : 'float32';
const LORA: LoraConfig = {
  r: 16,
  alpha: 32,
  dropout: 0.1,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  bias: 'none',
  taskType: 'CAUSAL_LM',
};
const emit = (o: Record<string, unknown>) => process.stdout.write(`BENCH ${JSON.stringify(o)}\n`);
const mib = (kib: number) => Math.round(kib / 1024);

/**
 * Bytes of the forward values (those the loss depends on) that the other nodes read, those made inside
 * the decoder layers (segment-tagged nodes) apart, and how many values have symbolic dims (not counted).
 */
function forwardBytesRead(g: Graph): { bytes: number; inLayers: number; values: number; symbolic: number } {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) producer.set(o, i);
  });
  const forward = new Set<number>();
  const stack = [producer.get('loss')];
  while (stack.length > 0) {
    const i = stack.pop();
    if (i === undefined || forward.has(i)) continue;
    forward.add(i);
    for (const x of g.nodes[i]!.inputs) stack.push(producer.get(x));
  }
  const read = new Set<string>();
  g.nodes.forEach((n, i) => {
    if (!forward.has(i)) for (const x of n.inputs) if (forward.has(producer.get(x) ?? -1)) read.add(x);
  });
  let [bytes, inLayers, symbolic] = [0, 0, 0];
  for (const name of read) {
    const t = g.value(name);
    if (!t.shape.every((d) => typeof d === 'number')) {
      symbolic++;
      continue;
    }
    const n = (t.shape as number[]).reduce((a, b) => a * b, dtypeBytes[t.dtype]);
    bytes += n;
    if (g.nodes[producer.get(name) as number]!.segment !== undefined) inLayers += n;
  }
  return { bytes, inLayers, values: read.size, symbolic };
}

async function child(which: 'train' | 'lora', recompute: Recompute): Promise<void> {
  const lora = which === 'lora' ? LORA : null;
  const fill = tableFill(Rng.fromSeed(0));
  const weights = Object.fromEntries(parameterShapes(config).map((p) => [p.name, fill(p.shape, p.init === 'ones' ? 'ones' : 'normal')]));
  const adapters = lora ? Object.fromEntries(loraParameterShapes(config, lora).map((p) => [p.name, fill(p.shape, 'normal')])) : {};
  const rss0 = process.resourceUsage().maxRSS;
  const trainer = await Trainer.create(
    {
      objective: benchObjective(config, B, T, 'float32', lora),
      optimizer: { kind: 'adamw', lr: 1e-4 },
      schedule: { kind: 'constant' },
      totalSteps: steps,
      clipNorm: 1,
      device: { kind: 'cpu' },
      recompute,
      ...(values.arena === 'off' ? { session: { memoryArena: false, enableMemPattern: false } } : {}),
    },
    lora ? { trainable: adapters, frozen: weights } : { trainable: weights, frozen: {} },
  );
  const rssCreated = process.resourceUsage().maxRSS;
  const i64 = (f: (i: number) => number): HostTensor => ({ dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(f(i))) });
  const tok = (i: number) => (i * 7919 + 13) % V;
  const feeds: Record<string, HostTensor> = {
    input_ids: i64(tok),
    labels: i64(tok),
    attention_mask: i64(() => 1),
    position_ids: i64((i) => i % T),
    ...(lora ? { dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) } as HostTensor } : {}),
  };
  const losses: number[] = [];
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) losses.push((await trainer.step([feeds])).loss);
  const stepS = (performance.now() - t0) / 1000 / steps;
  const rssPeak = process.resourceUsage().maxRSS;
  await trainer.release();
  emit({
    bench: 'recompute-cpu',
    which,
    recompute,
    arena: values.arena,
    config: { hidden: D, layers: L, inter: F, vocab: V, batch: B, seq: T },
    rss_before_create_mib: mib(rss0),
    rss_after_create_mib: mib(rssCreated),
    rss_peak_mib: mib(rssPeak),
    step_peak_over_create_mib: mib(rssPeak - rssCreated),
    step_s: stepS,
    losses,
  });
}

if (values.child !== undefined) {
  const [which, recompute] = values.child.split(':') as ['train' | 'lora', Recompute];
  await child(which, recompute);
} else {
  const self = fileURLToPath(import.meta.url);
  for (const which of values.which.split(',') as Array<'train' | 'lora'>) {
    for (const recompute of ['none', 'layers'] as const) {
      const o = {
        objective: benchObjective(config, B, T, compute, which === 'lora' ? (staticOnly !== undefined ? BENCH_LORA : LORA) : null),
        optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-4 }),
        clipNorm: 1,
        compute,
        lossScale: false,
        fused: staticOnly !== undefined,
        recompute,
      };
      const built = buildStepGraphs(o, 1);
      const r = forwardBytesRead(built.fused!);
      emit({
        bench: 'recompute-static',
        model: staticOnly ?? 'small',
        compute,
        batch: B,
        seq: T,
        which,
        recompute,
        forward_values_read_by_backward: r.values,
        their_mib: Math.round(r.bytes / 2 ** 20),
        made_in_layers_mib: Math.round(r.inLayers / 2 ** 20),
        with_symbolic_dims: r.symbolic,
        recomputed_nodes: built.recomputed.reduce((a, s) => a + s.clones.length, 0),
        after_nodes: built.recomputed.reduce((a, s) => a + s.gates.length, 0),
      });
      if (staticOnly !== undefined) continue;
      const args = [...process.execArgv, self, ...process.argv.slice(2), '--child', `${which}:${recompute}`];
      const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
      if (run.status !== 0) throw new Error(`child ${which}:${recompute} exited with ${run.status}`);
    }
  }
}
