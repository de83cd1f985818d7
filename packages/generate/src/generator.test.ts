// The engine against no-cache references (test/reference.ts: one prompt at a time, whole sequence
// recomputed every step, latent math on the CPU) on the tiny-llama fixture, ORT CPU, fp32.
import { UserError } from '@latent-sft/core';
import { liveTensorCount } from '@latent-sft/runtime';
import { type WeightTensor, initParameters, loadCheckpoint, parameterShapes, tinyLlama, tinyQwen2 } from '@latent-sft/models';
import { liftWeights, serialize } from '@latent-sft/graph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FullRecompute, type Tiny, loadTiny, fixture } from '../test/reference.js';
import { type GenerateRequest, type GenerationResult, Generator } from './index.js';
import { type StepGraphOptions, buildStepGraph } from './graphs.js';

/** Engine (cached, batched, fp32 graph) vs reference (recomputed, B = 1) probabilities / embeddings. */
const CACHED = { atol: 2e-5, rtol: 0 };
const PROMPTS = [
  [17, 4, 99, 23, 8],
  [61, 5, 140, 7, 7, 33, 200, 12, 9],
  [3, 250, 77],
];
const EOS = [251, 252];

let tiny: Tiny;
let ref: FullRecompute;
let gen: Generator;

beforeAll(async () => {
  tiny = loadTiny();
  ref = await FullRecompute.create(tiny);
  gen = Generator.create({ config: tiny.config, weights: tiny.tensors });
});
afterAll(async () => {
  gen.release();
  await ref.release();
});

/** Row-steps the engine must compute after the prefill: one per fed soft embedding, `</think>` piece and answer token. */
function fedTokens(r: GenerationResult, endPieces: number): number {
  const answerFed = Math.max(0, r.outputIds.length - (r.finishReason === 'length' ? 1 : 0));
  return r.latentCount + (r.latentStop === null ? 0 : endPieces) + answerFed;
}

describe('explicit greedy decoding', () => {
  it('equals full recomputation for 3 prompts of different lengths, one stopping early, with no wasted work', async () => {
    const maxNew = 8;
    const free = await Promise.all(PROMPTS.map((p) => ref.greedy(p, maxNew, [])));
    // A stop id that prompt 1 emits at step ≥ 2 and prompt 0 never does.
    const stopId = free[1]!.ids.slice(2).find((t) => !free[0]!.ids.includes(t) && !free[1]!.ids.slice(0, 2).includes(t));
    expect(stopId).toBeDefined();
    const stopIds = [stopId as number, ...EOS];
    const expected = await Promise.all(PROMPTS.map((p) => ref.greedy(p, maxNew, stopIds)));
    expect(expected[1]!.finish).toBe('stop');
    expect(expected[0]!.finish).toBe('length');

    for (const batchSize of [3, 2]) {
      const { results, stats } = await gen.generate({
        prompts: PROMPTS,
        mode: { kind: 'explicit' },
        sampling: { kind: 'greedy' },
        maxNewTokens: maxNew,
        stopIds,
        batchSize,
      });
      results.forEach((r, i) => {
        expect(r.outputIds, `prompt ${i}, batch ${batchSize}`).toEqual(expected[i]!.ids);
        expect(r.finishReason).toBe(expected[i]!.finish);
        expect(r.stopId).toBe(expected[i]!.finish === 'stop' ? stopId : null);
        expect([r.latentCount, r.latentTopK, r.latentStop]).toEqual([0, [], null]);
      });
      // Finished rows are compacted away: the decode steps computed exactly the live rows.
      expect(stats.rowSteps).toBe(results.reduce((s, r) => s + fedTokens(r, 0), 0));
      expect(stats.batches).toBe(Math.ceil(3 / batchSize));
      if (batchSize === 3) expect(stats.compactions).toBeGreaterThan(0);
      // Greedy: only the [B] int64 argmax came down (no logits, no cache).
      expect(stats.bytesToHost).toBe((stats.rowSteps + PROMPTS.length) * 8);
      expect(stats.answerTokens).toBe(results.reduce((s, r) => s + r.outputIds.length, 0));
      // Up: the prefill (ids, use_soft: 9 B per prompt slot; seqlens_k, last_rows: 12 B per row), then
      // 13 B per row-step (id, flag, seqlens_k), the 4 B total length per step, and per batch and
      // compaction the step buffers' last_rows (8 B per row) and inv_temperature, per compaction the kept
      // rows' indices (8 B each); never the cache.
      const prefill = (batchSize === 3 ? 3 * 9 : 2 * 9 + 3) * 9 + 3 * 12; // batches by decreasing length: [9,5,3] or [9,5] + [3]
      expect(stats.bytesToDevice).toBeLessThanOrEqual(
        prefill + 13 * stats.rowSteps + 4 * stats.steps + (8 * 3 + 4) * stats.batches + (16 * 3 + 4) * stats.compactions,
      );
      expect(stats.bytesToDevice).toBeGreaterThanOrEqual(prefill + 13 * stats.rowSteps);
    }
  });

  it.each([
    ['untied llama', tinyLlama({ tieWordEmbeddings: false, vocabSize: 96 })],
    ['qwen2 (q/k/v bias)', tinyQwen2({ vocabSize: 96 })],
    // head_dim 16: GroupQueryAttention takes q/k/v packed, straight from their one Gemm (no padding, no Split).
    ['llama, head_dim 16 (packed q/k/v)', tinyLlama({ tieWordEmbeddings: false, vocabSize: 96, hiddenSize: 64 })],
    ['qwen2, head_dim 16 (packed q/k/v with bias)', tinyQwen2({ vocabSize: 96, hiddenSize: 64 })],
  ])('%s: equals full recomputation (GQA engine; fixed shapes with DecodeAttention and with GQA)', async (_name, config) => {
    const tensors = initParameters(config, { seed: 3 }).map((t) => ({ ...t, data: t.data.map((v) => v * 40) }));
    const other = await FullRecompute.create({ config, tensors, W: tensors.find((t) => t.name === 'model.embed_tokens.weight')!.data });
    const g = Generator.create({ config, weights: tensors, candidates: 8 });
    const fused = Generator.create({ config, weights: tensors, candidates: 8, fixedShapes: true, decodeAttention: 'fused' });
    // Fixed shapes with GroupQueryAttention (packed q/k/v at head_dim 16).
    const fixed = Generator.create({ config, weights: tensors, candidates: 8, fixedShapes: true });
    try {
      const prompts = PROMPTS.map((p) => p.map((id) => id % 96));
      const expected = await Promise.all(prompts.map((p) => other.greedy(p, 6, [])));
      const req: GenerateRequest = { prompts, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, maxNewTokens: 6, stopIds: [], batchSize: 3 };
      for (const engine of [g, fused, fixed]) {
        const { results } = await engine.generate(req);
        expect(results.map((r) => r.outputIds)).toEqual(expected.map((e) => e.ids));
      }
      expect(new Set(expected.flatMap((e) => e.ids)).size).toBeGreaterThan(3);
    } finally {
      g.release();
      fused.release();
      fixed.release();
      await other.release();
    }
  });

  it('a 16-bit engine reads a checkpoint folder straight into 16 bits: the same step graph, byte for byte, and the same outputs as from float32 tensors', async () => {
    const ck = loadCheckpoint(fixture);
    const t16: WeightTensor[] = parameterShapes(ck.config).map((p) => ({
      name: p.name,
      shape: [...p.shape],
      dtype: 'float16',
      data: ck.read16(p.name, 'float16'),
    }));
    const opts = { dtype: 'float16' as const, latentTopK: 10, candidates: 16 };
    expect(
      Buffer.from(serialize(buildStepGraph(ck.config, t16, opts)).model).equals(Buffer.from(serialize(buildStepGraph(ck.config, ck.readAll(), opts)).model)),
    ).toBe(true);
    const [a, b] = [
      Generator.create({ weights: fixture, dtype: 'float16', candidates: 16 }),
      Generator.create({ config: ck.config, weights: ck.readAll(), dtype: 'float16', candidates: 16 }),
    ];
    try {
      const req: GenerateRequest = { prompts: PROMPTS, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, maxNewTokens: 6, stopIds: [], batchSize: 3 };
      expect((await a.generate(req)).results).toEqual((await b.generate(req)).results);
    } finally {
      a.release();
      b.release();
    }
    // 16-bit bits of another dtype than the graph's are refused in one line.
    expect(() => buildStepGraph(ck.config, t16, { ...opts, dtype: 'float32' })).toThrow(UserError);
  });

  it('honours maxNewTokens = 0 and a checkpoint folder as weights', async () => {
    const g2 = Generator.create({ weights: fixture, candidates: 16 });
    try {
      const { results } = await g2.generate({
        prompts: PROMPTS,
        mode: { kind: 'explicit' },
        sampling: { kind: 'greedy' },
        maxNewTokens: 0,
        stopIds: [],
        batchSize: 3,
      });
      expect(results.map((r) => [r.outputIds, r.finishReason])).toEqual(PROMPTS.map(() => [[], 'length']));
      const one = await g2.generate({
        prompts: [PROMPTS[2]!],
        mode: { kind: 'explicit' },
        sampling: { kind: 'greedy' },
        maxNewTokens: 5,
        stopIds: [],
        batchSize: 1,
      });
      expect(one.results[0]!.outputIds).toEqual((await ref.greedy(PROMPTS[2]!, 5, [])).ids);
    } finally {
      g2.release();
    }
  });
});

describe('latent reasoning', () => {
  const k = 10;
  const opts = (endId: number, maxLatent: number) => ({ k, maxLatent, endId, endIds: [endId, 7, 9], maxNew: 5, stopIds: EOS });
  const request = (endId: number, maxLatent: number, batchSize: number): GenerateRequest => ({
    prompts: PROMPTS,
    mode: { kind: 'latent', topK: k, maxLatent, latentEndIds: [endId, 7, 9], latentEndId: endId },
    sampling: { kind: 'greedy' },
    maxNewTokens: 5,
    stopIds: EOS,
    batchSize,
    recordLatentEmbeddings: true,
  });

  async function checkAgainstReference(endId: number, maxLatent: number): Promise<Array<{ count: number; stop: string }>> {
    const expected = await Promise.all(PROMPTS.map((p) => ref.latent(p, opts(endId, maxLatent))));
    for (const batchSize of [3, 2]) {
      const { results, stats } = await gen.generate(request(endId, maxLatent, batchSize));
      results.forEach((r, i) => {
        const e = expected[i]!;
        const at = `prompt ${i}, batch ${batchSize}`;
        expect(r.latentCount, at).toBe(e.count);
        expect(r.latentStop, at).toBe(e.stop);
        expect(
          r.latentTopK.map((s) => s.ids),
          at,
        ).toEqual(e.topk.map((s) => s.ids));
        expect(
          r.latentTopK.flatMap((s) => s.probs),
          at,
        ).toBeAllclose(
          e.topk.flatMap((s) => s.probs),
          CACHED,
        );
        // The soft embedding fed at each step is softEmbeddingTopK of that step's logits.
        expect(r.latentEmbeddings!.length, at).toBe(e.count);
        r.latentEmbeddings!.forEach((z, t) => expect(z, `${at}, latent ${t}`).toBeAllclose(e.zs[t]!, CACHED));
        expect(r.outputIds, at).toEqual(e.answer);
        expect(r.finishReason, at).toBe(e.finish);
      });
      expect(stats.rowSteps).toBe(results.reduce((s, r) => s + fedTokens(r, 3), 0));
      expect(stats.latentTokens).toBe(results.reduce((s, r) => s + r.latentCount, 0));
      expect(stats.forcedTokens).toBe(3 * PROMPTS.length);
    }
    return expected.map((e) => ({ count: e.count, stop: e.stop }));
  }

  it('stops at a known step, records the top-k, feeds softEmbeddingTopK and answers as the reference', async () => {
    // Free-running argmaxes of prompt 0; the end id is the first new one from latent check 2 on.
    const free = await ref.latent(PROMPTS[0]!, opts(-1, 8));
    const s = free.argmaxes.findIndex((a, t) => t >= 2 && !free.argmaxes.slice(0, t).includes(a));
    expect(s).toBeGreaterThanOrEqual(2);
    const got = await checkAgainstReference(free.argmaxes[s]!, 6);
    expect(got[0]).toEqual({ count: s, stop: 'end' });
    expect(got.some((g) => g.stop === 'max' && g.count === 6)).toBe(true);
  });

  it('handles m = 0: the first latent check already gives the end id', async () => {
    const free = await ref.latent(PROMPTS[0]!, opts(-1, 0));
    const got = await checkAgainstReference(free.argmaxes[0]!, 8);
    expect(got[0]).toEqual({ count: 0, stop: 'end' });
  });

  it('handles maxLatent = 0 (no soft embedding at all)', async () => {
    const got = await checkAgainstReference(255, 0);
    expect(got).toEqual(PROMPTS.map(() => ({ count: 0, stop: 'max' })));
  });
});

describe('fixed shapes (the CUDA-graph decode path, on the CPU)', () => {
  /** 3 prompts in latent mode, greedy, the latent stop at the reference's third argmax of the first prompt. */
  async function latentRequest(): Promise<GenerateRequest> {
    const free = await ref.latent(PROMPTS[0]!, { k: 10, maxLatent: 8, endId: -1, endIds: [-1], maxNew: 5, stopIds: EOS });
    const endId = free.argmaxes[2]!;
    return {
      prompts: PROMPTS,
      mode: { kind: 'latent', topK: 10, maxLatent: 6, latentEndIds: [endId, 7, 9], latentEndId: endId },
      sampling: { kind: 'greedy' },
      maxNewTokens: 5,
      stopIds: EOS,
      batchSize: 3,
    };
  }
  /** The same latent top-k ids, answers and finish reasons as `want`, probabilities within CACHED. */
  function expectSameLatent(got: { results: GenerationResult[] }, want: { results: GenerationResult[] }): void {
    expect(got.results.map((r) => [r.latentTopK.map((t) => t.ids), r.outputIds, r.finishReason])).toEqual(
      want.results.map((r) => [r.latentTopK.map((t) => t.ids), r.outputIds, r.finishReason]),
    );
    expect(got.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs))).toBeAllclose(
      want.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs)),
      CACHED,
    );
  }

  it('the fixed-shape step graph computes no shapes at run time', () => {
    const g = buildStepGraph(tiny.config, tiny.tensors, { dtype: 'float32', latentTopK: 10, candidates: 16, shapes: { batch: 3, seq: 1, capacity: 32 } });
    expect(g.nodes.filter((n) => n.op === 'Shape' || n.op === 'Size')).toEqual([]);
    expect(g.nodes.filter((n) => n.op === 'GroupQueryAttention').length).toBe(tiny.config.numHiddenLayers);
    // Per layer one Gemm for q/k/v, o, gate/up and down (the projections of one input share a Gemm), plus the head.
    expect(g.nodes.filter((n) => n.op === 'Gemm').length).toBe(4 * tiny.config.numHiddenLayers + 1);
  });

  it('keeps finished rows idle in their slots and gives the same latent steps and answers as the compacting engine', async () => {
    const live = liveTensorCount();
    const fixed = Generator.create({ config: tiny.config, weights: tiny.tensors, fixedShapes: true });
    try {
      const req = await latentRequest();
      const [a, b] = [await gen.generate(req), await fixed.generate(req)];
      expectSameLatent(b, a);
      // Every decode step computes all 3 slots; the compacting engine only the live rows.
      expect(b.stats.compactions).toBe(0);
      expect(b.stats.rowSteps).toBe(3 * (b.stats.steps - 1));
      expect(a.stats.rowSteps).toBeLessThan(b.stats.rowSteps);
      // A second call of the same shape reuses the kept cache and step buffers (the memory a CUDA graph
      // was captured with) and gives the same results.
      const again = await fixed.generate(req);
      expect(again.results).toEqual(b.results);
    } finally {
      fixed.release();
    }
    expect(liveTensorCount()).toBe(live);
  });

  it("decodeAttention 'fused': latent_sft.DecodeAttention in every decode layer, the same latent steps, answers and probabilities as GroupQueryAttention", async () => {
    const L = tiny.config.numHiddenLayers;
    const opts = { dtype: 'float32' as const, latentTopK: 10, candidates: 16, decodeAttention: 'fused' as const };
    const count = (seq: number, op: string) =>
      buildStepGraph(tiny.config, tiny.tensors, { ...opts, shapes: { batch: 3, seq, capacity: 32 } }).nodes.filter((n) => n.op === op).length;
    expect([count(1, 'DecodeAttention'), count(1, 'GroupQueryAttention')]).toEqual([L, 0]);
    expect([count(8, 'DecodeAttention'), count(8, 'GroupQueryAttention')]).toEqual([0, L]); // a prefill shape keeps GQA
    const live = liveTensorCount();
    const fused = Generator.create({ config: tiny.config, weights: tiny.tensors, fixedShapes: true, decodeAttention: 'fused' });
    try {
      const req = await latentRequest();
      const [a, b] = [await gen.generate(req), await fused.generate(req)];
      expectSameLatent(b, a);
      // Explicit decoding to the length limit: every step of every row through the kernel.
      const explicit: GenerateRequest = {
        prompts: PROMPTS,
        mode: { kind: 'explicit' },
        sampling: { kind: 'greedy' },
        maxNewTokens: 12,
        stopIds: [],
        batchSize: 3,
      };
      const [c, d] = [await gen.generate(explicit), await fused.generate(explicit)];
      expect(d.results.map((r) => r.outputIds)).toEqual(c.results.map((r) => r.outputIds));
    } finally {
      fused.release();
    }
    expect(liveTensorCount()).toBe(live);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, decodeAttention: 'fused' })).toThrow(/fixedShapes/);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, fixedShapes: true, decodeAttention: 'flash' as 'gqa' })).toThrow(UserError);
  });

  it("the top K and log-sum-exp: latent_sft.VocabTopK by default (K ≤ 64), ONNX TopK with vocabTopK 'ops' or a larger K; both engines choose alike", async () => {
    const ops = (o: Partial<StepGraphOptions>) =>
      buildStepGraph(tiny.config, tiny.tensors, { dtype: 'float32', latentTopK: 10, candidates: 16, ...o }).nodes.map((n) => n.op);
    const count = (list: string[], op: string) => list.filter((o) => o === op).length;
    expect([count(ops({}), 'VocabTopK'), count(ops({}), 'TopK'), count(ops({}), 'ReduceSum')]).toEqual([1, 0, 0]);
    expect([count(ops({ vocabTopK: 'ops' }), 'VocabTopK'), count(ops({ vocabTopK: 'ops' }), 'TopK')]).toEqual([0, 1]);
    expect([count(ops({ candidates: 65 }), 'VocabTopK'), count(ops({ candidates: 65 }), 'TopK')]).toEqual([0, 1]);
    const other = Generator.create({ config: tiny.config, weights: tiny.tensors, vocabTopK: 'ops' });
    try {
      const req = await latentRequest();
      expectSameLatent(await other.generate(req), await gen.generate(req));
      const topP: GenerateRequest = { ...req, mode: { kind: 'explicit' }, sampling: { kind: 'top-p', temperature: 0.6, topP: 0.95, seed: 4 } };
      expect((await other.generate(topP)).results.map((r) => r.outputIds)).toEqual((await gen.generate(topP)).results.map((r) => r.outputIds));
    } finally {
      other.release();
    }
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, vocabTopK: 'radix' as 'ops' })).toThrow(UserError);
  });

  it('sharedWeights: the weights of 1 MiB and more are one set of inputs bound to every session (packed q/k/v and gate/up made once); the same choices and probabilities as initializers, dynamic and fixed shapes', async () => {
    // Large enough that the embedding, the packed projections and down_proj reach the 1 MiB threshold in float32.
    const config = tinyLlama({ hiddenSize: 256, intermediateSize: 1024, vocabSize: 1100, numHiddenLayers: 2 });
    const tensors = initParameters(config, { seed: 4 });
    const req: GenerateRequest = {
      prompts: PROMPTS.map((p) => p.map((id) => id % 1100)),
      mode: { kind: 'latent', topK: 10, maxLatent: 3, latentEndIds: [1099], latentEndId: 1099 },
      sampling: { kind: 'greedy' },
      maxNewTokens: 4,
      stopIds: [],
      batchSize: 3,
    };
    const g = buildStepGraph(config, tensors, { dtype: 'float32', latentTopK: 10, candidates: 16 });
    const isWeight = (n: string) => parameterShapes(config).some((p) => p.name === n);
    const lifted = liftWeights(g, 1 << 20, isWeight);
    // gate/up packed per layer (2 MiB); q/k/v (512 KiB) stays a Concat of initializers, which ORT folds.
    expect([...lifted.keys()].filter((n) => n.startsWith('packed(') && n.includes('gate_proj'))).toHaveLength(config.numHiddenLayers);
    expect(lifted.has('model.embed_tokens.weight')).toBe(true);
    expect([...g.initializers].every(([n, c]) => c.data.byteLength < 1 << 20 || !isWeight(n))).toBe(true);
    expect([...lifted.keys()].every((n) => isWeight(n) || n.startsWith('packed('))).toBe(true); // no RoPE table
    expect(g.nodes.some((n) => n.op === 'Concat' && n.inputs.some((x) => x.endsWith('gate_proj.weight')))).toBe(false);
    expect(g.nodes.some((n) => n.op === 'Concat' && n.inputs.some((x) => x.endsWith('q_proj.weight')))).toBe(true);
    const live = liveTensorCount();
    const ref = Generator.create({ config, weights: tensors, candidates: 16 });
    try {
      const want = await ref.generate(req);
      expect(new Set(want.results.flatMap((r) => r.outputIds)).size).toBeGreaterThan(2);
      for (const fixedShapes of [false, true]) {
        const shared = Generator.create({ config, weights: tensors, candidates: 16, sharedWeights: true, fixedShapes });
        try {
          const got = await shared.generate(req);
          expect(got.results.map((r) => [r.latentTopK.map((t) => t.ids), r.outputIds])).toEqual(
            want.results.map((r) => [r.latentTopK.map((t) => t.ids), r.outputIds]),
          );
          expect(got.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs))).toBeAllclose(
            want.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs)),
            CACHED,
          );
        } finally {
          shared.release();
        }
      }
    } finally {
      ref.release();
    }
    expect(liveTensorCount()).toBe(live); // the shared weights are freed with the generator
  });

  it('refuses cudaGraph on the CPU and compact with fixed shapes, in one line', () => {
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, cudaGraph: true })).toThrow(UserError);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, fixedShapes: true, compact: true })).toThrow(/compact/);
  });
});

/** Weight scale of the float16 engine test: logits far enough apart that float16 makes float32's choices, small enough not to overflow. */
const SCALE_F16 = 8;

describe('16-bit compute', () => {
  it('the 16-bit step graph stores its weights in 16 bits and runs the fused RMSNorm and SwiGLU kernels', () => {
    const g = buildStepGraph(tiny.config, tiny.tensors, { dtype: 'float16', latentTopK: 10, candidates: 16 });
    const ops = g.nodes.map((n) => n.op);
    const L = tiny.config.numHiddenLayers;
    expect(ops.filter((o) => o === 'RMSNorm').length).toBe(2 * L + 1);
    expect(ops.filter((o) => o === 'SwiGLUPacked').length).toBe(L); // SwiGLU reading gate/up from their one Gemm
    expect(ops.filter((o) => o === 'ReduceMean' || o === 'Sigmoid')).toEqual([]);
    expect(g.value('model.layers.0.mlp.down_proj.weight').dtype).toBe('float16');
  });

  it("head_dim 16, float16 (packed q/k/v into GroupQueryAttention, SwiGLUPacked, VocabTopK): the float32 engine's greedy tokens, dynamic and fixed shapes", async () => {
    const config = tinyLlama({ hiddenSize: 64, tieWordEmbeddings: false, vocabSize: 96 });
    const tensors = initParameters(config, { seed: 3 }).map((t) => ({ ...t, data: t.data.map((v) => v * SCALE_F16) }));
    const req: GenerateRequest = {
      prompts: PROMPTS.map((p) => p.map((id) => id % 96)),
      mode: { kind: 'explicit' },
      sampling: { kind: 'greedy' },
      maxNewTokens: 6,
      stopIds: [],
      batchSize: 3,
    };
    const ref = Generator.create({ config, weights: tensors, candidates: 8 });
    try {
      const want = (await ref.generate(req)).results.map((r) => r.outputIds);
      expect(new Set(want.flat()).size).toBeGreaterThan(3);
      for (const fixedShapes of [false, true]) {
        const half = Generator.create({ config, weights: tensors, candidates: 8, dtype: 'float16', fixedShapes });
        try {
          expect((await half.generate(req)).results.map((r) => r.outputIds)).toEqual(want);
        } finally {
          half.release();
        }
      }
    } finally {
      ref.release();
    }
  });

  it('head_dim 16: no Split in the 16-bit step (q/k/v packed into GroupQueryAttention, gate/up read packed by SwiGLUPacked)', () => {
    const config = tinyLlama({ hiddenSize: 64 });
    const L = config.numHiddenLayers;
    const tensors = initParameters(config, { seed: 1 });
    for (const shapes of [undefined, { batch: 3, seq: 1, capacity: 32 }]) {
      const g = buildStepGraph(config, tensors, { dtype: 'float16', latentTopK: 10, candidates: 16, ...(shapes ? { shapes } : {}) });
      const gqa = g.nodes.filter((n) => n.op === 'GroupQueryAttention');
      expect(gqa.map((n) => [g.value(n.inputs[0]!).shape.at(-1), n.inputs[1], n.inputs[2]])).toEqual(Array(L).fill([(4 + 2 * 2) * 16, '', '']));
      expect(g.nodes.filter((n) => n.op === 'Split')).toEqual([]);
      expect(g.nodes.filter((n) => n.op === 'SwiGLUPacked').length).toBe(L);
    }
  });

  it('no ReduceMax over the vocabulary: the log-sum-exp takes its max from TopK (CUDA ReduceMax went through cuDNN, ~10 ms a step)', () => {
    for (const dtype of ['float32', 'float16'] as const) {
      const g = buildStepGraph(tiny.config, tiny.tensors, { dtype, latentTopK: 10, candidates: 16, vocabTopK: 'ops' });
      expect(g.nodes.filter((n) => n.op === 'ReduceMax')).toEqual([]);
    }
  });

  it('float16: the same latent choices and answer as float32, probabilities within 2e-3', async () => {
    const half = Generator.create({ config: tiny.config, weights: tiny.tensors, dtype: 'float16' });
    try {
      const req: GenerateRequest = {
        prompts: PROMPTS,
        mode: { kind: 'latent', topK: 10, maxLatent: 4, latentEndIds: [5], latentEndId: 5 },
        sampling: { kind: 'greedy' },
        maxNewTokens: 6,
        stopIds: [],
        batchSize: 3,
      };
      const [a, b] = [(await gen.generate(req)).results, (await half.generate(req)).results];
      expect(b.map((r) => [r.latentTopK.map((t) => t.ids[0]), r.outputIds])).toEqual(a.map((r) => [r.latentTopK.map((t) => t.ids[0]), r.outputIds]));
      expect(b.flatMap((r) => r.latentTopK.map((t) => t.probs[0]!))).toBeAllclose(
        a.flatMap((r) => r.latentTopK.map((t) => t.probs[0]!)),
        { atol: 2e-3, rtol: 0 },
      );
    } finally {
      half.release();
    }
  });
});

describe('top-p sampling', () => {
  const sample = (seed: number, topP = 0.95) => ({ kind: 'top-p' as const, temperature: 0.6, topP, seed });
  const latent = { kind: 'latent' as const, topK: 10, maxLatent: 6, latentEndIds: [81, 7], latentEndId: 81 };

  it('is reproducible per seed and row, whatever the batching; different seeds differ', async () => {
    const base = { prompts: PROMPTS, mode: latent, maxNewTokens: 12, stopIds: EOS };
    const a = await gen.generate({ ...base, sampling: sample(7), batchSize: 3 });
    const b = await gen.generate({ ...base, sampling: sample(7), batchSize: 1 });
    const c = await gen.generate({ ...base, sampling: sample(8), batchSize: 3 });
    // Batch composition changes float rounding (padding, GEMM blocking) but not the choices.
    const choices = (rs: GenerationResult[]) => rs.map((r) => [r.latentTopK.map((t) => t.ids), r.outputIds, r.finishReason]);
    expect(choices(b.results)).toEqual(choices(a.results));
    expect(b.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs))).toBeAllclose(
      a.results.flatMap((r) => r.latentTopK.flatMap((t) => t.probs)),
      { atol: 1e-6, rtol: 0 },
    );
    expect((await gen.generate({ ...base, sampling: sample(7), batchSize: 3 })).results).toEqual(a.results);
    expect(c.results.map((r) => r.outputIds)).not.toEqual(a.results.map((r) => r.outputIds));
    // Latent steps never sample: same superposition whatever the seed.
    expect(c.results.map((r) => r.latentTopK)).toEqual(a.results.map((r) => r.latentTopK));
  });

  it('equals greedy when top_p is tiny', async () => {
    for (const mode of [{ kind: 'explicit' as const }, latent]) {
      const base = { prompts: PROMPTS, mode, maxNewTokens: 10, stopIds: EOS, batchSize: 3 };
      const greedy = await gen.generate({ ...base, sampling: { kind: 'greedy' } });
      const tiny = await gen.generate({ ...base, sampling: sample(3, 1e-9) });
      expect(tiny.results).toEqual(greedy.results);
    }
  });

  it('keeps the nucleus exact with few candidates (full-row fallback)', async () => {
    const few = Generator.create({ config: tiny.config, weights: tiny.tensors, candidates: 4 });
    const all = Generator.create({ config: tiny.config, weights: tiny.tensors, candidates: tiny.config.vocabSize });
    try {
      const req: GenerateRequest = { prompts: PROMPTS, mode: latent, sampling: sample(11), maxNewTokens: 10, stopIds: EOS, batchSize: 3 };
      const a = await few.generate(req);
      const b = await all.generate(req);
      expect(a.results).toEqual(b.results);
      expect(a.stats.fullRowFallbacks).toBeGreaterThan(0);
      expect(b.stats.fullRowFallbacks).toBe(0);
    } finally {
      few.release();
      all.release();
    }
  });
});

describe('bad input', () => {
  const ok: GenerateRequest = { prompts: PROMPTS, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, maxNewTokens: 2, stopIds: [], batchSize: 2 };
  const latent = { kind: 'latent' as const, topK: 10, maxLatent: 4, latentEndIds: [81, 7], latentEndId: 81 };
  const cases: Array<[string, Partial<GenerateRequest>, RegExp]> = [
    ['empty prompt', { prompts: [[1], []] }, /prompts\[1\].*non-empty/],
    ['id out of range', { prompts: [[1, 256]] }, /prompts\[0\]\[1\].*256 is not a token id in \[0, 256\)/],
    ['batch size 0', { batchSize: 0 }, /batchSize.*>= 1/],
    ['temperature 0', { sampling: { kind: 'top-p', temperature: 0, topP: 0.9, seed: 1 } }, /temperature.*> 0/],
    ['top_p 0', { sampling: { kind: 'top-p', temperature: 1, topP: 0, seed: 1 } }, /topP.*\(0, 1\]/],
    ['topK mismatch', { mode: { ...latent, topK: 5 } }, /mode.topK.*5 differs.*latentTopK 10/],
    ['end id not first', { mode: { ...latent, latentEndId: 7 } }, /latentEndId.*must be the first of latentEndIds \[81, 7\]/],
    ['no end ids', { mode: { ...latent, latentEndIds: [] } }, /latentEndIds.*at least one/],
    ['stop id out of range', { stopIds: [-1] }, /stopIds\[0\]/],
  ];
  it.each(cases)('%s → one-line UserError', async (_name, patch, msg) => {
    const err = await gen.generate({ ...ok, ...patch }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).not.toContain('\n');
  });

  it('rejects bad create options in one line', () => {
    expect(() => Generator.create({ config: tiny.config, weights: fixture })).toThrow(/config.*omit it/);
    expect(() => Generator.create({ weights: tiny.tensors })).toThrow(/config.*required/);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, latentTopK: 300 })).toThrow(/latentTopK.*\[1, 256\]/);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors.slice(1) })).toThrow(UserError);
    expect(() => Generator.create({ config: tiny.config, weights: tiny.tensors, sharedWeights: 'yes' as unknown as boolean })).toThrow(
      /sharedWeights.*true or false/,
    );
  });
});
