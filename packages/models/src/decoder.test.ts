// Decoder graphs against the HF goldens of tools/reference/model_goldens.py (float64 torch, stored
// float32): fp32 graphs on ORT CPU, weights from loadCheckpoint; Qwen3's q/k norm against a JS forward.
import { fileURLToPath } from 'node:url';
import { Rng } from '@latent-sft/core';
import { Graph, grad, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { type ModelConfig, ropeInvFreq, tinyLlama, tinyQwen2 } from './config.js';
import { loadCheckpoint } from './checkpoint.js';
import { MASK_MIN, buildDecoder, causalLmLoss, decoder } from './decoder.js';
import type { NamedTensor } from './init.js';
import { parameterShapes } from './params.js';
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
      input: 'embeds',
      mask: 'additive',
      outputs: ['logits', 'hidden'],
      params: { kind: 'initializers', tensors },
      maxPositions,
    });
    const keep = gold.get('embeds.keep_mask');
    const [B, T] = keep.dims as [number, number];
    const mask = Float32Array.from(keep.data as BigInt64Array, (k) => (k === 1n ? 0 : MASK_MIN));
    const out = await run(g, {
      inputs_embeds: gold.get('embeds.inputs_embeds'),
      attention_mask: { dtype: 'float32', dims: [B, 1, T, T], data: mask },
      position_ids: gold.get('embeds.position_ids'),
    });
    for (const [k, golden] of [
      ['logits', 'embeds.logits'],
      ['last_hidden_state', 'embeds.last_hidden_state'],
    ] as const) {
      expect(out[k]!.data).toBeAllclose(gold.get(golden).data, LOGITS);
    }
  });

  it('case train: shifted CE loss (ignore -100) and the gradient of every parameter', async () => {
    const g = new Graph('train');
    const dec = buildDecoder(g, ckpt.config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, maxPositions, markOutputs: false });
    const labels = g.input('labels', 'int64', ['batch', 'seq']);
    const loss = causalLmLoss(g, dec.logits!, labels);
    const names = Object.keys(dec.params);
    const grads = grad(
      g,
      loss,
      names.map((n) => dec.params[n]!),
    );
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
    expect(
      gold.names
        .filter((k) => k.startsWith('train.grad.'))
        .map((k) => k.slice('train.grad.'.length))
        .sort(),
    ).toEqual([...names].sort());
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
    buildDecoder(g, ckpt.config, {
      input: 'ids',
      mask: 'padding',
      params: { kind: 'initializers', tensors: ckpt.readAll() },
      dtype: 'float16',
      maxPositions: 64,
    });
    const ids = gold.get('ids.input_ids');
    const out = await run(g, { input_ids: ids, attention_mask: ones(2, 8), position_ids: arange(2, 8) });
    expect(out['logits']!.dtype).toBe('float32');
    expect(out['logits']!.data).toBeAllclose(gold.get('ids.logits').data, F16);
  });

  it('bfloat16 graphs keep float32 at the boundary and in every softmax', () => {
    const g = new Graph('bf16');
    const dec = buildDecoder(g, tinyLlama(), {
      input: 'embeds',
      mask: 'additive',
      outputs: ['logits', 'hidden'],
      params: { kind: 'inputs' },
      dtype: 'bfloat16',
      cache: true,
    });
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
    expect(() => buildDecoder(new Graph(), c, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: [] } })).toThrow(
      "field 'model.embed_tokens.weight': parameter missing from the initializer tensors",
    );
    expect(() =>
      buildDecoder(new Graph(), c, {
        input: 'embeds',
        mask: 'padding',
        params: { kind: 'inputs' },
        lora: { config: { r: 2, alpha: 4, dropout: 0, targetModules: ['embed_tokens'], bias: 'none', taskType: 'FEATURE_EXTRACTION' }, mode: 'eval' },
      }),
    ).toThrow('embed_tokens LoRA needs input "ids"');
    expect(() => buildDecoder(new Graph(), c, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, outputs: [] })).toThrow(
      "field 'outputs': ask for logits and/or hidden",
    );
  });

  it('decoder() names a missing or mis-shaped weight in one line', () => {
    const c = tinyLlama();
    const g = new Graph();
    const x = g.input('x', 'float32', ['batch', 'seq', c.hiddenSize]);
    const opts = { bias: g.input('bias', 'float32', ['batch', 1, 'seq', 'seq']), positions: g.input('pos', 'int64', ['batch', 'seq']) };
    expect(() => decoder(g, c, {}, x, opts)).toThrow("field 'model.embed_tokens.weight': weight missing");
    const w = Object.fromEntries(parameterShapes(c).map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
    expect(() => decoder(g, c, { ...w, 'model.norm.weight': g.input('bad', 'float32', [3]) }, x, opts)).toThrow(
      `field 'model.norm.weight': shape [3] but the config needs [${c.hiddenSize}]`,
    );
    expect(decoder(g, c, w, x, opts).logits?.shapeText).toBe(`[batch, seq, ${c.vocabSize}]`);
  });
});

// Qwen3's q/k norm (config.qkNorm: RMSNorm over head_dim of every q and k head, before RoPE) on ORT CPU
// against a float64 JavaScript forward of the whole decoder written out loop by loop (embedding, RMSNorm,
// projections, per-head q/k norm, RoPE, GQA causal softmax attention, SwiGLU MLP, head), on a 1-layer tiny
// config with non-unit norm weights; plus the gradient of the q/k norm weights against central finite
// differences of that reference.
/** float32 graph vs float64 reference (float32 RoPE tables and matmuls; measured max abs error ~1e-6). */
const QK_LOGITS = { atol: 2e-5, rtol: 0 };
/** Graph gradient vs central differences of the float64 reference (step 1e-5: truncation ~1e-10). */
const QK_GRAD = { atol: 1e-4, rtol: 1e-3 };

const qwen3: ModelConfig = { ...tinyQwen2({ numHiddenLayers: 1, vocabSize: 32 }), attentionBias: false, qkNorm: true };
const [QB, QT] = [2, 5];
const qkIds = [
  [3, 17, 5, 29, 8],
  [11, 2, 30, 7, 19],
];

/** Random weights (norm weights 1 ± 0.3, so the q/k norm weights matter). */
function weights(c: ModelConfig, seed: number): NamedTensor[] {
  const rng = Rng.fromSeed(seed);
  return parameterShapes(c).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    return { name: p.name, shape: p.shape, data: Float32Array.from({ length: n }, () => (p.init === 'ones' ? 1 + 0.3 * rng.normal() : 0.3 * rng.normal())) };
  });
}

/** The decoder in float64 JavaScript: logits [B·T·V] for `qkIds` (all tokens real, positions 0..T−1). */
function reference(c: ModelConfig, ws: ReadonlyArray<{ name: string; data: ArrayLike<number> }>): Float64Array {
  const W = (name: string): ArrayLike<number> => {
    const t = ws.find((x) => x.name === name);
    if (t === undefined) throw new Error(`reference: no weight ${name}`);
    return t.data;
  };
  const [D, H, kvH, hd, F, V] = [c.hiddenSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.intermediateSize, c.vocabSize];
  const matvec = (w: ArrayLike<number>, x: ArrayLike<number>, O: number, I: number): number[] =>
    Array.from({ length: O }, (_, o) => {
      let s = 0;
      for (let i = 0; i < I; i++) s += (w[o * I + i] as number) * (x[i] as number);
      return s;
    });
  const norm = (x: number[], w: ArrayLike<number>): number[] => {
    const r = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.rmsNormEps);
    return x.map((v, i) => (w[i] as number) * (v / r));
  };
  const inv = ropeInvFreq(c);
  const half = hd / 2;
  const rope = (x: number[], pos: number): number[] =>
    x.map((v, j) => {
      const a = pos * (inv[j % half] as number);
      const rot = j < half ? -(x[j + half] as number) : (x[j - half] as number);
      return v * Math.cos(a) + rot * Math.sin(a);
    });
  /** Per head of hd: optional RMSNorm (q/k norm), then RoPE. */
  const heads = (x: number[], n: number, pos: number, normW: ArrayLike<number> | null): number[][] =>
    Array.from({ length: n }, (_, h) => {
      const v = x.slice(h * hd, (h + 1) * hd);
      return rope(normW === null ? v : norm(v, normW), pos);
    });
  const out = new Float64Array(QB * QT * V);
  for (let b = 0; b < QB; b++) {
    const E = W('model.embed_tokens.weight');
    let x = (qkIds[b] as number[]).map((id) => Array.from({ length: D }, (_, i) => E[id * D + i] as number));
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const p = `model.layers.${l}`;
      const qn = c.qkNorm === true ? W(`${p}.self_attn.q_norm.weight`) : null;
      const kn = c.qkNorm === true ? W(`${p}.self_attn.k_norm.weight`) : null;
      const n1 = x.map((r) => norm(r, W(`${p}.input_layernorm.weight`)));
      const q = n1.map((r, t) => heads(matvec(W(`${p}.self_attn.q_proj.weight`), r, H * hd, D), H, t, qn));
      const k = n1.map((r, t) => heads(matvec(W(`${p}.self_attn.k_proj.weight`), r, kvH * hd, D), kvH, t, kn));
      const v = n1.map((r) => matvec(W(`${p}.self_attn.v_proj.weight`), r, kvH * hd, D));
      x = x.map((r, t) => {
        const ctx: number[] = [];
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / kvH));
          const s = Array.from(
            { length: t + 1 },
            (_, u) => (q[t] as number[][])[h]!.reduce((a, qv, j) => a + qv * (k[u] as number[][])[g]![j]!, 0) / Math.sqrt(hd),
          );
          const m = Math.max(...s);
          const e = s.map((z) => Math.exp(z - m));
          const z = e.reduce((a, y) => a + y, 0);
          for (let j = 0; j < hd; j++) ctx.push(e.reduce((a, y, u) => a + (y / z) * (v[u] as number[])[g * hd + j]!, 0));
        }
        const o = matvec(W(`${p}.self_attn.o_proj.weight`), ctx, D, H * hd);
        return r.map((y, i) => y + (o[i] as number));
      });
      x = x.map((r) => {
        const n2 = norm(r, W(`${p}.post_attention_layernorm.weight`));
        const gate = matvec(W(`${p}.mlp.gate_proj.weight`), n2, F, D);
        const up = matvec(W(`${p}.mlp.up_proj.weight`), n2, F, D);
        const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * (up[i] as number));
        const down = matvec(W(`${p}.mlp.down_proj.weight`), act, D, F);
        return r.map((y, i) => y + (down[i] as number));
      });
    }
    x.forEach((r, t) => {
      const logits = matvec(W(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), norm(r, W('model.norm.weight')), V, D);
      out.set(logits, (b * QT + t) * V);
    });
  }
  return out;
}

const i64 = (rows: number[][]): HostTensor => ({
  dtype: 'int64',
  dims: [rows.length, (rows[0] as number[]).length],
  data: BigInt64Array.from(rows.flat(), BigInt),
});
const qkFeeds = (): Record<string, HostTensor> => ({
  input_ids: i64(qkIds),
  attention_mask: i64(qkIds.map((r) => r.map(() => 1))),
  position_ids: i64(qkIds.map((r) => r.map((_, t) => t))),
});

describe('Qwen3 q/k norm (qwen3.qkNorm)', () => {
  const ws = weights(qwen3, 7);

  it('declares q_norm / k_norm [head_dim] per layer, after o_proj (HF registration order)', () => {
    const names = parameterShapes(qwen3).map((p) => p.name);
    const at = names.indexOf('model.layers.0.self_attn.q_norm.weight');
    expect(names.slice(at - 1, at + 2)).toEqual([
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.self_attn.q_norm.weight',
      'model.layers.0.self_attn.k_norm.weight',
    ]);
    expect(parameterShapes(qwen3).find((p) => p.name === 'model.layers.0.self_attn.k_norm.weight')?.shape).toEqual([qwen3.headDim]);
    expect(parameterShapes({ ...qwen3, qkNorm: false }).some((p) => p.name.includes('_norm.weight') && p.name.includes('self_attn'))).toBe(false);
  });

  it('logits on ORT CPU equal the float64 reference; without the norm they do not', async () => {
    const g = new Graph('qwen3');
    buildDecoder(g, qwen3, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: ws }, maxPositions: 16 });
    const out = await run(g, qkFeeds());
    const ref = reference(qwen3, ws);
    expect(out['logits']!.dims).toEqual([QB, QT, qwen3.vocabSize]);
    expect(out['logits']!.data).toBeAllclose(ref, QK_LOGITS);
    // The control: the same weights without q/k norm give other logits (the norm is applied, and matters).
    const plain = reference({ ...qwen3, qkNorm: false }, ws);
    const diff = Math.max(...ref.map((v, i) => Math.abs(v - (plain[i] as number))));
    expect(diff).toBeGreaterThan(100 * QK_LOGITS.atol);
  });

  it('gradients of q_norm / k_norm match central differences of the reference', async () => {
    const g = new Graph('qwen3-grad');
    const dec = buildDecoder(g, qwen3, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, maxPositions: 16, markOutputs: false });
    // loss = Σ logits · R for a fixed random R: every logit's gradient enters.
    const rng = Rng.fromSeed(3);
    const R = Float64Array.from({ length: QB * QT * qwen3.vocabSize }, () => rng.normal());
    const r = g.initializer('R', { dtype: 'float32', dims: [QB, QT, qwen3.vocabSize], data: Float32Array.from(R) });
    const loss = g.reduceSum(g.mul(dec.logits!, r), [0, 1, 2], false);
    const names = ['model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.k_norm.weight'];
    grad(
      g,
      loss,
      names.map((n) => dec.params[n]!),
    ).forEach((t, i) => g.output(t!, `grad.${names[i]}`));
    g.prune();
    const f = qkFeeds();
    for (const t of ws) f[t.name] = { dtype: 'float32', dims: t.shape, data: t.data };
    const out = await run(g, f);
    const lossOf = (w: ReadonlyArray<{ name: string; data: ArrayLike<number> }>): number =>
      reference(qwen3, w).reduce((s, v, i) => s + v * (R[i] as number), 0);
    const h = 1e-5;
    for (const name of names) {
      const idx = ws.findIndex((t) => t.name === name);
      const base = ws[idx] as NamedTensor;
      const fd = Array.from({ length: qwen3.headDim }, (_, j) => {
        const at = (d: number): number => {
          const data = Float64Array.from(base.data as Float32Array);
          data[j] = (data[j] as number) + d;
          return lossOf(ws.map((t, k) => (k === idx ? { name: t.name, data } : t)));
        };
        return (at(h) - at(-h)) / (2 * h);
      });
      expect(out[`grad.${name}`]!.data, name).toBeAllclose(fd, QK_GRAD);
    }
  });
});
