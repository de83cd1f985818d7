// The latent loop of the page on onnxruntime-web: the same per-row state machine as the Node engine
// (@latent-sft/generate's RowBatch: latent steps fed their top-k soft embedding until the argmax is
// the `</think>` signal or maxLatent is reached, then `</think>` forced, then the greedy answer), one
// prompt at a time (B = 1), with the KV cache carried as ORT tensors from one run to the next.
import type { GenerationResult, LatentStep } from '@latent-sft/generate';
import { RowBatch, type RowCounters, type StepInput } from '@latent-sft/generate/rows';
import type * as Ort from 'onnxruntime-web';
import type { WebManifest } from '../manifest.js';
import { WEB_STEP } from '../step-graph.js';

/** Options of one generation. */
export interface LatentRunOptions {
  maxLatent: number;
  maxNewTokens: number;
  /** Called after each latent step with the superposition just recorded (for the animated view). */
  onLatent?: (step: LatentStep, index: number) => void | Promise<void>;
}

/** A generation with its timings (ms, the browser's clock). */
export interface WebGeneration extends GenerationResult {
  steps: number;
  prefillMs: number;
  decodeMs: number;
}

/** Runs one prompt (token ids ending with `<think>`) through the web step graph. */
export async function generateLatent(
  ort: typeof Ort,
  session: Ort.InferenceSession,
  m: WebManifest,
  prompt: readonly number[],
  o: LatentRunOptions,
): Promise<WebGeneration> {
  const { layers, kvHeads, headDim, hiddenSize: D, vocabSize } = m.model;
  const k = m.latent.spec.topK;
  const rows = new RowBatch(
    {
      mode: {
        kind: 'latent',
        topK: k,
        maxLatent: o.maxLatent,
        latentEndIds: m.latent.endThinkIds,
        latentEndId: m.latent.endThinkIds[0] as number,
        feed: m.latent.feed,
      },
      sampling: { kind: 'greedy' },
      maxNewTokens: o.maxNewTokens,
      stopIds: m.stopIds,
      padId: m.padId,
      vocabSize,
      latentTopK: k,
      candidates: k,
      hiddenSize: D,
      record: false,
    },
    [0],
    [prompt],
  );
  const counters: RowCounters = { latentTokens: 0, forcedTokens: 0, answerTokens: 0, fullRowFallbacks: 0 };
  const prefill = rows.prefill();
  let mask = new BigInt64Array(prefill.T).fill(1n); // one row: no padding
  let input: StepInput = prefill;
  let z: Ort.Tensor = new ort.Tensor('float32', new Float32Array(D), [1, 1, D]);
  let past: Record<string, Ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    past[WEB_STEP.pastKey(i)] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    past[WEB_STEP.pastValue(i)] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  }
  const res = rows.results()[0] as GenerationResult;
  const timing = { steps: 0, prefillMs: 0, decodeMs: 0 };
  for (;;) {
    const t0 = performance.now();
    const out = await session.run({
      [WEB_STEP.ids]: new ort.Tensor('int64', input.ids, [input.B, input.T]),
      [WEB_STEP.useSoft]: new ort.Tensor('bool', input.useSoft, [input.B, input.T]),
      [WEB_STEP.positions]: new ort.Tensor('int64', input.positions, [input.B, input.T]),
      [WEB_STEP.mask]: new ort.Tensor('int64', mask, [1, mask.length]),
      [WEB_STEP.soft]: z,
      ...past,
    });
    const got = (name: string): Ort.Tensor => {
      const t = out[name];
      if (t === undefined) throw new Error(`the web step graph returned no '${name}'`);
      return t;
    };
    const before = res.latentCount;
    const decision = rows.decide(
      {
        argmax: got(WEB_STEP.argmax).data as BigInt64Array,
        latentIds: got(WEB_STEP.latentIds).data as BigInt64Array,
        softProbs: got(WEB_STEP.softProbs).data as Float32Array,
        latentEmbeddings: null,
        topIds: null,
        topLogits: null,
        lse: null,
        fullLogits: () => {
          throw new Error('greedy decoding never needs the full logits');
        },
      },
      counters,
    );
    if (timing.steps === 0) timing.prefillMs += performance.now() - t0;
    else timing.decodeMs += performance.now() - t0;
    timing.steps++;
    if (res.latentCount > before && o.onLatent !== undefined) await o.onLatent(res.latentTopK[before] as LatentStep, before);
    if (decision.next === null) break;
    z = got(WEB_STEP.nextEmbed);
    past = {};
    for (let i = 0; i < layers; i++) {
      past[WEB_STEP.pastKey(i)] = got(WEB_STEP.presentKey(i));
      past[WEB_STEP.pastValue(i)] = got(WEB_STEP.presentValue(i));
    }
    const grown = new BigInt64Array(mask.length + 1);
    grown.set(mask);
    grown[mask.length] = 1n;
    mask = grown;
    input = decision.next;
  }
  return { ...res, ...timing };
}
