// Llama-3.2-1B shape on CUDA (issue 4): random weights (benchmark init, below), written as an HF
// checkpoint with our writer; our decoder graph run on the CUDA EP in float32 and in bfloat16 compute
// with parameters bound as device tensors; last-position logits saved for tools/reference/
// compare_logits.py, which loads the same checkpoint in HF transformers. Prints "FWD {...}" lines.
// Usage: node forward-1b.mjs OUT_DIR [--device cuda|cpu] [--layers N]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '@latent-sft/core';
import { Graph, serialize } from '@latent-sft/graph';
import { buildDecoder, llama32_1b, parameterShapes, saveCheckpoint, type NamedTensor } from '@latent-sft/models';
import { DeviceSession, type Device } from '@latent-sft/runtime';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    device: { type: 'string', default: 'cuda' },
    layers: { type: 'string' },
    seq: { type: 'string', default: '128' },
  },
});
const out = positionals[0] ?? 'fwd-out';
const device: Device = values.device === 'cuda' ? { kind: 'cuda', deviceId: 0 } : { kind: 'cpu' };
const base = llama32_1b();
const config = values.layers ? { ...base, numHiddenLayers: Number(values.layers) } : base;
const emit = (o: Record<string, unknown>) => process.stdout.write(`FWD ${JSON.stringify(o)}\n`);

// Benchmark init: HF's scheme (normal(0, 0.02) matrices, ones for norms) drawn from a 4M-entry normal
// table read at seeded offsets — 100x faster than drawing 1.2e9 normals, and plenty for timing and for
// comparing two frameworks on the same weights.
const rng = Rng.fromSeed(0);
const table = new Float32Array(1 << 22);
for (let i = 0; i < table.length; i++) table[i] = 0.02 * rng.normal();
let t0 = performance.now();
const weights: NamedTensor[] = parameterShapes(config).map((p) => {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (p.init === 'ones') data.fill(1);
  else
    for (let off = 0; off < n; ) {
      const start = rng.int(table.length - 4096);
      const len = Math.min(4096, n - off);
      data.set(table.subarray(start, start + len), off);
      off += len;
    }
  return { name: p.name, shape: p.shape, data };
});
emit({ step: 'init', s: (performance.now() - t0) / 1000, params: weights.reduce((a, w) => a + w.data.length, 0) });
mkdirSync(out, { recursive: true });
t0 = performance.now();
saveCheckpoint(join(out, 'model'), config, weights, { dtype: 'bfloat16' });
emit({ step: 'save-bf16-checkpoint', s: (performance.now() - t0) / 1000 });

const B = 2,
  T = Number(values.seq);
const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt((i * 7919 + 13) % 128000));
const result: Record<string, unknown> = { ids: Array.from(ids, Number), B, T, vocab: config.vocabSize };
for (const dtype of ['float32', 'bfloat16'] as const) {
  // Weights stored bf16 in the checkpoint: feed the bf16-rounded values so both frameworks see the same.
  const g = new Graph(`fwd_${dtype}`);
  buildDecoder(g, config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, dtype, outputs: ['logits'] });
  t0 = performance.now();
  const model = serialize(g).model;
  const s = DeviceSession.create(model, { device, graphOptimizationLevel: 'all' });
  emit({ step: 'session', dtype, s: (performance.now() - t0) / 1000 });
  const bnd = s.createBinding();
  const bufs = weights.map((w) => {
    const rounded = new Float32Array(w.data.length);
    const u = new Uint32Array(rounded.buffer);
    rounded.set(w.data);
    for (let i = 0; i < u.length; i++) {
      const x = u[i] as number;
      u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
    }
    const t = s.upload({ dtype: 'float32', dims: w.shape, data: rounded });
    bnd.bindInput(w.name, t);
    return t;
  });
  bnd.bindInput('input_ids', s.upload({ dtype: 'int64', dims: [B, T], data: ids }));
  bnd.bindInput('attention_mask', s.upload({ dtype: 'int64', dims: [B, T], data: new BigInt64Array(B * T).fill(1n) }));
  bnd.bindInput('position_ids', s.upload({ dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) }));
  bnd.bindOutputToDevice('logits');
  s.run(bnd); // warm-up
  const reps = 5;
  t0 = performance.now();
  for (let i = 0; i < reps; i++) s.run(bnd);
  bnd.synchronizeOutputs();
  const ms = (performance.now() - t0) / reps;
  const logits = bnd.output('logits').download() as Float32Array;
  const V = config.vocabSize;
  const last = [0, 1].map((b) => Array.from(logits.subarray((b * T + T - 1) * V, (b * T + T) * V)));
  let finite = true;
  for (let i = 0; i < logits.length; i += 997) if (!Number.isFinite(logits[i] as number)) finite = false;
  result[dtype] = last;
  emit({ step: 'forward', dtype, batch: B, seq: T, ms, tokensPerS: (B * T) / (ms / 1000), finite });
  for (const t of bufs) t.release();
  bnd.release();
  s.release();
}
writeFileSync(join(out, 'ours.json'), JSON.stringify(result));
emit({ step: 'done', out });
