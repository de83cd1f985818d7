// The row state machine without ORT: hand-written step outputs in, the exact sequence of fed
// tokens, kept rows, results and counters out.
import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { type RowConfig, type RowCounters, RowBatch, type StepHost, type StepInput } from './rows.js';

const i64 = (v: number[]): BigInt64Array => BigInt64Array.from(v, (x) => BigInt(x));
const counters = (): RowCounters => ({ latentTokens: 0, forcedTokens: 0, answerTokens: 0, fullRowFallbacks: 0 });
const noFull = (): Float32Array => {
  throw new Error('full logits fetched');
};
/** Only argmax (and optionally the latent top-k and embeddings) present. */
function host(argmax: number[], latent?: { ids: number[]; probs: number[]; emb?: number[] }): StepHost {
  return {
    argmax: i64(argmax),
    latentIds: latent ? i64(latent.ids) : null,
    softProbs: latent ? Float32Array.from(latent.probs) : null,
    latentEmbeddings: latent?.emb ? Float32Array.from(latent.emb) : null,
    topIds: null,
    topLogits: null,
    lse: null,
    fullLogits: noFull,
  };
}
const fed = (x: StepInput | null): { ids: number[]; soft: number[]; pos: number[] } | null =>
  x === null ? null : { ids: Array.from(x.ids, Number), soft: Array.from(x.useSoft), pos: Array.from(x.positions, Number) };

const BASE: Omit<RowConfig, 'mode' | 'sampling'> = {
  maxNewTokens: 3,
  stopIds: [99],
  padId: 0,
  vocabSize: 100,
  latentTopK: 2,
  candidates: 2,
  hiddenSize: 2,
  record: false,
};

describe('RowBatch', () => {
  it('prefill right-pads the prompts with pad ids and zero positions, and gives each length', () => {
    const rb = new RowBatch({ ...BASE, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' }, padId: 7 }, [4, 2], [[10, 11, 12], [20]]);
    const p = rb.prefill();
    expect([p.B, p.T]).toEqual([2, 3]);
    expect(Array.from(p.ids, Number)).toEqual([10, 11, 12, 20, 7, 7]);
    expect(Array.from(p.positions, Number)).toEqual([0, 1, 2, 0, 0, 0]);
    expect(p.lengths).toEqual([3, 1]);
    expect(Array.from(p.useSoft)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('explicit greedy: a stop id ends a row (not in outputIds), maxNewTokens ends the other; finished rows are dropped', () => {
    const rb = new RowBatch({ ...BASE, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' } }, [0, 1], [[1, 2, 3], [4]]);
    const c = counters();
    expect(rb.needs()).toEqual({ argmax: true, latent: false, latentEmbeddings: false, candidates: false });
    let d = rb.decide(host([30, 40]), c);
    expect(d.keep).toEqual([0, 1]);
    expect(fed(d.next)).toEqual({ ids: [30, 40], soft: [0, 0], pos: [3, 1] });
    d = rb.decide(host([31, 99]), c); // row 1 stops
    expect(d.keep).toEqual([0]);
    expect(fed(d.next)).toEqual({ ids: [31], soft: [0], pos: [4] });
    d = rb.decide(host([32]), c); // row 0 reaches maxNewTokens = 3
    expect(d).toEqual({ keep: [], next: null });
    expect(rb.results()).toEqual([
      { latentCount: 0, latentTopK: [], latentStop: null, outputIds: [30, 31, 32], finishReason: 'length', stopId: null },
      { latentCount: 0, latentTopK: [], latentStop: null, outputIds: [40], finishReason: 'stop', stopId: 99 },
    ]);
    expect(c).toEqual({ latentTokens: 0, forcedTokens: 0, answerTokens: 4, fullRowFallbacks: 0 });
  });

  it('maxNewTokens 0 ends every row at the prefill with no token', () => {
    const rb = new RowBatch({ ...BASE, maxNewTokens: 0, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' } }, [0], [[1]]);
    expect(rb.decide(host([5]), counters())).toEqual({ keep: [], next: null });
    expect(rb.results()[0]?.outputIds).toEqual([]);
    expect(rb.results()[0]?.finishReason).toBe('length');
  });

  it('latent: z fed until argmax == latentEndId or maxLatent, then the </think> ids one per step, then the answer', () => {
    const mode = { kind: 'latent', topK: 2, maxLatent: 2, latentEndIds: [50, 51], latentEndId: 50 } as const;
    const rb = new RowBatch(
      { ...BASE, record: true, mode, sampling: { kind: 'greedy' } },
      [0, 1],
      [
        [1, 2],
        [3, 4],
      ],
    );
    const c = counters();
    expect(rb.needs()).toEqual({ argmax: true, latent: true, latentEmbeddings: true, candidates: false });
    // Step 0 (prefill): both rows feed z.
    let d = rb.decide(host([7, 8], { ids: [7, 6, 8, 5], probs: [0.75, 0.25, 0.5, 0.5], emb: [1, 2, 3, 4] }), c);
    expect(fed(d.next)).toEqual({ ids: [0, 0], soft: [1, 1], pos: [2, 2] });
    // Step 1: row 0 stops on </think> (this step's z discarded); row 1 feeds z again.
    d = rb.decide(host([50, 9], { ids: [50, 7, 9, 8], probs: [0.9, 0.1, 0.6, 0.4], emb: [5, 6, 7, 8] }), c);
    expect(fed(d.next)).toEqual({ ids: [50, 0], soft: [0, 1], pos: [3, 3] });
    // Step 2: row 0 feeds the second </think> piece; row 1 hits maxLatent = 2 (argmax ignored).
    expect(rb.needs()).toEqual({ argmax: true, latent: true, latentEmbeddings: true, candidates: false });
    d = rb.decide(host([12, 13], { ids: [12, 1, 13, 1], probs: [0.5, 0.5, 0.5, 0.5], emb: [0, 0, 0, 0] }), c);
    expect(fed(d.next)).toEqual({ ids: [51, 50], soft: [0, 0], pos: [4, 4] });
    expect(rb.needs()).toEqual({ argmax: true, latent: false, latentEmbeddings: false, candidates: false });
    // Step 3: row 0's answer starts (token 60); row 1 feeds 51.
    d = rb.decide(host([60, 14]), c);
    expect(fed(d.next)).toEqual({ ids: [60, 51], soft: [0, 0], pos: [5, 5] });
    // Step 4: row 0 stops; row 1 answers 61.
    d = rb.decide(host([99, 61]), c);
    expect(d.keep).toEqual([1]);
    expect(fed(d.next)).toEqual({ ids: [61], soft: [0], pos: [6] });
    const [r0, r1] = rb.results();
    expect(r0).toEqual({
      latentCount: 1,
      latentTopK: [{ ids: [7, 6], probs: [0.75, 0.25] }],
      latentStop: 'end',
      latentEmbeddings: [Float32Array.from([1, 2])],
      outputIds: [60],
      finishReason: 'stop',
      stopId: 99,
    });
    expect(r1?.latentCount).toBe(2);
    expect(r1?.latentStop).toBe('max');
    expect(r1?.latentTopK).toEqual([
      { ids: [8, 5], probs: [0.5, 0.5] },
      { ids: [9, 8], probs: [0.6000000238418579, 0.4000000059604645] },
    ]);
    expect(r1?.latentEmbeddings).toEqual([Float32Array.from([3, 4]), Float32Array.from([7, 8])]);
    expect(r1?.outputIds).toEqual([61]);
    expect(c).toEqual({ latentTokens: 3, forcedTokens: 4, answerTokens: 2, fullRowFallbacks: 0 });
  });

  it('latent with maxLatent 0 goes straight to the </think> pieces', () => {
    const mode = { kind: 'latent', topK: 2, maxLatent: 0, latentEndIds: [50], latentEndId: 50 } as const;
    const rb = new RowBatch({ ...BASE, mode, sampling: { kind: 'greedy' } }, [0], [[1]]);
    const d = rb.decide(host([3], { ids: [3, 4], probs: [0.5, 0.5] }), counters());
    expect(fed(d.next)).toEqual({ ids: [50], soft: [0], pos: [1] });
    expect(rb.results()[0]?.latentStop).toBe('max');
    expect(rb.results()[0]?.latentCount).toBe(0);
  });

  it('top-p: the nucleus from the candidates, the full row when the candidates hold less than topP', () => {
    const seed = 11;
    const V = 4;
    const ln = Math.log;
    // Row 0: p = [.1, .4, .3, .2]; candidates (1, 2) hold .7 < .95 → full row, nucleus = all four.
    // Row 1: p = [.38, .01, .01, .6]; candidates (3, 0) hold .98 ≥ .95 → nucleus = both.
    const full = Float32Array.from([ln(0.1), ln(0.4), ln(0.3), ln(0.2), ln(0.38), ln(0.01), ln(0.01), ln(0.6)]);
    let fetched = 0;
    const h: StepHost = {
      argmax: null,
      latentIds: null,
      softProbs: null,
      latentEmbeddings: null,
      topIds: i64([1, 2, 3, 0]),
      topLogits: Float32Array.from([ln(0.4), ln(0.3), ln(0.6), ln(0.38)]),
      lse: Float32Array.from([0, 0]),
      fullLogits: () => {
        fetched++;
        return full;
      },
    };
    const rb = new RowBatch(
      { ...BASE, vocabSize: V, mode: { kind: 'explicit' }, sampling: { kind: 'top-p', temperature: 1, topP: 0.95, seed } },
      [5, 8],
      [[1], [2]],
    );
    expect(rb.needs()).toEqual({ argmax: false, latent: false, latentEmbeddings: false, candidates: true });
    const c = counters();
    const d = rb.decide(h, c);
    const u0 = Rng.fromSeed(seed).fork(5).uniform();
    const u1 = Rng.fromSeed(seed).fork(8).uniform();
    const want0 = u0 < 0.4 ? 1 : u0 < 0.7 ? 2 : u0 < 0.9 ? 3 : 0;
    const want1 = u1 * 0.98 < 0.6 ? 3 : 0;
    expect(fed(d.next)?.ids).toEqual([want0, want1]);
    expect(fetched).toBe(1);
    expect(c.fullRowFallbacks).toBe(1);
    expect(c.answerTokens).toBe(2);
  });

  it('a needed step output that was not downloaded is an error, not a wrong token', () => {
    const rb = new RowBatch({ ...BASE, mode: { kind: 'explicit' }, sampling: { kind: 'greedy' } }, [0], [[1]]);
    expect(() => rb.decide({ ...host([1]), argmax: null }, counters())).toThrow(/argmax/);
  });
});
