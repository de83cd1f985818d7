// Round-trip export (issue 4): re-saves the tiny HF fixtures with our checkpoint writer, writes a
// random LoRA adapter in PEFT's format, and records our ORT CPU logits for fixed ids — with the
// adapter applied in-graph and on weights merged by mergeLora. tools/reference/check_roundtrip.py then
// loads our folders with HF transformers + PEFT and compares logits.
// Usage: tsx src/roundtrip-export.ts OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '@latent-sft/core';
import { Graph, serialize } from '@latent-sft/graph';
import {
  buildDecoder,
  loadCheckpoint,
  loraParameterShapes,
  mergeLora,
  saveAdapter,
  saveCheckpoint,
  type LoraConfig,
  type NamedTensor,
} from '@latent-sft/models';
import { Session, type HostTensor } from '@latent-sft/runtime';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: roundtrip-export.ts OUT_DIR');
const fixtures = new URL('../../../packages/models/test/fixtures/', import.meta.url).pathname;
const ids = [
  [5, 17, 200, 3, 44, 9, 120, 7],
  [1, 2, 3, 4, 5, 6, 7, 8],
];

async function logits(ck: ReturnType<typeof loadCheckpoint>, weights: NamedTensor[], lora?: { config: LoraConfig; tensors: NamedTensor[] }) {
  const g = new Graph('rt');
  const d = buildDecoder(g, ck.config, {
    input: 'ids',
    mask: 'padding',
    params: { kind: 'initializers', tensors: weights },
    ...(lora ? { lora: { config: lora.config, mode: 'eval' as const } } : {}),
  });
  if (d.logits === null) throw new Error('no logits');
  const s = await Session.create(serialize(g).model);
  const B = ids.length,
    T = ids[0]!.length;
  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from(ids.flat().map(BigInt)) },
    attention_mask: { dtype: 'int64', dims: [B, T], data: new BigInt64Array(B * T).fill(1n) },
    position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from(ids.flatMap((r) => r.map((_, i) => BigInt(i)))) },
  };
  for (const t of lora?.tensors ?? []) feeds[t.name] = { dtype: 'float32', dims: t.shape, data: t.data };
  const r = await s.run(feeds);
  await s.release();
  return Array.from(r['logits']!.data as Float32Array);
}

for (const name of ['tiny-llama', 'tiny-qwen2']) {
  const ck = loadCheckpoint(join(fixtures, name));
  const weights = ck.readAll();
  const dir = join(out, name);
  saveCheckpoint(join(dir, 'model'), ck.config, weights, { dtype: 'float32' });
  const targets =
    name === 'tiny-llama'
      ? (['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const)
      : (['q_proj', 'v_proj', 'down_proj'] as const);
  const lora: LoraConfig = { r: 4, alpha: 8, dropout: 0, targetModules: [...targets], bias: 'none', taskType: 'CAUSAL_LM' };
  const rng = Rng.fromSeed(99);
  const tensors: NamedTensor[] = loraParameterShapes(ck.config, lora).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = 0.05 * rng.normal(); // B nonzero so the adapter matters
    return { name: p.name, shape: p.shape, data };
  });
  saveAdapter(join(dir, 'adapter'), lora, tensors, { model: ck.config });
  const merged = mergeLora(ck.config, weights, tensors, lora);
  const result = {
    ids,
    logits: await logits(ck, weights),
    loraLogits: await logits(ck, weights, { config: lora, tensors }),
    mergedLogits: await logits(ck, merged),
    vocab: ck.config.vocabSize,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ours.json'), JSON.stringify(result));
  process.stdout.write(`${name}: wrote ${dir}\n`);
}
