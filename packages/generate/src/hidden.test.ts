// Latent mode with hidden-state feeding (the "- Hidden State" ablation) against a step-by-step reference
// loop built here from the plain forward graph (buildDecoder, outputs logits + hidden, no KV cache, one
// prompt at a time, the whole sequence recomputed every step): each latent step appends the last
// position's final normed hidden state as the next input embedding; the top-k recorded per step is
// topKDistribution of that step's logits; argmax == end id stops; then `</think>` pieces and greedy answer.
import { Graph, serialize } from '@latent-sft/graph';
import { matrix, topKDistribution } from '@latent-sft/latent';
import { buildDecoder } from '@latent-sft/models';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tiny, argmax, loadTiny } from '../test/reference.js';
import { type GenerateRequest, Generator } from './index.js';

/** Engine (cached, batched, fp32) vs reference (recomputed, B = 1). */
const CACHED = { atol: 2e-5, rtol: 0 };
const PROMPTS = [
  [17, 4, 99, 23, 8],
  [61, 5, 140, 7, 7, 33, 200, 12, 9],
  [3, 250, 77],
];
const EOS = [251, 252];
const K = 10;

let tiny: Tiny;
let plain: Session;
let gen: Generator;

beforeAll(async () => {
  tiny = loadTiny();
  const g = new Graph('plain_hidden');
  buildDecoder(g, tiny.config, { input: 'embeds', mask: 'padding', params: { kind: 'initializers', tensors: tiny.tensors }, outputs: ['logits', 'hidden'] });
  plain = await Session.create(serialize(g).model);
  gen = Generator.create({ config: tiny.config, weights: tiny.tensors, latentTopK: K });
});
afterAll(async () => {
  gen.release();
  await plain.release();
});

const i64 = (n: number, f: (i: number) => number): HostTensor => ({
  dtype: 'int64',
  dims: [1, n],
  data: BigInt64Array.from({ length: n }, (_, i) => BigInt(f(i))),
});

/** Last-position logits [V] and final normed hidden state [D] of the sequence of input rows. */
async function last(rows: readonly Float32Array[]): Promise<{ logits: Float32Array; hidden: Float32Array }> {
  const { vocabSize: V, hiddenSize: D } = tiny.config;
  const n = rows.length;
  const data = new Float32Array(n * D);
  rows.forEach((r, i) => data.set(r, i * D));
  const out = await plain.run({ inputs_embeds: { dtype: 'float32', dims: [1, n, D], data }, attention_mask: i64(n, () => 1), position_ids: i64(n, (i) => i) });
  const l = out.logits!.data as Float32Array;
  const h = out.last_hidden_state!.data as Float32Array;
  return { logits: l.slice(l.length - V), hidden: h.slice(h.length - D) };
}

const embed = (id: number): Float32Array => tiny.W.slice(id * tiny.config.hiddenSize, (id + 1) * tiny.config.hiddenSize);

/** The reference loop (see the file header). */
async function reference(prompt: readonly number[], o: { maxLatent: number; endId: number; endIds: readonly number[]; maxNew: number }) {
  const rows = prompt.map(embed);
  const topk: Array<{ ids: number[]; probs: number[] }> = [];
  const fed: Float32Array[] = [];
  const argmaxes: number[] = [];
  let stop: 'end' | 'max';
  for (;;) {
    const { logits, hidden } = await last(rows);
    const a = argmax(logits);
    argmaxes.push(a);
    if (a === o.endId || fed.length === o.maxLatent) {
      stop = a === o.endId ? 'end' : 'max';
      break;
    }
    const dist = topKDistribution(matrix(logits, 1, tiny.config.vocabSize), K);
    topk.push({ ids: Array.from(dist.indices.data), probs: Array.from(dist.probs.data) });
    fed.push(hidden);
    rows.push(hidden);
  }
  for (const id of o.endIds) rows.push(embed(id));
  const answer: number[] = [];
  let finish: 'stop' | 'length' = 'length';
  while (answer.length < o.maxNew) {
    const next = argmax((await last(rows)).logits);
    if (EOS.includes(next)) {
      finish = 'stop';
      break;
    }
    answer.push(next);
    rows.push(embed(next));
  }
  return { count: fed.length, topk, fed, argmaxes, stop, answer, finish };
}

describe('latent mode, hidden-state feeding', () => {
  const request = (endId: number, maxLatent: number, batchSize: number): GenerateRequest => ({
    prompts: PROMPTS,
    mode: { kind: 'latent', topK: K, maxLatent, latentEndIds: [endId, 7, 9], latentEndId: endId, feed: 'hidden' },
    sampling: { kind: 'greedy' },
    maxNewTokens: 5,
    stopIds: EOS,
    batchSize,
    recordLatentEmbeddings: true,
  });

  it('equals the step-by-step reference: 3 latent steps (maxLatent), and a stop on the end id, batched or not', async () => {
    const free = await Promise.all(PROMPTS.map((p) => reference(p, { maxLatent: 3, endId: -1, endIds: [], maxNew: 0 })));
    const seen = free.flatMap((f) => f.argmaxes);
    // (a) an end id no check produces: every prompt runs exactly 3 latent steps.
    const never = [255, 254, 253].find((id) => !seen.includes(id))!;
    // (b) the first argmax that is new at a check >= 1 of some prompt: that prompt stops on it ('end').
    const row = free.findIndex((f) => f.argmaxes.some((x, t) => t >= 1 && !f.argmaxes.slice(0, t).includes(x)));
    expect(row, `argmaxes ${JSON.stringify(free.map((f) => f.argmaxes))}`).toBeGreaterThanOrEqual(0);
    const f = free[row]!.argmaxes;
    const stopAt = f.findIndex((x, t) => t >= 1 && !f.slice(0, t).includes(x));
    for (const [endId, maxLatent] of [
      [never, 3],
      [f[stopAt]!, 6],
    ] as const) {
      const o = { maxLatent, endId, endIds: [endId, 7, 9], maxNew: 5 };
      const expected = await Promise.all(PROMPTS.map((p) => reference(p, o)));
      if (endId === never) expect(expected.map((e) => [e.count, e.stop])).toEqual(PROMPTS.map(() => [3, 'max']));
      else expect([expected[row]!.count, expected[row]!.stop]).toEqual([stopAt, 'end']);
      for (const batchSize of [3, 2]) {
        const { results, stats } = await gen.generate(request(endId, maxLatent, batchSize));
        results.forEach((r, i) => {
          const e = expected[i]!;
          const at = `end ${endId}, prompt ${i}, batch ${batchSize}`;
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
          expect(r.latentEmbeddings!.length, at).toBe(e.count);
          r.latentEmbeddings!.forEach((z, t) => expect(z, `${at}, latent ${t}`).toBeAllclose(e.fed[t]!, CACHED));
          expect(r.outputIds, at).toEqual(e.answer);
          expect(r.finishReason, at).toBe(e.finish);
        });
        expect(stats.latentTokens).toBe(results.reduce((s, r) => s + r.latentCount, 0));
      }
    }
  });

  it('differs from soft feeding after the first latent step (the fed vectors are not soft embeddings)', async () => {
    const soft = await gen.generate({ ...request(255, 3, 3), mode: { kind: 'latent', topK: K, maxLatent: 3, latentEndIds: [255, 7, 9], latentEndId: 255 } });
    const hid = await gen.generate(request(255, 3, 3));
    soft.results.forEach((s, i) => {
      const h = hid.results[i]!;
      expect(h.latentTopK[0]!.ids).toEqual(s.latentTopK[0]!.ids); // same prompt, same first logits
      expect(Array.from(h.latentEmbeddings![0]!)).not.toEqual(Array.from(s.latentEmbeddings![0]!));
    });
  });

  it('rejects an unknown feed in one line', async () => {
    const bad = {
      ...request(255, 3, 3),
      mode: { kind: 'latent' as const, topK: K, maxLatent: 3, latentEndIds: [255], latentEndId: 255, feed: 'logits' as 'soft' },
    };
    await expect(gen.generate(bad)).rejects.toThrow(/mode.feed.*'soft' or 'hidden'/);
  });
});
