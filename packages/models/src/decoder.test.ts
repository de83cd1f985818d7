// Decoder graphs against the HF goldens of tools/reference/model_goldens.py (float64 torch, stored
// float32): fp32 graphs on ORT CPU, weights from loadCheckpoint.
import { fileURLToPath } from 'node:url';
import { Graph, grad, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { tinyLlama } from './config.js';
import { loadCheckpoint } from './checkpoint.js';
import { MASK_MIN, buildDecoder, causalLmLoss } from './decoder.js';
import { openSafetensors } from './safetensors.js';

/** Logits / hidden states of an fp32 graph vs float64 HF (measured max abs error 1.8e-6). */
const LOGITS = { atol: 1e-4, rtol: 0 };
/** Gradients: relative 1e-4, plus an absolute floor for entries near zero (measured max abs error 3.9e-7). */
const GRADS = { atol: 2e-6, rtol: 1e-4 };
const LOSS = { atol: 0, rtol: 1e-5 };
/** float16 compute vs float64 HF (measured max abs error 9.3e-3 on tiny-llama). */
const F16 = { atol: 2e-2, rtol: 0 };

const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/${name}`, import.meta.url));

function goldens(name: string) {
  const st = openSafetensors(`${fixture(name)}/goldens.safetensors`);
  const get = (k: string): HostTensor => {
    const info = st.tensors.find((t) => t.name === k);
    if (info === undefined) throw new Error(`golden '${k}' missing: regenerate with tools/reference/model_goldens.py`);
    const data = st.readTensor(k);
    return { dtype: data instanceof BigInt64Array ? 'int64' : 'float32', dims: info.shape, data: data as HostTensor['data'] };
  };
  return { get, names: st.tensors.map((t) => t.name) };
}

async function run(g: Graph, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s = await Session.create(serialize(g).model);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

function arange(b: number, t: number): HostTensor {
  return { dtype: 'int64', dims: [b, t], data: BigInt64Array.from({ length: b * t }, (_, i) => BigInt(i % t)) };
}
function ones(b: number, t: number): HostTensor {
  return { dtype: 'int64', dims: [b, t], data: new BigInt64Array(b * t).fill(1n) };
}

describe.each(['tiny-llama', 'tiny-qwen2'])('%s decoder vs HF goldens', (name) => {
  const ckpt = loadCheckpoint(fixture(name));
  const tensors = ckpt.readAll();
  const gold = goldens(name);
  const maxPositions = 64;

  it('case ids: logits from input_ids with causal mask', async () => {
    const g = new Graph('ids');
    buildDecoder(g, ckpt.config, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors }, maxPositions });
    const ids = gold.get('ids.input_ids');
    const [B, T] = ids.dims as [number, number];
    const out = await run(g, { input_ids: ids, attention_mask: ones(B, T), position_ids: arange(B, T) });
    expect(out['logits']!.dims).toEqual([B, T, ckpt.config.vocabSize]);
    expect(out['logits']!.data).toBeAllclose(gold.get('ids.logits').data, LOGITS);
  });

  it('case embeds: inputs_embeds, custom additive mask, non-contiguous position_ids', async () => {
    const g = new Graph('embeds');
    buildDecoder(g, ckpt.config, {
      input: 'embeds', mask: 'additive', outputs: ['logits', 'hidden'], params: { kind: 'initializers', tensors }, maxPositions,
    });
    const keep = gold.get('embeds.keep_mask');
    const [B, T] = keep.dims as [number, number];
    const mask = Float32Array.from(keep.data as BigInt64Array, (k) => (k === 1n ? 0 : MASK_MIN));
    const out = await run(g, {
      inputs_embeds: gold.get('embeds.inputs_embeds'), attention_mask: { dtype: 'float32', dims: [B, 1, T, T], data: mask },
      position_ids: gold.get('embeds.position_ids'),
    });
    for (const [k, golden] of [['logits', 'embeds.logits'], ['last_hidden_state', 'embeds.last_hidden_state']] as const) {
      expect(out[k]!.data).toBeAllclose(gold.get(golden).data, LOGITS);
    }
  });

  it('case train: shifted CE loss (ignore -100) and the gradient of every parameter', async () => {
    const g = new Graph('train');
    const dec = buildDecoder(g, ckpt.config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, maxPositions, markOutputs: false });
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const loss = causalLmLoss(g, dec.logits!, labels);
    const names = Object.keys(dec.params);
    const grads = grad(g, loss, names.map((n) => dec.params[n]!));
    g.output(loss, 'loss');
    names.forEach((n, i) => g.output(grads[i]!, `grad.${n}`));
    g.prune();
    const ids = gold.get('train.input_ids');
    const [B, T] = ids.dims as [number, number];
    const feeds: Record<string, HostTensor> = { input_ids: ids, labels: gold.get('train.labels'), attention_mask: ones(B, T), position_ids: arange(B, T) };
    for (const t of tensors) feeds[t.name] = { dtype: 'float32', dims: t.shape, data: t.data };
    const out = await run(g, feeds);
    expect(out['loss']!.data).toBeAllclose(gold.get('train.loss').data, LOSS);
    // Every golden gradient is checked, and every parameter has one (tied lm_head: none).
    expect(gold.names.filter((k) => k.startsWith('train.grad.')).map((k) => k.slice('train.grad.'.length)).sort()).toEqual([...names].sort());
    for (const n of names) {
      expect(out[`grad.${n}`]!.data, n).toBeAllclose(gold.get(`train.grad.${n}`).data, GRADS);
    }
  });
});

describe('buildDecoder compute dtypes', () => {
  it('float16 (weights and activations Cast, softmax and RMSNorm in float32) runs on ORT CPU near the goldens', async () => {
    const ckpt = loadCheckpoint(fixture('tiny-llama'));
    const gold = goldens('tiny-llama');
    const g = new Graph('f16');
    buildDecoder(g, ckpt.config, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: ckpt.readAll() }, dtype: 'float16', maxPositions: 64 });
    const ids = gold.get('ids.input_ids');
    const out = await run(g, { input_ids: ids, attention_mask: ones(2, 8), position_ids: arange(2, 8) });
    expect(out['logits']!.dtype).toBe('float32');
    expect(out['logits']!.data).toBeAllclose(gold.get('ids.logits').data, F16);
  });

  it('bfloat16 graphs keep float32 at the boundary and in every softmax', () => {
    const g = new Graph('bf16');
    const dec = buildDecoder(g, tinyLlama(), { input: 'embeds', mask: 'additive', outputs: ['logits', 'hidden'], params: { kind: 'inputs' }, dtype: 'bfloat16', cache: true });
    expect([dec.logits!.dtype, dec.hidden!.dtype, dec.presents[0]!.key.dtype]).toEqual(['float32', 'float32', 'float32']);
    expect(g.inputs.filter((t) => t.dtype !== 'int64').every((t) => t.dtype === 'float32')).toBe(true);
    const softmaxIn = g.nodes.filter((n) => n.op === 'Softmax').map((n) => g.value(n.inputs[0]!).dtype);
    expect(softmaxIn.length).toBe(2);
    expect(new Set(softmaxIn)).toEqual(new Set(['float32']));
    expect(g.nodes.filter((n) => n.op === 'MatMul').every((n) => g.value(n.inputs[0]!).dtype === 'bfloat16')).toBe(true);
  });
});

describe('buildDecoder options', () => {
  it('rejects bad options in one line', () => {
    const c = tinyLlama();
    expect(() => buildDecoder(new Graph(), c, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: [] } }))
      .toThrow("field 'model.embed_tokens.weight': parameter missing from the initializer tensors");
    expect(() => buildDecoder(new Graph(), c, {
      input: 'embeds', mask: 'padding', params: { kind: 'inputs' },
      lora: { config: { r: 2, alpha: 4, dropout: 0, targetModules: ['embed_tokens'], bias: 'none', taskType: 'FEATURE_EXTRACTION' }, mode: 'eval' },
    })).toThrow('embed_tokens LoRA needs input "ids"');
    expect(() => buildDecoder(new Graph(), c, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, outputs: [] }))
      .toThrow("field 'outputs': ask for logits and/or hidden");
  });
});
