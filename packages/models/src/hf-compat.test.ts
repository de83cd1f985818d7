// Checkpoints as transformers 5 saves them, and the same weights with a transformers 4.x config.json:
// both layouts must load to the same model and give HF's logits at every position of a sequence longer
// than the llama3 scaling's original context. Fixtures: tools/reference/hf_compat_goldens.py (GPU
// machine) into test/fixtures/hf5-* (committed: a missing one fails).
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Graph, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { modelConfigToJson, parseModelConfig } from './config.js';
import { buildDecoder } from './decoder.js';
import { openSafetensors } from './safetensors.js';

/** fp32 ORT CPU graph vs float64 HF logits (stored float32); the tiny-llama goldens measure 1.8e-6. */
const LOGITS = { atol: 1e-4, rtol: 0 };

const FAMILIES = [
  { name: 'hf5-llama3', modelType: 'llama', qkNorm: false, scaled: true },
  { name: 'hf5-qwen2', modelType: 'qwen2', qkNorm: false, scaled: false },
  { name: 'hf5-qwen3', modelType: 'qwen3', qkNorm: true, scaled: false },
] as const;
const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/${name}`, import.meta.url));

/** A folder holding the fixture's weights with `configFile` as its config.json. */
function folderWith(name: string, configFile: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  copyFileSync(join(fixture(name), 'model.safetensors'), join(dir, 'model.safetensors'));
  copyFileSync(join(fixture(name), configFile), join(dir, 'config.json'));
  return dir;
}

async function logits(dir: string, ids: HostTensor): Promise<HostTensor> {
  const ckpt = loadCheckpoint(dir);
  const [B, T] = ids.dims as [number, number];
  const g = new Graph('hf-compat');
  buildDecoder(g, ckpt.config, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: ckpt.readAll() }, maxPositions: T });
  const s = await Session.create(serialize(g).model);
  try {
    const out = await s.run({
      input_ids: ids,
      attention_mask: { dtype: 'int64', dims: [B, T], data: new BigInt64Array(B * T).fill(1n) },
      position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) },
    });
    return out['logits']!;
  } finally {
    await s.release();
  }
}

for (const f of FAMILIES) {
  describe(`${f.name} (transformers 5 save_pretrained + a 4.x config.json)`, () => {
    const gold = openSafetensors(join(fixture(f.name), 'goldens.safetensors'));
    const ids = (): HostTensor => {
      const info = gold.info('input_ids');
      return { dtype: 'int64', dims: info.shape, data: gold.readTensor('input_ids') as BigInt64Array };
    };

    it('reads both layouts to the same model and records which one it read', () => {
      const v5 = loadCheckpoint(folderWith(f.name, 'config.json')).config;
      const v4 = loadCheckpoint(folderWith(f.name, 'config.v4.json')).config;
      expect(['rope_parameters', 'both']).toContain(v5.layout.rope);
      expect(v4.layout).toEqual({ rope: 'rope_scaling', dtypeKey: 'torch_dtype' });
      const math = (c: typeof v5) => ({ ...c, layout: null, extra: null });
      expect(math(v5)).toEqual(math(v4));
      expect([v5.modelType, v5.qkNorm, v5.ropeScaling !== null]).toEqual([f.modelType, f.qkNorm, f.scaled]);
      if (f.scaled) expect(ids().dims[1]).toBeGreaterThan(v5.ropeScaling!.originalMaxPositionEmbeddings);
    });

    it.each(['config.json', 'config.v4.json'])("logits at every position equal HF's with %s", async (configFile) => {
      const out = await logits(folderWith(f.name, configFile), ids());
      expect(out.dims).toEqual(gold.info('logits').shape);
      expect(out.data).toBeAllclose(gold.readTensor('logits') as Float32Array, LOGITS);
    });

    it.each(['config.json', 'config.v4.json'])('saveCheckpoint writes %s back in the layout it came in', (configFile) => {
      const src = folderWith(f.name, configFile);
      const ckpt = loadCheckpoint(src);
      const out = mkdtempSync(join(tmpdir(), `${f.name}-out-`));
      saveCheckpoint(out, ckpt.config, ckpt.readAll());
      const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
      const [before, after] = [read(join(src, 'config.json')), read(join(out, 'config.json'))];
      const ropeKeys = (o: Record<string, unknown>) => ['rope_theta', 'rope_scaling', 'rope_parameters', 'dtype', 'torch_dtype'].filter((k) => k in o);
      expect(ropeKeys(after)).toEqual(ropeKeys(before));
      for (const k of Object.keys(before)) {
        if (k !== 'rope_parameters' && k !== 'rope_scaling') expect([k, after[k]]).toEqual([k, before[k]]);
      }
      expect(parseModelConfig(after)).toEqual(ckpt.config);
      expect(modelConfigToJson(parseModelConfig(after))).toEqual(after);
    });
  });
}
