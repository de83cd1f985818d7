// One batched generation engine for explicit and latent reasoning (spec §5.1, §5.4) on ONNX Runtime,
// with a static KV cache kept on the device. Three parts, one concern each:
//   rows.ts      the per-row state machine (latent → forcing `</think>` → answer → done; stop rules;
//                which rows to keep), pure host code, unit-tested without ORT (rows.test.ts);
//   kv-cache.ts  KvCache: owns the device state carried between steps (the fixed-capacity K/V buffers
//                written in place by GroupQueryAttention, the pending latent input z), compaction, release;
//   step.ts      StepBuffers: one step-graph run on fixed input/output tensors, and the downloads the rows need.
// This file validates requests, orders prompts into batches and runs the decode loop:
//   prefill (right-padded prompts; capacity = longest prompt + every latent/forced/answer step) → per
//   step: run, download what rows.needs() asks for, rows.decide → compact the cache when rows finished
//   (`compact`, default on) or keep the finished rows' slots idle (off: fixed shapes) → next step's inputs.
// No re-prefill: the cache of the prompt, the latent inputs and the `</think>` pieces is reused
// (spec §5.4). Prompts are batched in order of decreasing length (less padding); results come back in
// prompt order. Per step only the [B] argmax (greedy), [B, k] ids + probs (while some row is latent) and
// [B, K] candidate ids + logits + [B] lse (top-p answer rows) come down; the full [B, V] logits only
// when a row's nucleus is wider than the K candidates; the cache never does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputError } from '@latent-sft/core';
import { type Graph, liftWeights, saveModel, serialize } from '@latent-sft/graph';
import { type ModelConfig, type NamedTensor, type WeightTensor, checkTensorsMatchConfig, loadCheckpoint, parameterShapes } from '@latent-sft/models';
import {
  type DeviceBinding,
  DeviceSession,
  type DeviceSessionOptions,
  type DeviceTensor,
  type Device,
  type HostTensor,
  transferStats,
} from '@latent-sft/runtime';
import {
  type DecodeAttention,
  type GenerateDtype,
  type StepGraphOptions,
  type VocabTopKImpl,
  buildCompactGraph,
  buildStepGraph,
  weightBytes,
} from './graphs.js';
import { KvCache, type LatentFeed } from './kv-cache.js';
import { type Decision, RowBatch, type StepInput } from './rows.js';
import { checkSampling } from './sampling.js';
import { type SlotInput, StepBuffers, downloadHeads } from './step.js';
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
  /** Compute dtype of the decoder body and the KV cache (default float32); logits and z travel as float32. ORT's CPU attention kernel takes float32 only. */
  dtype?: GenerateDtype;
  /** Drop finished rows from the batch at once (default true, false with cudaGraph); false keeps every slot (fixed shapes per batch). */
  compact?: boolean;
  /**
   * Decode steps run on a second session built for the batch's fixed shapes (batch size, cache
   * capacity; no shape computation at run time). Implies compact: false. Default: cudaGraph.
   */
  fixedShapes?: boolean;
  /** CUDA only: the fixed-shape decode session replays a CUDA graph per step (ORT's enable_cuda_graph), no per-kernel launch cost on the host. Default false. */
  cudaGraph?: boolean;
  /**
   * The attention kernel of fixed-shape decode steps: 'gqa' ORT's GroupQueryAttention (default), 'fused'
   * latent_sft.DecodeAttention (one kernel per layer; CUDA: H / kvH ≤ 8, head size ≤ 128). Prefill and
   * compacting decode steps use GroupQueryAttention either way.
   */
  decodeAttention?: DecodeAttention;
  /**
   * How each step takes the top K (K = max(latentTopK, candidates)) and the log-sum-exp of the logits: 'fused'
   * latent_sft.VocabTopK, one pass over the vocabulary spread over many blocks (default; K ≤ 64), 'ops' ONNX
   * TopK and standard ops (what a larger K uses).
   */
  vocabTopK?: VocabTopKImpl;
  /** Width of the latent superposition, fixed per generator (default 10, spec §5.4 HEAD). */
  latentTopK?: number;
  /** Candidates per row brought to the host for top-p (default 64; the nucleus stays exact). */
  candidates?: number;
  /** Positions are limited to [0, maxPositions) (default the config's max_position_embeddings). */
  maxPositions?: number;
  /** ORT session options (threads, optimisation level, CUDA options); `device` comes from above. */
  session?: Omit<DeviceSessionOptions, 'device'>;
  /** Where a model over 1.5 GB is written as ONNX + external weights before loading (default the OS temp dir; removed after; not with sharedWeights). */
  workDir?: string;
  /**
   * The weights (every one of at least 1 MiB; the packed q/k/v and gate/up made once on the host) uploaded
   * once as device tensors bound to every session as inputs (graph.liftWeights), instead of initializers of
   * each session: the prefill and each fixed-shape decode session share one copy in device memory, and no
   * model goes through an external-data file on disk. Default: true on CUDA, false on the CPU (ORT's CPU
   * matrix products pre-pack constant weights).
   */
  sharedWeights?: boolean;
}

/** Weights of at least this many bytes are shared device inputs with sharedWeights (the norms stay initializers). */
const SHARED_MIN_BYTES = 1 << 20;

/** The model's parameter names (what sharedWeights lifts; the RoPE tables and other constants stay initializers). */
function isWeightOf(config: ModelConfig): (name: string) => boolean {
  const names = new Set(parameterShapes(config).map((p) => p.name));
  return (name) => names.has(name);
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
  /** Finished rows leave the batch at once (GeneratorOptions.compact). */
  readonly compactRows: boolean;
  /** Decode steps run on fixed-shape sessions (GeneratorOptions.fixedShapes), replaying CUDA graphs (cudaGraph). */
  readonly fixedShapes: boolean;
  readonly cudaGraph: boolean;
  private readonly step: DeviceSession;
  private readonly compact: DeviceSession;
  private readonly K: number;
  private readonly maxPositions: number;
  /** What the fixed-shape decode sessions are built from, and their states by `${B}x${C}x${feed}`. */
  private readonly build: { tensors: readonly WeightTensor[]; graph: StepGraphOptions; session: DeviceSessionOptions; workDir: string | undefined };
  private readonly fixed = new Map<string, FixedState>();
  /** sharedWeights: the weight inputs by name, bound to every session's binding (null: initializers). */
  private readonly weights: Map<string, DeviceTensor> | null;
  /** The weights are one set of device inputs shared by every session (GeneratorOptions.sharedWeights). */
  get sharedWeights(): boolean {
    return this.weights !== null;
  }

  private constructor(o: {
    config: ModelConfig;
    device: Device;
    dtype: GenerateDtype;
    latentTopK: number;
    candidates: number;
    loadMs: number;
    compactRows: boolean;
    fixedShapes: boolean;
    cudaGraph: boolean;
    maxPositions: number;
    build: Generator['build'];
    step: DeviceSession;
    compact: DeviceSession;
    weights: Map<string, DeviceTensor> | null;
  }) {
    this.weights = o.weights;
    this.compactRows = o.compactRows;
    this.fixedShapes = o.fixedShapes;
    this.cudaGraph = o.cudaGraph;
    this.maxPositions = o.maxPositions;
    this.build = o.build;
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
    const dtype = opts.dtype ?? 'float32';
    if (!['float32', 'float16', 'bfloat16'].includes(dtype))
      throw inputError({ field: 'dtype' }, `must be float32, float16 or bfloat16, got '${String(dtype)}'`);
    let config: ModelConfig;
    let tensors: readonly WeightTensor[];
    if (typeof opts.weights === 'string') {
      if (opts.config !== undefined) throw inputError({ field: 'config' }, 'omit it when weights is a checkpoint folder (its config.json is used)');
      const ck = loadCheckpoint(opts.weights);
      config = ck.config;
      // A 16-bit engine reads each weight straight into its dtype: no float32 copy of the model in host
      // memory (R1-Distill-Qwen-7B: 30 GB of float32 for the 15 GB of bf16 it keeps).
      tensors =
        dtype === 'float32'
          ? ck.readAll()
          : parameterShapes(config).map((p) => ({
              name: p.name,
              shape: [...p.shape],
              dtype: dtype as 'bfloat16' | 'float16',
              data: ck.read16(p.name, dtype as 'bfloat16' | 'float16'),
            }));
    } else {
      if (opts.config === undefined) throw inputError({ field: 'config' }, 'required when weights are given as tensors');
      config = opts.config;
      tensors = opts.weights;
      checkTensorsMatchConfig(config, opts.weights, 'weights');
    }
    const device: Device = opts.device ?? { kind: 'cpu' };
    if (device.kind === 'cpu' && dtype === 'bfloat16')
      throw inputError({ field: 'dtype' }, "bfloat16 needs the CUDA device (ONNX Runtime's CPU attention kernel takes float32 or float16)");
    const latentTopK = opts.latentTopK ?? 10;
    const candidates = opts.candidates ?? 64;
    const cudaGraph = opts.cudaGraph ?? false;
    if (cudaGraph && device.kind !== 'cuda') throw inputError({ field: 'cudaGraph' }, 'needs the CUDA device');
    const fixedShapes = opts.fixedShapes ?? cudaGraph;
    if (cudaGraph && !fixedShapes) throw inputError({ field: 'fixedShapes' }, 'must be true with cudaGraph');
    if (fixedShapes && opts.compact === true)
      throw inputError({ field: 'compact' }, 'must be false with fixedShapes / cudaGraph (a fixed-shape session keeps its batch size)');
    const decodeAttention = opts.decodeAttention ?? 'gqa';
    if (decodeAttention !== 'gqa' && decodeAttention !== 'fused')
      throw inputError({ field: 'decodeAttention' }, `must be 'gqa' or 'fused', got '${String(decodeAttention)}'`);
    if (decodeAttention === 'fused' && !fixedShapes) throw inputError({ field: 'decodeAttention' }, "'fused' needs fixedShapes (or cudaGraph)");
    const vocabTopK = opts.vocabTopK ?? 'fused';
    if (vocabTopK !== 'fused' && vocabTopK !== 'ops') throw inputError({ field: 'vocabTopK' }, `must be 'fused' or 'ops', got '${String(vocabTopK)}'`);
    const graph: StepGraphOptions = {
      dtype,
      latentTopK,
      candidates,
      decodeAttention,
      vocabTopK,
      ...(opts.maxPositions !== undefined ? { maxPositions: opts.maxPositions } : {}),
    };
    const shared = opts.sharedWeights ?? device.kind === 'cuda';
    if (typeof shared !== 'boolean') throw inputError({ field: 'sharedWeights' }, `must be true or false, got ${JSON.stringify(shared)}`);
    const sessionOpts: DeviceSessionOptions = { ...opts.session, device };
    const g = buildStepGraph(config, tensors, graph);
    const lifted = shared ? liftWeights(g, SHARED_MIN_BYTES, isWeightOf(config)) : null;
    const step = lifted !== null ? DeviceSession.create(serialize(g).model, sessionOpts) : loadStepSession(g, tensors, sessionOpts, opts.workDir);
    const weights = lifted !== null ? new Map<string, DeviceTensor>() : null;
    let compact: DeviceSession;
    try {
      for (const [n, c] of lifted ?? []) weights?.set(n, step.upload(c as HostTensor));
      compact = DeviceSession.create(serialize(buildCompactGraph(config, dtype)).model, sessionOpts);
    } catch (e) {
      for (const t of weights?.values() ?? []) t.release();
      step.release();
      throw e;
    }
    return new Generator({
      config,
      device,
      dtype,
      latentTopK,
      candidates,
      loadMs: performance.now() - t0,
      compactRows: fixedShapes ? false : (opts.compact ?? true),
      fixedShapes,
      cudaGraph,
      maxPositions: opts.maxPositions ?? config.maxPositionEmbeddings,
      build: { tensors, graph, session: sessionOpts, workDir: opts.workDir },
      step,
      compact,
      weights,
    });
  }

  /** Binds the shared weights (sharedWeights) to a binding of any of this generator's sessions. */
  private bindWeights(b: DeviceBinding): void {
    if (this.weights !== null) for (const [n, t] of this.weights) b.bindInput(n, t);
  }

  /**
   * The fixed-shape decode state for B rows, capacity C and a latent feed: its session, binding, KV
   * cache and step buffers, built on first use and kept until release(). Every batch of that shape
   * reuses the same device buffers, so a captured CUDA graph (cudaGraph) replays on the memory it was
   * captured with.
   */
  private fixedState(B: number, C: number, feed: LatentFeed): FixedState {
    const key = `${B}x${C}x${feed}`;
    let st = this.fixed.get(key);
    if (st === undefined) {
      const b = this.build;
      const g = buildStepGraph(this.config, b.tensors, { ...b.graph, shapes: { batch: B, seq: 1, capacity: C } });
      const opts = this.cudaGraph ? { ...b.session, cudaOptions: { ...b.session.cudaOptions, enable_cuda_graph: '1' } } : b.session;
      if (this.weights !== null) {
        // The same weights as the prefill graph's, already on the device: declared, not built again.
        const fresh = liftWeights(g, SHARED_MIN_BYTES, isWeightOf(this.config), new Set(this.weights.keys()));
        if (fresh.size > 0) throw new Error(`Generator: the decode graph has weights the prefill graph lacks: ${[...fresh.keys()].join(', ')}`);
      }
      const session = this.weights !== null ? DeviceSession.create(serialize(g).model, opts) : loadStepSession(g, b.tensors, opts, b.workDir);
      const made: Array<{ release(): void }> = [session];
      try {
        const binding = session.createBinding();
        made.push(binding);
        this.bindWeights(binding);
        const cache = KvCache.create(session, this.compact, this.config, B, C, this.dtype);
        made.push(cache);
        const bufs = new StepBuffers(session, B, this.latentTopK, this.K, this.config.vocabSize);
        st = { session, binding, cache, bufs };
      } catch (e) {
        for (const m of made.reverse()) m.release();
        throw e;
      }
      this.fixed.set(key, st);
    }
    return st;
  }

  /** Stops ORT's profiler of the step session and every decode session (`session.profilePrefix`) and returns the trace paths. */
  endProfiling(): string[] {
    return [this.step, ...[...this.fixed.values()].map((f) => f.session)].map((s) => s.endProfiling());
  }

  /** Frees every session. */
  release(): void {
    this.step.release();
    this.compact.release();
    for (const f of this.fixed.values()) {
      f.bufs.release();
      f.cache.release();
      f.binding.release();
      f.session.release();
    }
    this.fixed.clear();
    if (this.weights !== null) for (const t of this.weights.values()) t.release();
    this.weights?.clear();
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
    const prefill = rows.prefill();
    const steps = (mode.kind === 'latent' ? mode.maxLatent + mode.latentEndIds.length : 0) + req.maxNewTokens;
    // A row is fed at most `steps` times after its prompt; the capacity is rounded up to a multiple of
    // 256 (within maxPositions) so that batches of similar lengths share a CUDA-graph decode session.
    const need = prefill.T + steps;
    const capacity = Math.max(need, Math.min(Math.ceil(need / 256) * 256, this.maxPositions));
    const invT = req.sampling.kind === 'top-p' ? 1 / req.sampling.temperature : 1;
    const V = c.vocabSize;
    // The batch's device state is freed at the end of the call, also when a step throws; a fixed-shape
    // state (fixedState) is the generator's and outlives the call.
    using binding = s.createBinding();
    this.bindWeights(binding);
    const fixed = this.fixedShapes ? this.fixedState(prefill.B, capacity, feed) : null;
    const cache = fixed?.cache ?? KvCache.create(s, this.compact, c, prefill.B, capacity, this.dtype);
    let bufs: StepBuffers;
    try {
      bufs = fixed?.bufs ?? new StepBuffers(s, prefill.B, this.latentTopK, this.K, V);
    } catch (e) {
      if (fixed === null) cache.release();
      throw e;
    }
    bufs.setInvTemp(invT);
    try {
      // slots[j]: the cache row of live row j; lengths[slot]: keys held by that cache row.
      let slots = prefill.lengths.map((_, b) => b);
      let lengths = [...prefill.lengths];
      let input: SlotInput = {
        B: prefill.B,
        T: prefill.T,
        ids: prefill.ids,
        useSoft: prefill.useSoft,
        seqlensK: Int32Array.from(lengths, (n) => n - 1),
        lastRows: BigInt64Array.from(lengths, (n, b) => BigInt(b * prefill.T + n - 1)),
      };
      for (let first = true; ; first = false) {
        const tStep = performance.now();
        if (first || fixed === null) await bufs.run(s, binding, input, cache, feed);
        else await bufs.run(fixed.session, fixed.binding, input, cache, feed);
        stats.steps++;
        if (!first) stats.rowSteps += input.B;
        const decision: Decision = rows.decide(downloadHeads(bufs.heads, rows.needs(), cache, slots), stats);
        if (first) stats.prefillMs += performance.now() - tStep;
        else stats.decodeMs += performance.now() - tStep;
        const next = decision.next;
        if (next === null) break;
        const tCompact = performance.now();
        slots = decision.keep.map((j) => slots[j] as number);
        if (this.compactRows && slots.length < cache.batch) {
          cache.compact(slots);
          lengths = slots.map((sl) => lengths[sl] as number);
          slots = slots.map((_, j) => j);
          bufs.release();
          bufs = new StepBuffers(s, slots.length, this.latentTopK, this.K, V);
          bufs.setInvTemp(invT);
          stats.compactions++;
        }
        input = slotInput(next, slots, lengths, cache.batch, cache.capacity, c.padTokenId ?? 0);
        stats.decodeMs += performance.now() - tCompact;
      }
    } finally {
      if (fixed === null) {
        bufs.release();
        cache.release();
      }
    }
    return rows.results();
  }
}

/**
 * The decode step's inputs for all B cache rows: live row j (of `next`) at cache row slots[j], fed at
 * its position (its length so far; lengths is updated); idle rows are fed the pad id at their current
 * length (at most the last slot C − 1), a key of their own that no live row reads.
 */
function slotInput(next: StepInput, slots: readonly number[], lengths: number[], B: number, C: number, padId: number): SlotInput {
  const ids = new BigInt64Array(B).fill(BigInt(padId));
  const useSoft = new Uint8Array(B);
  const seqlensK = Int32Array.from(lengths, (n) => Math.min(n, C - 1));
  slots.forEach((sl, j) => {
    ids[sl] = next.ids[j] as bigint;
    useSoft[sl] = next.useSoft[j] as number;
    const pos = Number(next.positions[j]);
    seqlensK[sl] = pos;
    lengths[sl] = pos + 1;
  });
  return { B, T: 1, ids, useSoft, seqlensK };
}

/** A fixed-shape decode state (Generator.fixedState). */
interface FixedState {
  session: DeviceSession;
  binding: DeviceBinding;
  cache: KvCache;
  bufs: StepBuffers;
}

/** A step graph loaded as a session: over protobuf's 2 GiB limit as ONNX + an external weights file loaded by path. */
function loadStepSession(g: Graph, tensors: readonly WeightTensor[], opts: DeviceSessionOptions, workDir: string | undefined): DeviceSession {
  if (weightBytes(tensors) <= 1.5e9) return DeviceSession.create(serialize(g).model, opts);
  const dir = mkdtempSync(join(workDir ?? tmpdir(), 'latent-sft-generate-'));
  try {
    const model = join(dir, 'step.onnx');
    saveModel(g, model, { externalData: { path: join(dir, 'step.weights'), thresholdBytes: 1024 } });
    return DeviceSession.create(model, opts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
