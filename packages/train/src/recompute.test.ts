// Activation recomputation per decoder layer (TrainerOptions.recompute 'layers', graph.recomputeSegments)
// on tiny Llama / Qwen2 decoders on ORT CPU: the same kernels on the same inputs, so the losses, grad
// norms, weights and AdamW moments after several steps are bit for bit those of recompute 'none' — full
// fine-tuning and LoRA with seeded dropout, float32 and float16 with every fused kernel. The step graph
// itself: every recomputed node depends on the cotangent of its layer's output (ORT cannot run it
// early), nothing is recomputed twice, and the backward reads from the forward only the layer inputs
// (plus the values outside the layers), where without recomputation it reads every layer's internals.
import { fromBinary } from '@bufbuild/protobuf';
import { Rng } from '@latent-sft/core';
import { type Graph, type Tensor, isFloat, serialize } from '@latent-sft/graph';
import {
  type LoraConfig,
  type ModelConfig,
  causalLmLoss,
  decoder,
  embed,
  initParameters,
  loraParameterShapes,
  paddingBias,
  parameterShapes,
  tinyLlama,
  tinyQwen2,
} from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { ModelProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { type Objective, type Recompute, Trainer, type TrainerState, buildStepGraphs, graphOptimizer } from './index.js';
import { AFTER_DTYPES, afterCase, runOnce } from './testing.js';

const [B, T] = [2, 10];
const STEPS = 4;
const cpu = { kind: 'cpu' } as const;
const f32 = (shape: readonly number[]) => ({ dtype: 'float32' as const, shape });
const LORA: LoraConfig = {
  r: 4,
  alpha: 8,
  dropout: 0.25,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  bias: 'none',
  taskType: 'CAUSAL_LM',
};

/** Causal-LM loss of `c` in `dtype`: full fine-tuning, or LoRA (with its seeded dropout) on the frozen float32 base. */
function objective(c: ModelConfig, lora: LoraConfig | null, dtype: 'float32' | 'float16'): Objective {
  const base = Object.fromEntries(parameterShapes(c).map((p) => [p.name, f32(p.shape)]));
  const ids = { dtype: 'int64' as const, shape: ['batch', 'seq'] };
  return {
    trainable: lora ? Object.fromEntries(loraParameterShapes(c, lora).map((p) => [p.name, f32(p.shape)])) : base,
    frozen: lora ? base : {},
    batch: {
      input_ids: ids,
      attention_mask: ids,
      position_ids: ids,
      labels: ids,
      ...(lora ? { dropout_seed: { dtype: 'int64' as const, shape: [] } } : {}),
    },
    buildLoss(g, trainable, inputs) {
      const t: Record<string, Tensor> = { ...trainable, ...inputs };
      const l = lora ? { lora: { config: lora, tensors: t, dropoutSeed: t['dropout_seed']! } } : {};
      const positions = t['position_ids']!;
      const x = embed(g, c, t, t['input_ids']!, { ...l, dtype });
      const dec = decoder(g, c, t, x, { bias: paddingBias(g, t['attention_mask']!, positions), positions, maxPositions: 32, dtype, ...l });
      return { loss: causalLmLoss(g, dec.logits!, t['labels']!) };
    },
  };
}

/** Step s's batch: fresh tokens, row 1 left-padded by 2, a fresh dropout seed. */
function batch(c: ModelConfig, s: number, lora: boolean): Record<string, HostTensor> {
  const r = Rng.fromSeed(100 + s);
  const i64 = (f: (i: number) => number): HostTensor => ({ dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(f(i))) });
  const tok = Array.from({ length: B * T }, () => 3 + Math.floor(r.uniform() * (c.vocabSize - 3)));
  return {
    input_ids: i64((i) => tok[i]!),
    labels: i64((i) => tok[i]!),
    attention_mask: i64((i) => (i >= T && i % T < 2 ? 0 : 1)),
    position_ids: i64((i) => i % T),
    ...(lora ? { dropout_seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(7 + 1000 * s)) } as HostTensor } : {}),
  };
}

function init(c: ModelConfig, lora: LoraConfig | null): { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> } {
  const host = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims: shape, data });
  const base = Object.fromEntries(initParameters(c, { seed: 3 }).map((p) => [p.name, host(p.shape, p.data)]));
  if (lora === null) return { trainable: base, frozen: {} };
  const r = Rng.fromSeed(9);
  const adapters = loraParameterShapes(c, lora).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    // Both factors non-zero, so every adapter gets a gradient from the first step.
    return [
      p.name,
      host(
        p.shape,
        Float32Array.from({ length: n }, () => 0.1 * r.normal()),
      ),
    ] as const;
  });
  return { trainable: Object.fromEntries(adapters), frozen: base };
}

interface Run {
  losses: number[];
  gradNorms: number[];
  state: TrainerState;
}

/** STEPS AdamW steps; with gradAccum 2 (the split grad + update graphs) each step takes steps s and s + 100's batches. */
async function train(c: ModelConfig, lora: LoraConfig | null, dtype: 'float32' | 'float16', recompute: Recompute, gradAccum = 1): Promise<Run> {
  const t = await Trainer.create(
    {
      objective: objective(c, lora, dtype),
      optimizer: { kind: 'adamw', lr: 1e-2, weightDecay: 0.01 },
      schedule: { kind: 'constant' },
      totalSteps: STEPS,
      clipNorm: 1,
      precision: { compute: dtype, lossScale: null },
      device: cpu,
      fusedKernels: dtype !== 'float32',
      recompute,
      gradAccum,
    },
    init(c, lora),
  );
  try {
    const run: Run = { losses: [], gradNorms: [], state: undefined as unknown as TrainerState };
    for (let s = 0; s < STEPS; s++) {
      const r = await t.step(Array.from({ length: gradAccum }, (_, k) => batch(c, s + 100 * k, lora !== null)));
      run.losses.push(r.loss);
      run.gradNorms.push(r.gradNorm);
    }
    run.state = await t.state();
    return run;
  } finally {
    await t.release();
  }
}

/** The float32 bits of every tensor of a state, by name. */
function bits(st: TrainerState): Map<string, Uint32Array> {
  return new Map([...st.trainable, ...st.optimizer].map((t) => [t.name, new Uint32Array((t.data as Float32Array).slice().buffer)]));
}

describe("recompute 'layers' trains bit for bit as 'none' (ORT CPU)", () => {
  for (const [label, c, lora, dtype, accum] of [
    ['tiny Llama, full fine-tuning, float32', tinyLlama(), null, 'float32', 1],
    ['tiny Qwen2 (q/k/v bias), LoRA with dropout 0.25, float32', tinyQwen2(), LORA, 'float32', 1],
    ['tiny Llama, full fine-tuning, float16 with the fused kernels', tinyLlama(), null, 'float16', 1],
    ['tiny Qwen2, LoRA with dropout 0.25, float16 with the fused kernels', tinyQwen2(), LORA, 'float16', 1],
    ['tiny Llama, full fine-tuning, float32, gradAccum 2 (grad + update graphs)', tinyLlama(), null, 'float32', 2],
  ] as const) {
    it(`${label}: losses, grad norms, weights and moments after ${STEPS} AdamW steps`, async () => {
      const [none, layers] = [await train(c, lora, dtype, 'none', accum), await train(c, lora, dtype, 'layers', accum)];
      expect(layers.losses).toEqual(none.losses);
      expect(layers.gradNorms).toEqual(none.gradNorms);
      expect(none.losses[STEPS - 1]!).not.toEqual(none.losses[0]!); // the weights moved
      const [a, b] = [bits(none.state), bits(layers.state)];
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [name, x] of a) expect(Buffer.from(b.get(name)!.buffer).equals(Buffer.from(x.buffer)), name).toBe(true);
    });
  }
});

/** The serialized graph's nodes as { name, inputs, outputs }, with each value's producer. */
function parsed(g: Graph): { nodes: Array<{ name: string; inputs: string[]; outputs: string[] }>; producer: Map<string, number> } {
  const m = fromBinary(ModelProtoSchema, serialize(g).model);
  const nodes = (m.graph?.node ?? []).map((n) => ({ name: n.name, inputs: [...n.input], outputs: [...n.output] }));
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) producer.set(o, i);
  });
  return { nodes, producer };
}

/** Names of the nodes `value` depends on in `p`. */
function ancestorNodes(p: ReturnType<typeof parsed>, value: string): Set<string> {
  const seen = new Set<number>();
  const stack = [p.producer.get(value)];
  while (stack.length > 0) {
    const i = stack.pop();
    if (i === undefined || seen.has(i)) continue;
    seen.add(i);
    for (const x of p.nodes[i]!.inputs) stack.push(p.producer.get(x));
  }
  return new Set([...seen].map((i) => p.nodes[i]!.name));
}

/**
 * The forward values (made by the nodes the loss depends on) that other nodes (the backward, the
 * optimizer) read, split into those made inside the decoder layers (IR segment tags) and the rest.
 */
function forwardReads(g: Graph): { inLayers: string[]; other: string[] } {
  const p = parsed(g);
  const forward = ancestorNodes(p, 'loss');
  const tag = new Map(g.nodes.map((n) => [n.name, n.segment]));
  const made = new Map<string, string>();
  for (const n of p.nodes) if (forward.has(n.name)) for (const o of n.outputs) made.set(o, n.name);
  const read = new Set<string>();
  for (const n of p.nodes) if (!forward.has(n.name)) for (const x of n.inputs) if (made.has(x)) read.add(x);
  const inLayers = [...read].filter((v) => tag.get(made.get(v)!) !== undefined);
  return { inLayers, other: [...read].filter((v) => !inLayers.includes(v)) };
}

describe("recompute 'layers': the step graph", () => {
  for (const [label, c, lora, dtype] of [
    ['tiny Llama, full fine-tuning, float32', tinyLlama(), null, 'float32'],
    ['tiny Qwen2, LoRA with dropout, float16 fused', tinyQwen2(), LORA, 'float16'],
  ] as const) {
    it(`${label}: every clone waits for its layer output's cotangent, nothing is rebuilt twice, the backward reads only the layer inputs`, () => {
      const build = (recompute: Recompute) =>
        buildStepGraphs(
          {
            objective: objective(c, lora, dtype),
            optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-2 }),
            clipNorm: 1,
            compute: dtype,
            lossScale: false,
            fused: dtype !== 'float32',
            recompute,
          },
          1,
        );
      const [none, layers] = [build('none'), build('layers')];
      const g = layers.fused!;
      const L = c.numHiddenLayers;
      expect(none.recomputed).toEqual([]);
      expect(layers.recomputed.map((s) => s.id)).toEqual(Array.from({ length: L }, (_, i) => i));
      const p = parsed(g);
      const present = new Set(p.nodes.map((n) => n.name));
      const originals = layers.recomputed.flatMap((s) => s.clones.map((k) => k.of));
      expect(new Set(originals).size).toBe(originals.length); // one clone per forward node at most
      layers.recomputed.forEach((s, k) => {
        const clones = s.clones.filter((x) => present.has(x.node));
        expect(clones.length, `layer ${k} clones`).toBeGreaterThan(10);
        for (const x of clones) {
          const before = ancestorNodes(p, p.nodes.find((n) => n.name === x.node)!.outputs[0]!);
          expect(before.has(p.nodes[p.producer.get(s.cotangent)!]!.name), `${x.node} (clone of ${x.of}) after ${s.cotangent}`).toBe(true);
        }
        // One layer's recomputed values at a time: every node that reads a clone of layer k + 1 (its
        // backward, weight gradients included) runs before any clone of layer k.
        const next = layers.recomputed[k + 1];
        if (next !== undefined) {
          const nextOut = new Set(next.clones.filter((x) => present.has(x.node)).flatMap((x) => p.nodes.find((n) => n.name === x.node)!.outputs));
          const readers = p.nodes.filter((n) => n.inputs.some((i) => nextOut.has(i))).map((n) => n.name);
          expect(readers.length).toBeGreaterThan(10);
          for (const x of clones) {
            const before = ancestorNodes(p, p.nodes.find((n) => n.name === x.node)!.outputs[0]!);
            const early = readers.filter((r) => !before.has(r));
            expect(early, `${x.node} (layer ${k}) after every reader of layer ${k + 1}'s clones`).toEqual([]);
          }
        }
      });
      // Forward values the backward reads: without recomputation every layer's internals; with it only
      // the layer outputs (the next layer's input), shape vectors and values of graph inputs alone (a
      // frozen weight's Cast).
      const [a, b] = [forwardReads(none.fused!), forwardReads(g)];
      const outputs = new Set(g.segments.map((s) => s.output));
      const ofInputsOnly = (v: string) => g.producer(v)!.inputs.every((x) => g.inputs.some((t) => t.name === x) || g.initializers.has(x));
      const shapeVector = (v: string) => !isFloat(g.value(v).dtype) && g.value(v).rank <= 1;
      expect(b.inLayers.filter((v) => !outputs.has(v) && !ofInputsOnly(v) && !shapeVector(v))).toEqual([]);
      expect(a.inLayers.length).toBeGreaterThan(10 * L);
      expect(b.inLayers.filter((v) => outputs.has(v)).length).toBe(L); // layer k's output: layer k + 1's (or the final norm's) input
    });
  }
});

describe('TrainerOptions.recompute', () => {
  it('a value other than none / layers is a one-line error naming the field', async () => {
    const c = tinyLlama();
    await expect(
      Trainer.create(
        {
          objective: objective(c, null, 'float32'),
          optimizer: { kind: 'adamw', lr: 1e-2 },
          schedule: { kind: 'constant' },
          totalSteps: 1,
          device: cpu,
          recompute: 'all' as Recompute,
        },
        init(c, null),
      ),
    ).rejects.toThrow(/recompute.*expected 'none' or 'layers', got "all"/);
  });
});

describe('latent_sft.After (CPU kernel)', () => {
  for (const dtype of AFTER_DTYPES) {
    it(`${dtype}: y is x bit for bit, also for an empty and a scalar x`, async () => {
      for (const dims of [[3, 5, 7], [0, 4], []]) {
        const c = afterCase(dtype, dims, 11);
        const y = (await runOnce(c.model, c.inputs, cpu))['y']!;
        const x = c.inputs['x']!;
        expect(y.dtype).toBe(dtype);
        expect(y.dims).toEqual(dims);
        expect(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength).equals(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength))).toBe(
          true,
        );
      }
    });
  }
});
