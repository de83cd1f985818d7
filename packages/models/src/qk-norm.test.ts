// Qwen3's q/k norm (config.qkNorm: RMSNorm over head_dim of every q and k head, before RoPE) on ORT CPU
// against a float64 JavaScript forward of the whole decoder written out loop by loop (embedding, RMSNorm,
// projections, per-head q/k norm, RoPE, GQA causal softmax attention, SwiGLU MLP, head), on a 1-layer tiny
// config with non-unit norm weights; plus the gradient of the q/k norm weights against central finite
// differences of that reference.
import { Rng } from '@latent-sft/core';
import { Graph, grad, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { type ModelConfig, ropeInvFreq, tinyQwen2 } from './config.js';
import { buildDecoder } from './decoder.js';
import type { NamedTensor } from './init.js';
import { parameterShapes } from './params.js';

/** float32 graph vs float64 reference (float32 RoPE tables and matmuls; measured max abs error ~1e-6). */
const LOGITS = { atol: 2e-5, rtol: 0 };
/** Graph gradient vs central differences of the float64 reference (step 1e-5: truncation ~1e-10). */
const GRAD = { atol: 1e-4, rtol: 1e-3 };

const config: ModelConfig = { ...tinyQwen2({ numHiddenLayers: 1, vocabSize: 32 }), attentionBias: false, qkNorm: true };
const [B, T] = [2, 5];
const ids = [[3, 17, 5, 29, 8], [11, 2, 30, 7, 19]];

/** Random weights (norm weights 1 ± 0.3, so the q/k norm weights matter). */
function weights(c: ModelConfig, seed: number): NamedTensor[] {
  const rng = Rng.fromSeed(seed);
  return parameterShapes(c).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    return { name: p.name, shape: p.shape, data: Float32Array.from({ length: n }, () => (p.init === 'ones' ? 1 + 0.3 * rng.normal() : 0.3 * rng.normal())) };
  });
}

/** The decoder in float64 JavaScript: logits [B·T·V] for `ids` (all tokens real, positions 0..T−1). */
function reference(c: ModelConfig, ws: ReadonlyArray<{ name: string; data: ArrayLike<number> }>): Float64Array {
  const W = (name: string): ArrayLike<number> => {
    const t = ws.find((x) => x.name === name);
    if (t === undefined) throw new Error(`reference: no weight ${name}`);
    return t.data;
  };
  const [D, H, kvH, hd, F, V] = [c.hiddenSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.intermediateSize, c.vocabSize];
  const matvec = (w: ArrayLike<number>, x: ArrayLike<number>, O: number, I: number): number[] =>
    Array.from({ length: O }, (_, o) => { let s = 0; for (let i = 0; i < I; i++) s += (w[o * I + i] as number) * (x[i] as number); return s; });
  const norm = (x: number[], w: ArrayLike<number>): number[] => {
    const r = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.rmsNormEps);
    return x.map((v, i) => (w[i] as number) * (v / r));
  };
  const inv = ropeInvFreq(c);
  const half = hd / 2;
  const rope = (x: number[], pos: number): number[] => x.map((v, j) => {
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
  const out = new Float64Array(B * T * V);
  for (let b = 0; b < B; b++) {
    const E = W('model.embed_tokens.weight');
    let x = (ids[b] as number[]).map((id) => Array.from({ length: D }, (_, i) => E[id * D + i] as number));
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
          const s = Array.from({ length: t + 1 }, (_, u) => (q[t] as number[][])[h]!.reduce((a, qv, j) => a + qv * (k[u] as number[][])[g]![j]!, 0) / Math.sqrt(hd));
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
      out.set(logits, (b * T + t) * V);
    });
  }
  return out;
}

const i64 = (rows: number[][]): HostTensor => ({ dtype: 'int64', dims: [rows.length, (rows[0] as number[]).length], data: BigInt64Array.from(rows.flat(), BigInt) });
const feeds = (): Record<string, HostTensor> => ({
  input_ids: i64(ids), attention_mask: i64(ids.map((r) => r.map(() => 1))), position_ids: i64(ids.map((r) => r.map((_, t) => t))),
});

async function run(g: Graph, f: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s = await Session.create(serialize(g).model);
  try {
    return await s.run(f);
  } finally {
    await s.release();
  }
}

describe('Qwen3 q/k norm (config.qkNorm)', () => {
  const ws = weights(config, 7);

  it('declares q_norm / k_norm [head_dim] per layer, after o_proj (HF registration order)', () => {
    const names = parameterShapes(config).map((p) => p.name);
    const at = names.indexOf('model.layers.0.self_attn.q_norm.weight');
    expect(names.slice(at - 1, at + 2)).toEqual(['model.layers.0.self_attn.o_proj.weight', 'model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.k_norm.weight']);
    expect(parameterShapes(config).find((p) => p.name === 'model.layers.0.self_attn.k_norm.weight')?.shape).toEqual([config.headDim]);
    expect(parameterShapes({ ...config, qkNorm: false }).some((p) => p.name.includes('_norm.weight') && p.name.includes('self_attn'))).toBe(false);
  });

  it('logits on ORT CPU equal the float64 reference; without the norm they do not', async () => {
    const g = new Graph('qwen3');
    buildDecoder(g, config, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: ws }, maxPositions: 16 });
    const out = await run(g, feeds());
    const ref = reference(config, ws);
    expect(out['logits']!.dims).toEqual([B, T, config.vocabSize]);
    expect(out['logits']!.data).toBeAllclose(ref, LOGITS);
    // The control: the same weights without q/k norm give other logits (the norm is applied, and matters).
    const plain = reference({ ...config, qkNorm: false }, ws);
    const diff = Math.max(...ref.map((v, i) => Math.abs(v - (plain[i] as number))));
    expect(diff).toBeGreaterThan(100 * LOGITS.atol);
  });

  it('gradients of q_norm / k_norm match central differences of the reference', async () => {
    const g = new Graph('qwen3-grad');
    const dec = buildDecoder(g, config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, maxPositions: 16, markOutputs: false });
    // loss = Σ logits · R for a fixed random R: every logit's gradient enters.
    const rng = Rng.fromSeed(3);
    const R = Float64Array.from({ length: B * T * config.vocabSize }, () => rng.normal());
    const r = g.initializer('R', { dtype: 'float32', dims: [B, T, config.vocabSize], data: Float32Array.from(R) });
    const loss = g.reduceSum(g.mul(dec.logits!, r), [0, 1, 2], false);
    const names = ['model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.k_norm.weight'];
    grad(g, loss, names.map((n) => dec.params[n]!)).forEach((t, i) => g.output(t!, `grad.${names[i]}`));
    g.prune();
    const f = feeds();
    for (const t of ws) f[t.name] = { dtype: 'float32', dims: t.shape, data: t.data };
    const out = await run(g, f);
    const lossOf = (w: ReadonlyArray<{ name: string; data: ArrayLike<number> }>): number => reference(config, w).reduce((s, v, i) => s + v * (R[i] as number), 0);
    const h = 1e-5;
    for (const name of names) {
      const idx = ws.findIndex((t) => t.name === name);
      const base = ws[idx] as NamedTensor;
      const fd = Array.from({ length: config.headDim }, (_, j) => {
        const at = (d: number): number => {
          const data = Float64Array.from(base.data as Float32Array);
          data[j] = (data[j] as number) + d;
          return lossOf(ws.map((t, k) => (k === idx ? { name: t.name, data } : t)));
        };
        return (at(h) - at(-h)) / (2 * h);
      });
      expect(out[`grad.${name}`]!.data, name).toBeAllclose(fd, GRAD);
    }
  });
});
