// Phase 2 of the "- Hidden State" ablation on the random tiny Llama of test/fixtures.ts, float64 on ORT
// CPU, against independent references:
//   - the objective's loss / ce / mse equal a hand computation in TS over the outputs of a PLAIN decoder
//     graph (buildDecoder, inputs_embeds built on the host: W rows for the tokens, the teacher vectors
//     at the latent slots), i.e. the teacher vectors are what the slots are fed, and the student state of
//     latent t is the final normed hidden state at the position before it;
//   - the gradient of the MSE term (ceWeight 0) equals central finite differences of the loss;
//   - the hidden cache graph outputs the encoder states h whose h·Wᵀ top-k is the soft cache's top-k;
//   - collation / Gumbel refuse mixed or hidden teachers in one line.
import { Rng } from '@latent-sft/core';
import { Graph, serialize } from '@latent-sft/graph';
import { matrix, topKDistribution } from '@latent-sft/latent';
import { buildDecoder } from '@latent-sft/models';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { COMPRESS, PAD, V, config, examples, loraFeeds, weightFeeds } from '../test/fixtures.js';
import { handCrossEntropy, lossSession, nums } from '../test/helpers.js';
import {
  type HiddenTeacherLatents,
  type Phase2Example,
  type Phase2Teacher,
  buildLatentCacheGraph,
  collatePhase2,
  computeHiddenLatents,
  computeLatents,
  defaultLora,
  encoderConfig,
  perturbTeacher,
  phase1LoraDefaults,
  phase2Objective,
} from './index.js';
import { phase2HiddenTerms } from './phase2.js';

/** float64 graph vs fp64 host arithmetic (ORT "basic" optimisation: "all" fuses SiLU into a float-only op). */
const F64 = { rtol: 1e-10, atol: 1e-12 };
/** Central differences (h = 1e-5) of a float64 loss vs the graph gradient. */
const FD = { rtol: 1e-5, atol: 1e-9 };

const D = config.hiddenSize;
const lora = defaultLora('CAUSAL_LM', { r: 4, alpha: 8, dropout: 0 });

function hiddenTeacher(rng: Rng, m: number): HiddenTeacherLatents {
  return { kind: 'hidden', m, d: D, hidden: Float64Array.from({ length: m * D }, () => rng.normal()) };
}

const ex2 = (seed: number): Phase2Example<HiddenTeacherLatents>[] => {
  const rng = Rng.fromSeed(seed);
  return examples.map((e, i) => ({ ...e, teacher: hiddenTeacher(rng, i === 0 ? 3 : 2) }));
};

/** The objective (answer CE + klWeight · MSE) as a loss session in float64, ORT graph optimisations 'basic'. */
const objectiveSession = (ceWeight: number, klWeight: number, withGrads: boolean) =>
  lossSession(phase2Objective(config, { latent: 'hidden', lora, dtype: 'float64', ceWeight, klWeight }), withGrads, { graphOptimizationLevel: 'basic' });

const basic = (g: Graph) => Session.create(serialize(g).model, { graphOptimizationLevel: 'basic' });

describe('phase 2, hidden-state latents', () => {
  it('loss, ce and mse equal a hand computation over a plain decoder fed the teacher vectors at the slots', async () => {
    const exs = ex2(21);
    const batch = collatePhase2(exs, { padId: PAD, latent: 'hidden', vocabSize: V, hiddenSize: D, dtype: 'float64' });
    expect(batch.feeds.teacher_probs).toBeUndefined();
    expect(batch.feeds.teacher_hidden?.dims).toEqual([2, 3, D]);
    const weights = weightFeeds(3, '', 'float64');
    const adapter = loraFeeds(config, lora, 4, '', 'float64', true);
    const feeds = { ...weights, ...adapter, ...batch.feeds };

    // The objective (ce weight 1, mse weight 0.7) and its terms.
    const out = await (await objectiveSession(1, 0.7, false)).run(feeds);
    const [loss, ce, mse] = ['loss', 'metric.ce', 'metric.mse'].map((n) => nums(out[n])[0]!);

    // The reference: a plain decoder over inputs_embeds built here.
    const ref = new Graph('plain');
    buildDecoder(ref, config, {
      input: 'embeds',
      mask: 'padding',
      params: { kind: 'inputs', dtype: 'float64' },
      outputs: ['logits', 'hidden'],
      dtype: 'float64',
      lora: { config: lora, mode: 'eval' },
    });
    ref.prune();
    const [B, T] = batch.feeds.input_ids!.dims as [number, number];
    const ids = nums(batch.feeds.input_ids);
    const W = nums(weights['model.embed_tokens.weight']);
    const embeds = new Float64Array(B * T * D);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) embeds.set(W.slice(ids[b * T + t]! * D, (ids[b * T + t]! + 1) * D), (b * T + t) * D);
    exs.forEach((ex, b) => {
      for (let i = 0; i < ex.teacher.m; i++) embeds.set(ex.teacher.hidden.slice(i * D, (i + 1) * D), (b * T + batch.latentStart[b]! + i) * D);
    });
    const refFeeds: Record<string, HostTensor> = {
      ...weights,
      ...adapter,
      inputs_embeds: { dtype: 'float64', dims: [B, T, D], data: embeds },
      attention_mask: batch.feeds.attention_mask!,
      position_ids: batch.feeds.position_ids!,
    };
    const refOut = await (await basic(ref)).run(refFeeds);
    const logits = nums(refOut.logits);
    const hidden = nums(refOut.last_hidden_state);

    // CE: token mean of -log softmax(logits[b,p])[labels[b,p+1]].
    const ceRef = handCrossEntropy(logits, nums(batch.feeds.labels), B, T, V);
    expect(ce).toBeAllclose(ceRef, F64);
    // MSE: per example the mean over its latents and dims of (hidden[s+t-1] - teacher_t)^2, then the batch mean.
    let mseRef = 0;
    exs.forEach((ex, b) => {
      let acc = 0;
      for (let t = 0; t < ex.teacher.m; t++) {
        const row = (b * T + batch.latentStart[b]! + t - 1) * D;
        for (let j = 0; j < D; j++) acc += (hidden[row + j]! - ex.teacher.hidden[t * D + j]!) ** 2;
      }
      mseRef += acc / (ex.teacher.m * D);
    });
    mseRef /= B;
    expect(mse).toBeAllclose(mseRef, F64);
    expect(mse).toBeGreaterThan(0.1);
    expect(loss).toBeAllclose(ceRef + 0.7 * mseRef, F64);

    // The terms' student rows are the plain decoder's hidden rows before each slot.
    const tg = new Graph('terms');
    const obj = phase2Objective(config, { latent: 'hidden', lora, dtype: 'float64' });
    const tr = Object.fromEntries(Object.entries(obj.trainable).map(([k, s]) => [k, tg.input(k, s.dtype, s.shape)]));
    const ins = Object.fromEntries(Object.entries({ ...obj.frozen, ...obj.batch }).map(([k, s]) => [k, tg.input(k, s.dtype, s.shape)]));
    const terms = phase2HiddenTerms(tg, config, { lora, dtype: 'float64' }, tr, ins);
    tg.output(terms.student, 'student');
    tg.output(terms.hidden, 'hidden');
    tg.prune();
    const tout = await (await basic(tg)).run(feeds);
    expect(nums(tout.hidden)).toBeAllclose(hidden, F64);
    const student = nums(tout.student);
    exs.forEach((ex, b) => {
      for (let t = 0; t < ex.teacher.m; t++) {
        const row = (b * T + batch.latentStart[b]! - 1 + t) * D;
        expect(student.slice((b * 3 + t) * D, (b * 3 + t + 1) * D)).toBeAllclose(hidden.slice(row, row + D), F64);
      }
    });
  });

  it('the MSE gradient equals central finite differences (ceWeight 0)', async () => {
    const exs = ex2(22);
    const batch = collatePhase2(exs, { padId: PAD, latent: 'hidden', vocabSize: V, dtype: 'float64' });
    const s = await objectiveSession(0, 1, true);
    const trainable = Object.keys(phase2Objective(config, { latent: 'hidden', lora, dtype: 'float64' }).trainable);
    const fixed = { ...weightFeeds(5, '', 'float64'), ...batch.feeds };
    const params = loraFeeds(config, lora, 6, '', 'float64', true);
    const out = await s.run({ ...fixed, ...params });
    expect(nums(out.loss)[0]).toBeAllclose(nums(out['metric.mse'])[0]!, F64);
    const rng = Rng.fromSeed(8);
    const h = 1e-5;
    // A and B tensors of the first and last layer's projections, 3 entries each.
    const picked = trainable.filter((nm) => /layers\.(0|1)\.(self_attn\.q_proj|mlp\.down_proj)\.lora_[AB]/.test(nm));
    expect(picked.length).toBe(8);
    let nonzero = 0;
    for (const nm of picked) {
      const base = params[nm]!;
      const gr = nums(out[`${nm}.grad`]);
      for (let e = 0; e < 3; e++) {
        const j = rng.int(base.data.length);
        const at = (delta: number): Record<string, HostTensor> => {
          const data = Float64Array.from(base.data as Float64Array);
          data[j] = data[j]! + delta;
          return { ...params, [nm]: { ...base, data } };
        };
        const lp = nums((await s.run({ ...fixed, ...at(h) }, ['loss'])).loss)[0]!;
        const lm = nums((await s.run({ ...fixed, ...at(-h) }, ['loss'])).loss)[0]!;
        const fd = (lp - lm) / (2 * h);
        expect(gr[j], `${nm}[${j}]`).toBeAllclose(fd, FD);
        if (Math.abs(fd) > 1e-6) nonzero += 1;
      }
    }
    expect(nonzero).toBeGreaterThan(12);
  });

  it('collation and Gumbel refuse mismatched teachers in one line', () => {
    const hid = ex2(23);
    const soft: Phase2Example<Phase2Teacher>[] = examples.map((e) => ({
      ...e,
      teacher: { m: 1, k: 2, probs: Float64Array.from([0.5, 0.5]), indices: Int32Array.from([1, 2]) },
    }));
    expect(() => collatePhase2(hid, { padId: PAD, latent: 'soft-topk', vocabSize: V })).toThrow(
      /examples\[0\]\.teacher\.kind.*hidden-state latents, but the batch is collated for soft-topk/,
    );
    expect(() => collatePhase2(soft, { padId: PAD, latent: 'hidden', vocabSize: V })).toThrow(/distribution latents, but the batch is collated for hidden/);
    expect(() => collatePhase2(hid, { padId: PAD, latent: 'hidden', vocabSize: V, hiddenSize: D + 1 })).toThrow(/hidden size 16, but the batch uses 17/);
    expect(() => perturbTeacher(hid[0]!.teacher, { seed: 1, epoch: 0, index: 0, latentEndId: 3 })).toThrow(/not hidden states/);
  });
});

describe('hidden latent cache', () => {
  it('stores the encoder states h; h·Wᵀ gives the soft cache top-k', async () => {
    const encLora = phase1LoraDefaults({ r: 4, dropout: 0 }).encoder;
    const W = weightFeeds(1)['model.embed_tokens.weight']!;
    const enc = { ...weightFeeds(1, 'encoder.', 'float32', 1), ...loraFeeds(encoderConfig(config), encLora, 9, 'encoder.', 'float32', true) };
    const opts = { r: 2, compressId: COMPRESS, padId: PAD, ltim: true };
    const hiddenGraph = buildLatentCacheGraph(config, { k: 4, lora: encLora, latent: 'hidden' });
    expect(hiddenGraph.inputs.map((t) => t.name)).not.toContain('decoder.model.embed_tokens.weight');
    const hid = await computeHiddenLatents(await Session.create(serialize(hiddenGraph).model), enc, examples, opts);
    const soft = await computeLatents(
      await Session.create(serialize(buildLatentCacheGraph(config, { k: 4, lora: encLora })).model),
      { ...enc, 'decoder.model.embed_tokens.weight': W },
      examples,
      opts,
    );
    expect(hid.map((t) => [t.kind, t.m, t.d])).toEqual([
      ['hidden', 3, D],
      ['hidden', 2, D],
    ]);
    const w = nums(W);
    hid.forEach((t, b) => {
      const logits = new Float64Array(t.m * V);
      for (let i = 0; i < t.m; i++)
        for (let v = 0; v < V; v++) {
          let acc = 0;
          for (let j = 0; j < D; j++) acc += t.hidden[i * D + j]! * w[v * D + j]!;
          logits[i * V + v] = acc;
        }
      const ref = topKDistribution(matrix(logits, t.m, V), 4);
      expect(Array.from(soft[b]!.indices!)).toEqual(Array.from(ref.indices.data));
      expect(Array.from(soft[b]!.probs)).toBeAllclose(Array.from(ref.probs.data), { rtol: 1e-4, atol: 1e-6 });
    });
    expect(() => buildLatentCacheGraph(config, { k: 4, latent: 'nope' as 'hidden' })).toThrow(/latent.*'soft' or 'hidden'/);
  });
});
