// One batched generation engine for explicit and latent reasoning (spec §5.1, §5.4) on ONNX Runtime,
// with the KV cache kept on the device.
//
// Per batch: one prefill of the left-padded prompts (P = 0) through the step graph (graphs.ts), then
// one column per step for every live row. Each row runs its own phase machine:
//   latent   the last logits' argmax (= top_ids[0]) is checked: == latentEndId, or maxLatent soft
//            embeddings already fed → go to 'forcing' (this step's z is discarded, spec §5.1);
//            otherwise record the top-k (ids, probs) and feed z = soft_next, which stays on the device
//            (feed 'hidden', the "- Hidden State" ablation: z = hidden_next, the step's own final normed
//            hidden state; same stop rule, and the recorded top-k still comes from the logits).
//   forcing  feed the latentEndIds one per step (ordinary token embeddings; identical to feeding them
//            at once under causal attention); the logits after the last one start the answer.
//   answer   pick a token (greedy or seeded top-p); a stop id ends the row ('stop', not in outputIds),
//            maxNewTokens answer tokens end it ('length'); otherwise feed it.
// Explicit mode starts every row in 'answer'. No re-prefill: the cache of the prompt, the soft tokens
// and the `</think>` pieces is reused (spec §5.4). #L = number of soft embeddings fed; m = 0 works.
//
// Finished rows are dropped from the batch at once: a small Gather graph compacts the cache and the
// pending soft embeddings on the device (one cache copy per step with finishes), so no step computes a
// finished row. Prompts are batched in order of decreasing length (less padding); results come back
// in prompt order. Per step only the [B] argmax (greedy), [B, k] ids + probs (while some row is latent)
// and [B, K] candidate ids + logits + [B] lse (top-p answer rows) come down; the full [B, V] logits
// only when a row's nucleus is wider than the K candidates; the cache and the mask never do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, inputError } from '@latent-sft/core';
import { saveModel, serialize } from '@latent-sft/graph';
import { type ModelConfig, type NamedTensor, checkTensorsMatchConfig, loadCheckpoint } from '@latent-sft/models';
import {
  type DeviceBinding, DeviceSession, type DeviceSessionOptions, type DeviceTensor, type Device, transferStats,
} from '@latent-sft/runtime';
import { COMPACT, type GenerateDtype, STEP, buildCompactGraph, buildStepGraph, weightBytes } from './graphs.js';
import { type Sampling, checkSampling, nucleusSize, sampleNucleus, sortRow } from './sampling.js';

/** Options of Generator.create. */
export interface GeneratorOptions {
  /** The model config; required with tensors, taken from config.json (and must be omitted) with a checkpoint dir. */
  config?: ModelConfig;
  /** Parameters by HF name (float32), or an HF checkpoint folder (loadCheckpoint). */
  weights: readonly NamedTensor[] | string;
  /** Default CPU. */
  device?: Device;
  /** Compute dtype of the decoder body (default float32); cache and logits travel as float32. */
  dtype?: GenerateDtype;
  /** Width of the latent superposition, fixed per generator (default 10, spec §5.4 HEAD). */
  latentTopK?: number;
  /** Candidates per row brought to the host for top-p (default 64; the nucleus stays exact). */
  candidates?: number;
  /** Positions are limited to [0, maxPositions) (default the config's max_position_embeddings). */
  maxPositions?: number;
  /** ORT session options (threads, optimisation level, CUDA options); `device` comes from above. */
  session?: Omit<DeviceSessionOptions, 'device'>;
  /** Where a model over 1.5 GB is written as ONNX + external weights before loading (default the OS temp dir; removed after). */
  workDir?: string;
}

/** Explicit decoding, or latent reasoning then `</think>` then the answer. */
export type GenerateMode =
  | { kind: 'explicit' }
  | {
    kind: 'latent';
    /** Must equal the generator's latentTopK (the graph is built for it). */
    topK: number;
    /** Cap on the soft embeddings fed (#L ≤ maxLatent; spec: 128). */
    maxLatent: number;
    /** The full `</think>` id list, fed after the latent phase; its first id is latentEndId. */
    latentEndIds: readonly number[];
    /** The stop signal: the latent phase ends when the argmax equals it. */
    latentEndId: number;
    /**
     * What each latent step feeds as the next input embedding: 'soft' (default) the top-k soft
     * embedding Σ p_j W[id_j]; 'hidden' the model's own final normed hidden state of that step.
     */
    feed?: 'soft' | 'hidden';
  };

/** One generate call. */
export interface GenerateRequest {
  /** Token ids of each prompt (for latent mode, ending with the `<think>` ids). */
  prompts: ReadonlyArray<readonly number[]>;
  mode: GenerateMode;
  sampling: Sampling;
  /** Cap on answer tokens (outputIds), stop ids not counted. */
  maxNewTokens: number;
  /** End-of-sequence ids (eos / eot) that stop the answer. Not checked during the latent phase (spec §5.1). */
  stopIds: readonly number[];
  /** Sequences per batch. */
  batchSize: number;
  /** Also return each fed soft embedding z (float32 [D] per latent step; costs a [B, D] download per step). */
  recordLatentEmbeddings?: boolean;
}

/** The superposition of one latent step: top-k ids (descending) and their softmax probabilities. */
export interface LatentStep {
  ids: number[];
  probs: number[];
}

/** What one prompt produced. */
export interface GenerationResult {
  /** #L: soft embeddings fed (0 in explicit mode). */
  latentCount: number;
  /** Per latent step, the top-k of its logits (whose soft embedding was fed in soft mode; length latentCount). */
  latentTopK: LatentStep[];
  /** Why the latent phase ended: argmax == latentEndId, or maxLatent reached; null in explicit mode. */
  latentStop: 'end' | 'max' | null;
  /** The fed latent embeddings (soft embeddings or hidden states), when recordLatentEmbeddings. */
  latentEmbeddings?: Float32Array[];
  /** Answer tokens (after `</think>` in latent mode), without the stop id. */
  outputIds: number[];
  finishReason: 'stop' | 'length';
  /** The stop id that ended the answer, or null. */
  stopId: number | null;
}

/** Counters and timings of one generate call (CPU wall clock; ms). */
export interface GenerateStats {
  batches: number;
  /** Step-graph runs (prefills included). */
  steps: number;
  promptTokens: number;
  latentTokens: number;
  forcedTokens: number;
  answerTokens: number;
  /** Row-steps computed (Σ live rows per step after the prefill): no finished row is counted. */
  rowSteps: number;
  compactions: number;
  /** Rows whose top-p nucleus needed the full logits row. */
  fullRowFallbacks: number;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  bytesToDevice: number;
  bytesToHost: number;
}

type Phase = 'latent' | 'forcing' | 'answer';

interface Row {
  index: number;
  phase: Phase;
  forced: number[];
  nextPos: number;
  rng: Rng | null;
  res: GenerationResult;
  done: boolean;
}

const int64 = (values: ArrayLike<number>): BigInt64Array => BigInt64Array.from(Array.from(values), (v) => BigInt(v));

function checkIds(field: string, ids: readonly number[], V: number): void {
  for (const [j, id] of ids.entries()) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw inputError({ field: `${field}[${j}]` }, `${id} is not a token id in [0, ${V})`);
  }
}

function checkCount(field: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw inputError({ field }, `must be an integer >= ${min}, got ${n}`);
}

/** The batched generation engine (see the file header). Create once, call generate many times. */
export class Generator {
  readonly config: ModelConfig;
  readonly device: Device;
  readonly dtype: GenerateDtype;
  readonly latentTopK: number;
  readonly candidates: number;
  /** Step-graph session creation (build + serialize + load), ms. */
  readonly loadMs: number;
  private readonly step: DeviceSession;
  private readonly compact: DeviceSession;
  private readonly K: number;

  private constructor(o: {
    config: ModelConfig; device: Device; dtype: GenerateDtype; latentTopK: number; candidates: number; loadMs: number;
    step: DeviceSession; compact: DeviceSession;
  }) {
    this.config = o.config;
    this.device = o.device;
    this.dtype = o.dtype;
    this.latentTopK = o.latentTopK;
    this.candidates = o.candidates;
    this.loadMs = o.loadMs;
    this.step = o.step;
    this.compact = o.compact;
    this.K = Math.min(o.config.vocabSize, Math.max(o.latentTopK, o.candidates));
  }

  /** Builds the step and compaction graphs and loads them on the device. One-line errors for bad options. */
  static create(opts: GeneratorOptions): Generator {
    const t0 = performance.now();
    let config: ModelConfig;
    let tensors: readonly NamedTensor[];
    if (typeof opts.weights === 'string') {
      if (opts.config !== undefined) throw inputError({ field: 'config' }, 'omit it when weights is a checkpoint folder (its config.json is used)');
      const ck = loadCheckpoint(opts.weights);
      config = ck.config;
      tensors = ck.readAll();
    } else {
      if (opts.config === undefined) throw inputError({ field: 'config' }, 'required when weights are given as tensors');
      config = opts.config;
      tensors = opts.weights;
      checkTensorsMatchConfig(config, tensors, 'weights');
    }
    const dtype = opts.dtype ?? 'float32';
    if (!['float32', 'float16', 'bfloat16'].includes(dtype)) throw inputError({ field: 'dtype' }, `must be float32, float16 or bfloat16, got '${String(dtype)}'`);
    const device: Device = opts.device ?? { kind: 'cpu' };
    const latentTopK = opts.latentTopK ?? 10;
    const candidates = opts.candidates ?? 64;
    const g = buildStepGraph(config, tensors, {
      dtype, latentTopK, candidates, ...(opts.maxPositions !== undefined ? { maxPositions: opts.maxPositions } : {}),
    });
    const sessionOpts: DeviceSessionOptions = { ...opts.session, device };
    let step: DeviceSession;
    if (weightBytes(tensors) > 1.5e9) {
      // Over protobuf's 2 GiB limit with the graph: ONNX + external weights file, loaded by path.
      const dir = mkdtempSync(join(opts.workDir ?? tmpdir(), 'latent-sft-generate-'));
      try {
        const model = join(dir, 'step.onnx');
        saveModel(g, model, { externalData: { path: join(dir, 'step.weights'), thresholdBytes: 1024 } });
        step = DeviceSession.create(model, sessionOpts);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else step = DeviceSession.create(serialize(g).model, sessionOpts);
    const compact = DeviceSession.create(serialize(buildCompactGraph(config)).model, sessionOpts);
    return new Generator({ config, device, dtype, latentTopK, candidates, loadMs: performance.now() - t0, step, compact });
  }

  /** Frees both sessions. */
  release(): void {
    this.step.release();
    this.compact.release();
  }

  private validate(req: GenerateRequest): void {
    const V = this.config.vocabSize;
    if (!Array.isArray(req.prompts)) throw inputError({ field: 'prompts' }, 'must be an array of token id arrays');
    req.prompts.forEach((p, i) => {
      if (!Array.isArray(p) || p.length === 0) throw inputError({ field: `prompts[${i}]` }, 'must be a non-empty array of token ids');
      checkIds(`prompts[${i}]`, p, V);
    });
    checkCount('batchSize', req.batchSize, 1);
    checkCount('maxNewTokens', req.maxNewTokens, 0);
    checkIds('stopIds', req.stopIds, V);
    checkSampling(req.sampling);
    const m = req.mode;
    if (m.kind === 'latent') {
      if (m.topK !== this.latentTopK) throw inputError({ field: 'mode.topK' }, `${m.topK} differs from the generator's latentTopK ${this.latentTopK} (set it in Generator.create)`);
      checkCount('mode.maxLatent', m.maxLatent, 0);
      if (m.latentEndIds.length === 0) throw inputError({ field: 'mode.latentEndIds' }, 'must hold the `</think>` ids (at least one)');
      checkIds('mode.latentEndIds', m.latentEndIds, V);
      if (m.latentEndIds[0] !== m.latentEndId) throw inputError({ field: 'mode.latentEndId' }, `${m.latentEndId} must be the first of latentEndIds [${m.latentEndIds.join(', ')}]`);
      if (m.feed !== undefined && m.feed !== 'soft' && m.feed !== 'hidden') throw inputError({ field: 'mode.feed' }, `must be 'soft' or 'hidden', got '${String(m.feed)}'`);
    } else if (m.kind !== 'explicit') throw inputError({ field: 'mode.kind' }, `must be 'explicit' or 'latent', got '${String((m as { kind: unknown }).kind)}'`);
    const longest = Math.max(...req.prompts.map((p) => p.length));
    const extra = (m.kind === 'latent' ? m.maxLatent + m.latentEndIds.length : 0) + req.maxNewTokens;
    const limit = this.config.maxPositionEmbeddings;
    if (longest + extra > limit) throw inputError({ field: 'maxNewTokens' }, `prompt (${longest}) + latent/forced/new tokens (${extra}) exceed max_position_embeddings ${limit}`);
  }

  /** Generates for every prompt (see the file header); results in prompt order. */
  async generate(req: GenerateRequest): Promise<{ results: GenerationResult[]; stats: GenerateStats }> {
    this.validate(req);
    const t0 = performance.now();
    const before = transferStats();
    const stats: GenerateStats = {
      batches: 0, steps: 0, promptTokens: 0, latentTokens: 0, forcedTokens: 0, answerTokens: 0, rowSteps: 0, compactions: 0,
      fullRowFallbacks: 0, prefillMs: 0, decodeMs: 0, totalMs: 0, bytesToDevice: 0, bytesToHost: 0,
    };
    const order = req.prompts.map((_, i) => i).sort((a, b) => (req.prompts[b] as number[]).length - (req.prompts[a] as number[]).length || a - b);
    const results: GenerationResult[] = new Array<GenerationResult>(req.prompts.length);
    for (let s = 0; s < order.length; s += req.batchSize) {
      const chunk = order.slice(s, s + req.batchSize);
      const out = await this.runBatch(req, chunk, stats);
      chunk.forEach((idx, j) => {
        results[idx] = out[j] as GenerationResult;
      });
      stats.batches++;
    }
    const after = transferStats();
    stats.bytesToDevice = after.hostToDeviceBytes - before.hostToDeviceBytes;
    stats.bytesToHost = after.deviceToHostBytes - before.deviceToHostBytes;
    stats.totalMs = performance.now() - t0;
    return { results, stats };
  }

  private async runBatch(req: GenerateRequest, indices: readonly number[], stats: GenerateStats): Promise<GenerationResult[]> {
    const c = this.config;
    const [kvH, hd, D, nL] = [c.numKeyValueHeads, c.headDim, c.hiddenSize, c.numHiddenLayers];
    const K = this.K;
    const k = this.latentTopK;
    const mode = req.mode;
    const sampling = req.sampling;
    const topP = sampling.kind === 'top-p';
    const invT = sampling.kind === 'top-p' ? 1 / sampling.temperature : 1;
    const stop = new Set(req.stopIds);
    const record = req.recordLatentEmbeddings === true;
    const feedHidden = mode.kind === 'latent' && mode.feed === 'hidden';
    const prompts = indices.map((i) => req.prompts[i] as readonly number[]);
    const L = Math.max(...prompts.map((p) => p.length));
    const padId = c.padTokenId ?? 0;

    const rows: Row[] = indices.map((index, b) => {
      const n = (prompts[b] as readonly number[]).length;
      return {
        index, phase: mode.kind === 'latent' ? 'latent' : 'answer', forced: [], nextPos: n,
        rng: sampling.kind === 'top-p' ? Rng.fromSeed(sampling.seed).fork(index) : null,
        res: {
          latentCount: 0, latentTopK: [], latentStop: null, ...(record && mode.kind === 'latent' ? { latentEmbeddings: [] } : {}),
          outputIds: [], finishReason: 'length', stopId: null,
        },
        done: false,
      };
    });
    const all = [...rows];
    let live = rows;
    stats.promptTokens += prompts.reduce((s, p) => s + p.length, 0);

    // Prefill inputs.
    const s = this.step;
    let B = rows.length;
    let T = L;
    let ids = int64(prompts.flatMap((p) => [...Array<number>(L - p.length).fill(padId), ...p]));
    let useSoft = new Uint8Array(B * T);
    let positions = int64(prompts.flatMap((p) => [...Array<number>(L - p.length).fill(0), ...p.map((_, j) => j)]));
    let soft: DeviceTensor = s.alloc('float32', [B, 1, D]);
    // Left padding; afterwards the graph appends the column of ones itself (attention_mask_next).
    let mask: DeviceTensor = s.upload({ dtype: 'int64', dims: [B, L], data: int64(prompts.flatMap((p) => [...Array<number>(L - p.length).fill(0), ...p.map(() => 1)])) });
    let past: DeviceTensor[] = [];
    for (let i = 0; i < nL; i++) past.push(s.alloc('float32', [B, kvH, 0, hd]), s.alloc('float32', [B, kvH, 0, hd]));
    const invTemp = s.upload({ dtype: 'float32', dims: [1], data: new Float32Array([invT]) });
    const binding = s.createBinding();
    const outNames: string[] = [STEP.topIds, STEP.argmax, STEP.latentIds, STEP.topLogits, STEP.lse, STEP.softProbs, STEP.softNext, STEP.hiddenNext, STEP.lastLogits, STEP.maskNext];
    for (let i = 0; i < nL; i++) outNames.push(STEP.presentKey(i), STEP.presentValue(i));

    try {
      for (let first = true; ; first = false) {
        const tStep = performance.now();
        const inputs: DeviceTensor[] = [
          s.upload({ dtype: 'int64', dims: [B, T], data: ids }),
          s.upload({ dtype: 'bool', dims: [B, T], data: useSoft }),
          s.upload({ dtype: 'int64', dims: [B, T], data: positions }),
        ];
        binding.bindInput(STEP.ids, inputs[0] as DeviceTensor).bindInput(STEP.useSoft, inputs[1] as DeviceTensor)
          .bindInput(STEP.positions, inputs[2] as DeviceTensor).bindInput(STEP.mask, mask)
          .bindInput(STEP.soft, soft).bindInput(STEP.invTemp, invTemp);
        for (let i = 0; i < nL; i++) binding.bindInput(STEP.pastKey(i), past[2 * i] as DeviceTensor).bindInput(STEP.pastValue(i), past[2 * i + 1] as DeviceTensor);
        for (const n of outNames) binding.bindOutputToDevice(n);
        await s.runAsync(binding);
        stats.steps++;
        if (!first) stats.rowSteps += B;
        const outs = binding.outputs();
        for (const t of inputs) t.release();
        for (const t of past) t.release();
        soft.release();
        mask.release();
        mask = outs[STEP.maskNext] as DeviceTensor;
        past = [];
        for (let i = 0; i < nL; i++) past.push(outs[STEP.presentKey(i)] as DeviceTensor, outs[STEP.presentValue(i)] as DeviceTensor);
        // The next latent input: the soft embedding, or the hidden state (the other one is dropped).
        soft = outs[feedHidden ? STEP.hiddenNext : STEP.softNext] as DeviceTensor;
        (outs[feedHidden ? STEP.softNext : STEP.hiddenNext] as DeviceTensor).release();

        // Bring down only what this step's decisions need.
        const anyLatent = live.some((r) => r.phase === 'latent');
        const anyAnswer = live.some((r) => r.phase !== 'latent');
        const topIds = topP && anyAnswer ? (outs[STEP.topIds] as DeviceTensor).download() as BigInt64Array : null;
        const topLogits = topP && anyAnswer ? (outs[STEP.topLogits] as DeviceTensor).download() as Float32Array : null;
        const lse = topP && anyAnswer ? (outs[STEP.lse] as DeviceTensor).download() as Float32Array : null;
        const argmaxes = !topP || anyLatent ? (outs[STEP.argmax] as DeviceTensor).download() as BigInt64Array : null;
        const latentIds = anyLatent ? (outs[STEP.latentIds] as DeviceTensor).download() as BigInt64Array : null;
        const softProbs = anyLatent ? (outs[STEP.softProbs] as DeviceTensor).download() as Float32Array : null;
        const softHost = anyLatent && record ? soft.download() as Float32Array : null;
        let fullLogits: Float32Array | null = null;
        const lastLogits = outs[STEP.lastLogits] as DeviceTensor;

        const nextIds: number[] = [];
        const nextSoft: number[] = [];
        for (const [b, r] of live.entries()) {
          const res = r.res;
          if (r.phase === 'latent') {
            const lm = mode as Extract<GenerateMode, { kind: 'latent' }>;
            const argmax = Number((argmaxes as BigInt64Array)[b]);
            if (argmax === lm.latentEndId || res.latentCount === lm.maxLatent) {
              res.latentStop = argmax === lm.latentEndId ? 'end' : 'max';
              r.phase = 'forcing';
              r.forced = [...lm.latentEndIds];
            } else {
              res.latentTopK.push({
                ids: Array.from((latentIds as BigInt64Array).subarray(b * k, (b + 1) * k), Number),
                probs: Array.from((softProbs as Float32Array).subarray(b * k, (b + 1) * k)),
              });
              res.latentEmbeddings?.push((softHost as Float32Array).slice(b * D, (b + 1) * D));
              res.latentCount++;
              stats.latentTokens++;
              nextIds.push(padId);
              nextSoft.push(1);
              continue;
            }
          }
          if (r.phase === 'forcing') {
            const id = r.forced.shift();
            if (id !== undefined) {
              stats.forcedTokens++;
              nextIds.push(id);
              nextSoft.push(0);
              continue;
            }
            r.phase = 'answer';
          }
          // Answer: these logits choose the next answer token.
          if (res.outputIds.length >= req.maxNewTokens) {
            r.done = true;
            continue;
          }
          let id: number;
          if (!topP) id = Number((argmaxes as BigInt64Array)[b]);
          else {
            const rs = lse as Float32Array;
            const sp = sampling as Extract<Sampling, { kind: 'top-p' }>;
            const u = (r.rng as Rng).uniform();
            const n = nucleusSize(topLogits as Float32Array, b * K, K, rs[b] as number, invT, sp.topP, K === c.vocabSize);
            if (n > 0) id = Number((topIds as BigInt64Array)[b * K + sampleNucleus(topLogits as Float32Array, b * K, n, rs[b] as number, invT, u)]);
            else {
              fullLogits ??= lastLogits.download() as Float32Array;
              stats.fullRowFallbacks++;
              const row = sortRow(fullLogits.subarray(b * c.vocabSize, (b + 1) * c.vocabSize));
              const m = nucleusSize(row.logits, 0, c.vocabSize, rs[b] as number, invT, sp.topP, true);
              id = row.ids[sampleNucleus(row.logits, 0, m, rs[b] as number, invT, u)] as number;
            }
          }
          if (stop.has(id)) {
            res.finishReason = 'stop';
            res.stopId = id;
            r.done = true;
            continue;
          }
          res.outputIds.push(id);
          stats.answerTokens++;
          if (res.outputIds.length >= req.maxNewTokens) {
            r.done = true;
            continue;
          }
          nextIds.push(id);
          nextSoft.push(0);
        }
        for (const n of [STEP.topIds, STEP.argmax, STEP.latentIds, STEP.topLogits, STEP.lse, STEP.softProbs, STEP.lastLogits]) (outs[n] as DeviceTensor).release();
        if (first) stats.prefillMs += performance.now() - tStep;
        else stats.decodeMs += performance.now() - tStep;

        const keep = live.map((r, b) => (r.done ? -1 : b)).filter((b) => b >= 0);
        if (keep.length === 0) break;
        const tCompact = performance.now();
        if (keep.length < B) {
          [soft, mask, past] = this.compactRows(keep, soft, mask, past);
          stats.compactions++;
        }
        live = keep.map((b) => live[b] as Row);
        B = live.length;
        T = 1;
        ids = int64(nextIds);
        useSoft = Uint8Array.from(nextSoft);
        positions = int64(live.map((r) => r.nextPos++));
        stats.decodeMs += performance.now() - tCompact;
      }
    } finally {
      binding.release();
      invTemp.release();
      soft.release();
      mask.release();
      for (const t of past) t.release();
    }
    return all.map((r) => r.res);
  }

  /** Keeps batch rows `keep` of the soft embeddings, the mask and every cache tensor (device to device). */
  private compactRows(keep: readonly number[], soft: DeviceTensor, mask: DeviceTensor, past: readonly DeviceTensor[]): [DeviceTensor, DeviceTensor, DeviceTensor[]] {
    const s = this.compact;
    const nL = this.config.numHiddenLayers;
    const rows = s.upload({ dtype: 'int64', dims: [keep.length], data: int64(keep) });
    const b: DeviceBinding = s.createBinding();
    try {
      b.bindInput(COMPACT.rows, rows).bindInput(COMPACT.soft, soft).bindOutputToDevice(COMPACT.keptSoft)
        .bindInput(COMPACT.mask, mask).bindOutputToDevice(COMPACT.keptMask);
      for (let i = 0; i < nL; i++) {
        b.bindInput(COMPACT.key(i), past[2 * i] as DeviceTensor).bindInput(COMPACT.value(i), past[2 * i + 1] as DeviceTensor);
        b.bindOutputToDevice(COMPACT.keptKey(i)).bindOutputToDevice(COMPACT.keptValue(i));
      }
      s.run(b);
      const o = b.outputs();
      const kept: DeviceTensor[] = [];
      for (let i = 0; i < nL; i++) kept.push(o[COMPACT.keptKey(i)] as DeviceTensor, o[COMPACT.keptValue(i)] as DeviceTensor);
      soft.release();
      mask.release();
      for (const t of past) t.release();
      return [o[COMPACT.keptSoft] as DeviceTensor, o[COMPACT.keptMask] as DeviceTensor, kept];
    } finally {
      b.release();
      rows.release();
    }
  }
}
