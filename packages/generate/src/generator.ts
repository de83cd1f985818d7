// One batched generation engine for explicit and latent reasoning (spec §5.1, §5.4) on ONNX Runtime,
// with the KV cache kept on the device. Three parts, one concern each:
//   rows.ts      the per-row state machine (latent → forcing `</think>` → answer → done; stop rules;
//                which rows to keep), pure host code, unit-tested without ORT (rows.test.ts);
//   kv-cache.ts  KvCache: owns the device state carried between steps (pasts, mask, pending latent
//                input z): creation, presents fed back as the next pasts, compaction, release;
//   step.ts      one step-graph run (graphs.ts) with typed outputs, and the downloads the rows need.
// This file validates requests, orders prompts into batches and runs the decode loop:
//   prefill (P = 0, left-padded prompts) → per step: run, cache.advance, download what rows.needs()
//   asks for, rows.decide → compact the cache when rows finished → next step's host inputs.
// No re-prefill: the cache of the prompt, the latent inputs and the `</think>` pieces is reused
// (spec §5.4). Finished rows are dropped from the batch at once, so no step computes a finished row.
// Prompts are batched in order of decreasing length (less padding); results come back in prompt
// order. Per step only the [B] argmax (greedy), [B, k] ids + probs (while some row is latent) and
// [B, K] candidate ids + logits + [B] lse (top-p answer rows) come down; the full [B, V] logits only
// when a row's nucleus is wider than the K candidates; the cache and the mask never do.
//
// Seam for issue 19 (static KV cache written in place, CUDA graphs, sampling on the device): replace
// KvCache (kv-cache.ts) and the step graph + step.ts; RowBatch (rows.ts) and this loop stay. With
// sampling on the device the StepHost arrays shrink to the chosen ids (+ the latent top-k).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputError } from '@latent-sft/core';
import { saveModel, serialize } from '@latent-sft/graph';
import { type ModelConfig, type NamedTensor, checkTensorsMatchConfig, loadCheckpoint } from '@latent-sft/models';
import { DeviceSession, type DeviceSessionOptions, type Device, transferStats } from '@latent-sft/runtime';
import { type GenerateDtype, buildCompactGraph, buildStepGraph, weightBytes } from './graphs.js';
import { KvCache, type LatentFeed } from './kv-cache.js';
import { type Decision, RowBatch, type StepInput } from './rows.js';
import { checkSampling } from './sampling.js';
import { downloadHeads, releaseHeads, runStep } from './step.js';
import type { GenerateRequest, GenerateStats, GenerationResult } from './types.js';

export type { GenerateMode, GenerateRequest, GenerateStats, GenerationResult, LatentStep } from './types.js';

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
    config: ModelConfig;
    device: Device;
    dtype: GenerateDtype;
    latentTopK: number;
    candidates: number;
    loadMs: number;
    step: DeviceSession;
    compact: DeviceSession;
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
    if (!['float32', 'float16', 'bfloat16'].includes(dtype))
      throw inputError({ field: 'dtype' }, `must be float32, float16 or bfloat16, got '${String(dtype)}'`);
    const device: Device = opts.device ?? { kind: 'cpu' };
    const latentTopK = opts.latentTopK ?? 10;
    const candidates = opts.candidates ?? 64;
    const g = buildStepGraph(config, tensors, {
      dtype,
      latentTopK,
      candidates,
      ...(opts.maxPositions !== undefined ? { maxPositions: opts.maxPositions } : {}),
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
      if (m.topK !== this.latentTopK)
        throw inputError({ field: 'mode.topK' }, `${m.topK} differs from the generator's latentTopK ${this.latentTopK} (set it in Generator.create)`);
      checkCount('mode.maxLatent', m.maxLatent, 0);
      if (m.latentEndIds.length === 0) throw inputError({ field: 'mode.latentEndIds' }, 'must hold the `</think>` ids (at least one)');
      checkIds('mode.latentEndIds', m.latentEndIds, V);
      if (m.latentEndIds[0] !== m.latentEndId)
        throw inputError({ field: 'mode.latentEndId' }, `${m.latentEndId} must be the first of latentEndIds [${m.latentEndIds.join(', ')}]`);
      if (m.feed !== undefined && m.feed !== 'soft' && m.feed !== 'hidden')
        throw inputError({ field: 'mode.feed' }, `must be 'soft' or 'hidden', got '${String(m.feed)}'`);
    } else if (m.kind !== 'explicit')
      throw inputError({ field: 'mode.kind' }, `must be 'explicit' or 'latent', got '${String((m as { kind: unknown }).kind)}'`);
    const longest = Math.max(...req.prompts.map((p) => p.length));
    const extra = (m.kind === 'latent' ? m.maxLatent + m.latentEndIds.length : 0) + req.maxNewTokens;
    const limit = this.config.maxPositionEmbeddings;
    if (longest + extra > limit)
      throw inputError({ field: 'maxNewTokens' }, `prompt (${longest}) + latent/forced/new tokens (${extra}) exceed max_position_embeddings ${limit}`);
  }

  /** Generates for every prompt (see the file header); results in prompt order. */
  async generate(req: GenerateRequest): Promise<{ results: GenerationResult[]; stats: GenerateStats }> {
    this.validate(req);
    const t0 = performance.now();
    const before = transferStats();
    const stats: GenerateStats = {
      batches: 0,
      steps: 0,
      promptTokens: 0,
      latentTokens: 0,
      forcedTokens: 0,
      answerTokens: 0,
      rowSteps: 0,
      compactions: 0,
      fullRowFallbacks: 0,
      prefillMs: 0,
      decodeMs: 0,
      totalMs: 0,
      bytesToDevice: 0,
      bytesToHost: 0,
    };
    const len = (i: number): number => req.prompts[i]?.length ?? 0;
    const order = req.prompts.map((_, i) => i).sort((a, b) => len(b) - len(a) || a - b);
    const results: GenerationResult[] = new Array<GenerationResult>(req.prompts.length);
    for (let s = 0; s < order.length; s += req.batchSize) {
      const chunk = order.slice(s, s + req.batchSize);
      const out = await this.runBatch(req, chunk, stats);
      for (const [j, idx] of chunk.entries()) {
        const r = out[j];
        if (r !== undefined) results[idx] = r;
      }
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
    const mode = req.mode;
    const prompts = indices.map((i) => req.prompts[i] ?? []);
    const rows = new RowBatch(
      {
        mode,
        sampling: req.sampling,
        maxNewTokens: req.maxNewTokens,
        stopIds: req.stopIds,
        padId: c.padTokenId ?? 0,
        vocabSize: c.vocabSize,
        latentTopK: this.latentTopK,
        candidates: this.K,
        hiddenSize: c.hiddenSize,
        record: req.recordLatentEmbeddings === true,
      },
      indices,
      prompts,
    );
    const feed: LatentFeed = mode.kind === 'latent' && mode.feed === 'hidden' ? 'hidden' : 'soft';
    stats.promptTokens += prompts.reduce((n, p) => n + p.length, 0);
    const s = this.step;
    const nL = c.numHiddenLayers;
    const prefill = rows.prefill();
    const invT = req.sampling.kind === 'top-p' ? 1 / req.sampling.temperature : 1;
    // The batch's device state is freed at the end of the call, also when a step throws.
    using invTemp = s.upload({ dtype: 'float32', dims: [1], data: new Float32Array([invT]) });
    using binding = s.createBinding();
    using cache = KvCache.create(s, this.compact, c, prefill.B, prefill.mask);
    {
      let input: StepInput = prefill;
      for (let first = true; ; first = false) {
        const tStep = performance.now();
        const { heads, carry } = await runStep(s, binding, input, cache, invTemp, nL);
        stats.steps++;
        if (!first) stats.rowSteps += input.B;
        let decision: Decision;
        try {
          cache.advance(carry, feed);
          decision = rows.decide(downloadHeads(heads, rows.needs(), cache), stats);
        } finally {
          releaseHeads(heads);
        }
        if (first) stats.prefillMs += performance.now() - tStep;
        else stats.decodeMs += performance.now() - tStep;
        if (decision.next === null) break;
        const tCompact = performance.now();
        if (decision.keep.length < input.B) {
          cache.compact(decision.keep);
          stats.compactions++;
        }
        input = decision.next;
        stats.decodeMs += performance.now() - tCompact;
      }
    }
    return rows.results();
  }
}
