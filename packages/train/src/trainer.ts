// The device-side trainer: an Objective's step graphs (step-graphs.ts) run on ONNX Runtime with every
// tensor that lives across steps in device memory (CUDA memory on CUDA, CPU memory on CPU — the same
// code path): trainable masters, frozen inputs, optimizer slots and gradient accumulators. State is
// runtime's StatePair: in place (`inPlaceState`, the default where it is safe: masters, AdamW moments
// and weight copies are one tensor each, bound as the step's input and output, overwritten by the fused
// AdamW) or double buffered (a step reads `current`, writes `next`, then they swap). Per step only
// the batch and a few scalars go up (opt.* from the schedule, loss_scale, acc_reset) and loss, metrics
// and grad_norm (4 bytes each) come down.
//
// Steps: `step` counts step() calls done (the LR schedule's step, as HF's scheduler that also steps
// over skipped fp16 updates); `optimizerStep` counts updates applied (AdamW's t, as torch's state
// step, which a GradScaler skip does not advance). A skipped update (fp16 overflow) leaves the state as
// it was: double buffered, the buffers are not swapped; in place, the fused AdamW has already left p, m,
// v and the copy untouched, because the step graph hands it a NaN clip coefficient whenever the grad
// norm (or, in the fused graph, the loss) is not finite (graph-optim.ts globalNormFusedGraph). A
// non-finite loss, or a non-finite grad norm without loss scaling, throws NonFiniteError naming the step
// and `lastGoodCheckpoint` (state untouched in both modes; the split path checks the loss before it runs
// the update graph).
//
// Data parallel (`group` of worldSize > 1): every rank runs the grad graph on its own micro-batches
// (summing into acc.p), then the summed gradients, loss, metrics and tokens are averaged over the
// ranks (group.allReduceMean: the same bits on every rank) and the update graph runs on the result,
// so clipping uses the global norm and every rank applies the same update. With equal shards this is
// gradient accumulation over the ranks' micro-batches (bit for bit gradAccum 2 on one process for 2
// ranks): see docs/distributed.md.
import { inputError, silentLogger, type Logger } from '@latent-sft/core';
import type { ProcessGroup } from '@latent-sft/distributed';
import { type Graph, type ValueSpec, adamwMomentDtype, serialize, typedFrom } from '@latent-sft/graph';
import { type NamedTensor, bf16BitsToFloat32, f16BitsToFloat32 } from '@latent-sft/models';
import {
  type DeviceBinding,
  DeviceSession,
  type DeviceSessionOptions,
  type DeviceTensor,
  type Device,
  type HostTensor,
  StatePair,
  fusedKernelsStatus,
  transferStats as runtimeTransferStats,
} from '@latent-sft/runtime';
import { type GraphOptimizer, type OptimizerConfig, graphOptimizer } from './graph-optim.js';
import { type InPlacePair, inPlaceHazard } from './in-place.js';
import { LossScaler, type DynamicLossScaleOptions } from './loss-scale.js';
import { NonFiniteError, checkFinite } from './metrics.js';
import type { Objective } from './objective.js';
import { type LrSchedule, lrAt } from './schedule.js';
import {
  type ComputeDtype,
  type FusedParts,
  type Recompute,
  type StepGraphs,
  buildStepGraphs,
  defaultFusedParts,
  fusedParts,
  weightCopyDtype,
} from './step-graphs.js';

export interface TrainerOptions {
  objective: Objective;
  optimizer: OptimizerConfig;
  /** The LR schedule; its peak is optimizer.lr. */
  schedule: LrSchedule;
  /** step() refuses to run past this many steps. */
  totalSteps: number;
  /** Global-norm clipping (null/undefined: none; grad_norm is still reported). */
  clipNorm?: number | null;
  /** Micro-batches per update (default 1: one fused graph). */
  gradAccum?: number;
  /**
   * Compute dtype (default float32). lossScale: default 'dynamic' for float16, none otherwise. params: how
   * the trainable parameters and AdamW moments are stored — 'float32' (default: float32 masters and
   * moments, the accurate recipe), or the 16-bit compute dtype (PyTorch's bf16 recipe: 16-bit parameters
   * and moments, float32 math inside the fused AdamW, each result rounded once; needs the fused AdamW).
   * state() / load() and checkpoints carry them as float32 (exact both ways).
   */
  precision?: { compute: ComputeDtype; lossScale?: 'dynamic' | number | null; params?: 'float32' | 'bfloat16' | 'float16' };
  /** Options of the dynamic loss scale (init 2^16, growth interval 2000, min 1). */
  dynamicLossScale?: DynamicLossScaleOptions;
  device: Device;
  /**
   * Fused kernels of @latent-sft/runtime's addon (domain latent_sft): AdamW as one node per parameter
   * reading the bf16/fp16 gradient and the grad norm as one SumSquares node (bit for bit the unfused
   * AdamW on clipped float32 grads; the norm accumulated in float64), and the 16-bit attention softmax
   * as MaskedSoftmax (float32 inside, no float32 [.., T, S] tensors), and the 16-bit RMSNorms as
   * RMSNorm (float32 inside, no float32 [.., D] chain), and the MLP gating as SwiGLU (one pass each
   * way); with the fused AdamW and a 16-bit compute dtype (gradAccum 1), the AdamW also writes the
   * 16-bit copy of each weight that the next forward reads (no Cast of every master per step; the same
   * rounding, so bit for bit the same training). 'auto' (default): when the device's kernels load
   * (fusedKernelsStatus), else standard ops with a warning. true: required. false: never. Both turn on
   * defaultFusedParts(device kind): every part but weightCopies, and on CUDA also attention and rope.
   * `{ optimizer, softmax, rmsnorm?, swiglu?, dropout?, crossEntropy?, ceChunk?, weightCopies?, attention?, rope?, multiTensor? }`: required,
   * only the parts set (rmsnorm, swiglu, dropout and crossEntropy default to softmax, multiTensor — the update as one
   * AdamWMulti node — to optimizer; weightCopies, attention and rope are off unless set:
   * attention, the whole 16-bit attention as FlashAttention, needs softmax, and its CUDA kernels take heads of 64
   * or 128 only (other heads keep the standard ops); rope, the 16-bit q/k rotary embeddings as one Rope node each.
   */
  fusedKernels?: boolean | 'auto' | FusedParts;
  /**
   * Masters, AdamW moments and weight copies updated in place: one device tensor each, bound as both
   * the step graph's input and its output and overwritten by the fused AdamW (half the state memory of
   * double buffering: 2 × 14.8 GB → 14.8 GB at 1.2 B weights). Needs the fused optimizer (AdamW with
   * fusedKernels' optimizer on) and a graph that passes the in-place check (in-place.ts: nothing reads
   * a state after its update overwrites it); it gives bit for bit the double-buffered training, skips
   * and NonFiniteError included (the fused AdamW changes nothing on a non-finite norm or loss).
   * 'auto' (default): in place when both hold, else double buffered (the reason logged). true:
   * required (an error naming the reason). false: double buffered. The choice: `stateMode`.
   */
  inPlaceState?: boolean | 'auto';
  /**
   * Activation recomputation (gradient checkpointing): 'layers' keeps only each decoder layer's input
   * from the forward and recomputes the layer in the backward, just before the layer's backward
   * (graph.recomputeSegments: the same ops on the same inputs, so the same bits as 'none'); less
   * memory for one more forward per step. 'none' (default): every value the backward reads is kept.
   */
  recompute?: Recompute;
  /**
   * The step graph built for fixed batch dims: every batch input's dims (a batch of other dims is then an
   * error). ORT then knows every shape when it opens the session (shape computations folded).
   */
  batchShapes?: Readonly<Record<string, readonly number[]>>;
  /**
   * ORT session options (default: deterministic, graph optimizations 'all'; on CUDA also
   * trainingSessionDefaults: no memory pattern, an arena that grows by what is asked). Given keys win;
   * cudaOptions are merged key by key.
   */
  session?: Omit<DeviceSessionOptions, 'device'>;
  /**
   * Data-parallel training: the group of ranks the gradients are averaged over between the grad and
   * the update graph (see the file header). Absent or worldSize 1: one process.
   */
  group?: ProcessGroup;
  logger?: Logger;
}

/** Per-step options of Trainer.step. */
export interface TrainerStepOptions {
  /**
   * This rank's gradient, loss and metrics are multiplied by it before the mean over the ranks (its
   * shard's share of the global batch × worldSize, distributed.shardRange; default 1). 0: a rank
   * whose shard is empty (it runs a stand-in batch that counts for nothing).
   */
  weight?: number;
}

/** What one step reports. */
export interface TrainerStepResult {
  /** step() calls done, this one included. */
  step: number;
  /** Mean loss over the micro-batches (float32, unscaled). */
  loss: number;
  /** Mean of each objective metric over the micro-batches. */
  metrics: Record<string, number>;
  /** The learning rate of this step (from the schedule). */
  lr: number;
  /** Global gradient norm before clipping (non-finite on an fp16 overflow). */
  gradNorm: number;
  /** The update was skipped (fp16 overflow). */
  skipped: boolean;
  /** The loss scale used by this step (1 without scaling). */
  lossScale: number;
  tokens?: number;
  /**
   * Wall time of this step() (ms), and the part spent awaiting the session runs: the rest (`stepMs − runMs`) is
   * host work the device waits through (uploads, bindings, scalar reads; with a data-parallel group, the
   * all-reduce too).
   */
  timing: { stepMs: number; runMs: number };
}

/** Everything needed to resume exactly. */
export interface TrainerState {
  trainable: NamedTensor[];
  /** `<slot>.<name>`: m/v (AdamW) or momentum (SGD). */
  optimizer: NamedTensor[];
  /** step() calls done. */
  step: number;
  lossScale: number;
  /** Updates applied (AdamW's t); defaults to `step` when absent. */
  optimizerStep?: number;
  /** Finite steps since the loss scale last changed (dynamic scaling); default 0. */
  lossScaleGoodSteps?: number;
}

/** How a Trainer keeps its state (TrainerOptions.inPlaceState resolved). */
export interface TrainerStateMode {
  /** Masters, moments and weight copies are one tensor each, updated in place. */
  inPlace: boolean;
  /** Why this mode: what was asked and, when double buffered, what ruled in-place state out. */
  reason: string;
}

/** Host<->device bytes moved by this trainer (uploads and downloads it made). */
export interface TrainerTransferStats {
  hostToDevice: number;
  deviceToHost: number;
}

type Scalars = Map<string, DeviceTensor>;

const numel = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The head sizes latent_sft.FlashAttention's CUDA kernel supports (runtime/native/src/kernels/flash_attention.cu). */
const FLASH_ATTENTION_CUDA_HEAD_DIMS: readonly number[] = [64, 128];

function staticDims(name: string, shape: readonly (number | string)[]): number[] {
  return shape.map((d) => {
    if (typeof d !== 'number') throw inputError({ field: name }, `needs a static shape, got [${shape.join(', ')}]`);
    return d;
  });
}

/** Trains an Objective on a device; see the file header. */
export class Trainer {
  /** The checkpoint named by NonFiniteError (set by whoever saves checkpoints, e.g. trainWithCheckpoints). */
  lastGoodCheckpoint: string | null = null;
  readonly metricNames: readonly string[];
  /** Which fused kernels the step graphs use (TrainerOptions.fusedKernels resolved). */
  readonly fusedKernels: FusedParts;
  /** The data-parallel group (null: one process). */
  readonly group: ProcessGroup | null;
  /** In-place or double-buffered state (TrainerOptions.inPlaceState resolved). */
  readonly stateMode: TrainerStateMode;
  private readonly logger: Logger;
  private readonly opt: GraphOptimizer;
  private readonly scaler: LossScaler | null;
  private readonly gradAccum: number;
  /** Separate grad and update graphs (gradAccum > 1 or data parallel). */
  private readonly split: boolean;
  private readonly names: string[];
  private readonly sessions: DeviceSession[] = [];
  private readonly bindings: DeviceBinding[] = [];
  private readonly params = new Map<string, StatePair>();
  private readonly slots = new Map<string, StatePair>();
  private readonly accs = new Map<string, StatePair>();
  /** The 16-bit weight copies the forward reads (`copy.<p>`, written by the fused AdamW), when on. */
  private readonly copies = new Map<string, StatePair>();
  private readonly copyDtype: 'bfloat16' | 'float16' | null;
  /** Storage of the parameters and moments (precision.params). */
  private readonly paramDtype: 'float32' | 'bfloat16' | 'float16';
  private readonly frozen = new Map<string, DeviceTensor>();
  private readonly batchTensors = new Map<string, DeviceTensor>();
  private readonly scalarsIn: Scalars = new Map();
  private readonly scalarsOut: Scalars = new Map();
  private stepsDone = 0;
  private updatesDone = 0;
  private h2d = 0;
  private d2h = 0;
  private released = false;
  // one fused graph: [fused]; split (gradAccum > 1 or data parallel): [grad, update]
  private readonly mainSession: DeviceSession;
  private readonly gradBinding: DeviceBinding;
  private readonly updateBinding: DeviceBinding;

  /** Where Trainer.create spent its time, in seconds: step graphs built, serialized, sessions created, state uploaded. */
  createSeconds: { graphs: number; serialize: number; sessions: number; state: number } = { graphs: 0, serialize: 0, sessions: 0, state: 0 };

  private constructor(
    private readonly opts: TrainerOptions,
    sessions: DeviceSession[],
    metricNames: string[],
    fused: FusedParts,
    copyDtype: 'bfloat16' | 'float16' | null,
    stateMode: TrainerStateMode,
  ) {
    this.fusedKernels = fused;
    this.stateMode = stateMode;
    this.copyDtype = copyDtype;
    this.paramDtype = opts.precision?.params ?? 'float32';
    this.logger = opts.logger ?? silentLogger;
    this.opt = graphOptimizer(opts.optimizer);
    this.gradAccum = opts.gradAccum ?? 1;
    this.group = opts.group !== undefined && opts.group.worldSize > 1 ? opts.group : null;
    this.split = splitStep(opts);
    this.names = Object.keys(opts.objective.trainable);
    this.metricNames = metricNames;
    const compute = opts.precision?.compute ?? 'float32';
    const ls = opts.precision?.lossScale === undefined ? (compute === 'float16' ? 'dynamic' : null) : opts.precision.lossScale;
    this.scaler = ls === null ? null : ls === 'dynamic' ? LossScaler.dynamic(opts.dynamicLossScale) : LossScaler.fixed(ls);
    this.sessions = sessions;
    this.mainSession = sessions[0] as DeviceSession;
    this.gradBinding = this.mainSession.createBinding();
    this.updateBinding = sessions.length > 1 ? (sessions[1] as DeviceSession).createBinding() : this.gradBinding;
    this.bindings.push(this.gradBinding);
    if (this.updateBinding !== this.gradBinding) this.bindings.push(this.updateBinding);
  }

  /**
   * The step graphs `create` would run for `opts` (validated as `create` validates them), without sessions or
   * state: for inspecting what ORT will be given (node names in a profile, a census). `fused` is the resolved
   * set of fused kernels. `kernelsLoad: true`: as if the device's fused kernels loaded here (the graphs of a
   * CUDA step on a machine without a GPU); default: this machine's fusedKernelsStatus decides, as in `create`.
   */
  static stepGraphs(opts: TrainerOptions, o: { kernelsLoad?: boolean } = {}): { graphs: StepGraphs; fused: FusedParts } {
    const { graphs, fused } = Trainer.plan(opts, o.kernelsLoad === true);
    return { graphs, fused };
  }

  /** Validates `opts` and builds the step graphs (everything `create` does before serializing them). */
  private static plan(given: TrainerOptions, kernelsLoad = false) {
    const opts = withBatchShapes(given);
    if (!Number.isInteger(opts.totalSteps) || opts.totalSteps < 1) throw inputError({ field: 'totalSteps' }, `must be an integer >= 1, got ${opts.totalSteps}`);
    lrAt(0, opts.schedule, opts.optimizer.lr); // validates the schedule
    const compute = opts.precision?.compute ?? 'float32';
    if (!['float32', 'float16', 'bfloat16'].includes(compute))
      throw inputError({ field: 'precision.compute' }, `expected float32, float16 or bfloat16, got ${String(compute)}`);
    const ls = opts.precision?.lossScale;
    if (ls !== undefined && ls !== null && ls !== 'dynamic' && !(typeof ls === 'number' && ls > 0 && Number.isFinite(ls))) {
      throw inputError({ field: 'precision.lossScale' }, `expected 'dynamic', a finite number > 0 or null, got ${String(ls)}`);
    }
    const scaled = ls === undefined ? compute === 'float16' : ls !== null;
    const paramDtype = opts.precision?.params ?? 'float32';
    if (paramDtype !== 'float32' && paramDtype !== compute)
      throw inputError({ field: 'precision.params' }, `expected float32 or the compute dtype ${compute}, got ${String(paramDtype)}`);
    const optimizer = graphOptimizer(opts.optimizer);
    const fused = Trainer.useFused(opts, kernelsLoad);
    if (paramDtype !== 'float32' && !(fused.optimizer && optimizer.fusedUpdate !== undefined))
      throw inputError(
        { field: 'precision.params' },
        `${paramDtype} parameters need the fused AdamW (optimizer kind adamw, fused kernels with the optimizer part)`,
      );
    if (opts.recompute === 'layers') {
      // The recomputed layers wait for their cotangents through the addon's latent_sft.After op.
      const why = fusedKernelsStatus(opts.device);
      if (why !== '') throw inputError({ field: 'recompute' }, `'layers' needs the addon's kernels on ${opts.device.kind}: ${why}`);
    }
    const graphs = buildStepGraphs(
      {
        objective: opts.objective,
        optimizer,
        clipNorm: opts.clipNorm ?? null,
        compute,
        lossScale: scaled,
        fused,
        paramDtype,
        recompute: opts.recompute ?? 'none',
        ...(opts.device.kind === 'cuda' ? { attentionHeadDims: FLASH_ATTENTION_CUDA_HEAD_DIMS, multiTensorCast: true } : {}),
        logger: opts.logger ?? silentLogger, // warns when fusedKernels.attention rewrites no layer
      },
      opts.gradAccum ?? 1,
      splitStep(opts),
    );
    const copyDtype = weightCopyDtype({ optimizer, compute, fused, paramDtype }, opts.gradAccum ?? 1, splitStep(opts));
    return { graphs, fused, optimizer, copyDtype, opts };
  }

  /** Builds the graphs, creates the sessions and uploads the initial tensors (the only bulk upload). */
  static async create(given: TrainerOptions, init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> }): Promise<Trainer> {
    const t0 = performance.now();
    const { graphs, fused, optimizer, copyDtype, opts } = Trainer.plan(given);
    const sessionOpts = stepSessionOptions(opts.device, opts.session);
    const stateMode = Trainer.stateMode(opts, optimizer, fused, graphs, copyDtype !== null);
    // A warning when the fused AdamW could have updated in place but the graph check refused it.
    const unexpected = !stateMode.inPlace && opts.inPlaceState !== false && fused.optimizer && optimizer.fusedUpdate !== undefined;
    (opts.logger ?? silentLogger)[unexpected ? 'warn' : 'info'](
      { inPlace: stateMode.inPlace, reason: stateMode.reason, recomputedLayers: graphs.recomputed.length },
      'trainer state mode',
    );
    const t1 = performance.now();
    const models = (graphs.fused ? [graphs.fused] : [graphs.grad, graphs.update]).map((g) => serialize(g!).model);
    const t2 = performance.now();
    const list = models.map((m) => DeviceSession.create(m, sessionOpts));
    const t3 = performance.now();
    const t = new Trainer(opts, list, graphs.metrics, fused, copyDtype, stateMode);
    try {
      t.allocate(init);
    } catch (e) {
      await t.release();
      throw e;
    }
    const s = (a: number, b: number) => Math.round(b - a) / 1000;
    t.createSeconds = { graphs: s(t0, t1), serialize: s(t1, t2), sessions: s(t2, t3), state: s(t3, performance.now()) };
    (opts.logger ?? silentLogger).info(t.createSeconds, 'trainer created (seconds per part)');
    return t;
  }

  /**
   * Resolves opts.inPlaceState: in place needs the fused AdamW and a graph where every state pair
   * passes the in-place check (in-place.ts), run here on the graph that writes the state (the fused
   * graph, or the update graph of the split path: its grad graph only reads the masters, in an earlier run).
   */
  private static stateMode(opts: TrainerOptions, optimizer: GraphOptimizer, fused: FusedParts, graphs: StepGraphs, copies: boolean): TrainerStateMode {
    const want = opts.inPlaceState ?? 'auto';
    if (want !== 'auto' && typeof want !== 'boolean')
      throw inputError({ field: 'inPlaceState' }, `expected true, false or 'auto', got ${JSON.stringify(want)}`);
    if (want === false) return { inPlace: false, reason: 'inPlaceState false: double buffered' };
    let why = '';
    if (!fused.optimizer || optimizer.fusedUpdate === undefined) {
      why = `the update is not the fused AdamW (optimizer ${optimizer.config.kind}, fused optimizer ${fused.optimizer ? 'on' : 'off'}): standard ONNX ops may not write over their inputs`;
    } else {
      const pairs: InPlacePair[] = [];
      for (const n of Object.keys(opts.objective.trainable)) {
        pairs.push({ input: n, output: `${n}.new` });
        for (const slot of optimizer.slots) pairs.push({ input: `${slot}.${n}`, output: `${slot}.${n}.new` });
        if (copies) pairs.push({ input: `copy.${n}`, output: `copy.${n}.new` });
      }
      const hazard = inPlaceHazard((graphs.fused ?? graphs.update) as Graph, pairs);
      if (hazard !== '') why = `the step graph fails the in-place check: ${hazard}`;
    }
    if (why === '') return { inPlace: true, reason: `inPlaceState ${String(want)}: fused AdamW, the step graph passes the in-place check` };
    if (want === true) throw inputError({ field: 'inPlaceState' }, `in-place state impossible: ${why}`);
    return { inPlace: false, reason: `inPlaceState auto: double buffered, ${why}` };
  }

  /** Resolves opts.fusedKernels against the device's kernels. */
  private static useFused(opts: TrainerOptions, kernelsLoad = false): FusedParts {
    const want = opts.fusedKernels ?? 'auto';
    const none = fusedParts(false);
    const parts = typeof want === 'object' && want !== null ? want : null;
    const optional = ['rmsnorm', 'swiglu', 'dropout', 'crossEntropy', 'weightCopies', 'attention', 'rope', 'multiTensor'] as const;
    if (
      want !== 'auto' &&
      typeof want !== 'boolean' &&
      (parts === null ||
        typeof parts.optimizer !== 'boolean' ||
        typeof parts.softmax !== 'boolean' ||
        optional.some((k) => parts[k] !== undefined && typeof parts[k] !== 'boolean') ||
        (parts.ceChunk !== undefined && !(Number.isInteger(parts.ceChunk) && parts.ceChunk >= 1)) ||
        Object.keys(parts).some((k) => !['optimizer', 'softmax', 'ceChunk', ...optional].includes(k)))
    ) {
      throw inputError(
        { field: 'fusedKernels' },
        `expected true, false, 'auto' or { optimizer, softmax, rmsnorm?, swiglu?, dropout?, crossEntropy?, weightCopies?, attention?, rope?, multiTensor? } booleans (ceChunk?: an integer >= 1), got ${JSON.stringify(want)}`,
      );
    }
    const resolved = parts === null ? null : fusedParts(parts);
    if (want === false || (resolved !== null && !Object.values(resolved).some((b) => b))) return none;
    const why = kernelsLoad ? '' : fusedKernelsStatus(opts.device);
    if (why === '') return resolved ?? defaultFusedParts(opts.device.kind);
    if (want !== 'auto') throw inputError({ field: 'fusedKernels' }, `fused kernels unavailable on ${opts.device.kind}: ${why}`);
    (opts.logger ?? silentLogger).warn({ reason: why }, 'fused kernels unavailable; using standard ops');
    return none;
  }

  private counted<T>(f: () => T): T {
    const a = runtimeTransferStats();
    try {
      return f();
    } finally {
      const b = runtimeTransferStats();
      this.h2d += b.hostToDeviceBytes - a.hostToDeviceBytes;
      this.d2h += b.deviceToHostBytes - a.deviceToHostBytes;
    }
  }

  private checkHost(where: string, name: string, t: HostTensor | undefined, spec: { dtype: string; shape: readonly (number | string)[] }): HostTensor {
    if (t === undefined) throw inputError({ field: `${where}.${name}` }, 'missing');
    if (t.dtype !== spec.dtype) throw inputError({ field: `${where}.${name}` }, `dtype ${t.dtype}, the objective declares ${spec.dtype}`);
    const ok = t.dims.length === spec.shape.length && spec.shape.every((d, i) => typeof d !== 'number' || d === t.dims[i]);
    if (!ok) throw inputError({ field: `${where}.${name}` }, `dims [${t.dims.join(', ')}] do not fit [${spec.shape.join(', ')}]`);
    if (t.data.length !== numel(t.dims))
      throw inputError({ field: `${where}.${name}` }, `dims [${t.dims.join(', ')}] hold ${numel(t.dims)} values, data has ${t.data.length}`);
    return t;
  }

  private allocate(init: { trainable: Record<string, HostTensor>; frozen: Record<string, HostTensor> }): void {
    const obj = this.opts.objective;
    const s = this.mainSession;
    for (const part of ['trainable', 'frozen'] as const) {
      for (const k of Object.keys(init[part])) if (!(k in obj[part])) throw inputError({ field: `init.${part}.${k}` }, `not a ${part} input of the objective`);
    }
    const inPlace = this.stateMode.inPlace;
    this.counted(() => {
      for (const [n, spec] of Object.entries(obj.trainable)) {
        const dims = staticDims(`objective.trainable.${n}`, spec.shape);
        const master = this.checkHost('init.trainable', n, init.trainable[n], spec);
        this.params.set(n, StatePair.create(s, n, `${n}.new`, this.asParam(master), inPlace));
        if (this.copyDtype !== null) this.copies.set(n, StatePair.create(s, `copy.${n}`, `copy.${n}.new`, this.weightCopy(master), inPlace));
        for (const slot of this.opt.slots) {
          const md = this.slotDtype();
          const second = inPlace ? null : s.alloc(md, dims);
          this.slots.set(`${slot}.${n}`, new StatePair(`${slot}.${n}`, `${slot}.${n}.new`, s.alloc(md, dims), second));
        }
        if (this.split) this.accs.set(n, new StatePair(`acc.${n}`, `acc.${n}.new`, s.alloc('float32', dims), s.alloc('float32', dims)));
      }
      for (const [n, spec] of Object.entries(obj.frozen)) this.frozen.set(n, s.upload(this.checkHost('init.frozen', n, init.frozen[n], spec)));
    });
    const updateSession = this.sessions[this.sessions.length - 1] as DeviceSession;
    const scalarDtype = (sess: DeviceSession, name: string) => sess.input(name).dtype as 'float32' | 'bool';
    for (const n of this.opt.scalarInputs) this.scalarsIn.set(n, updateSession.alloc(scalarDtype(updateSession, n), []));
    if (this.scaler !== null) this.scalarsIn.set('loss_scale', s.alloc('float32', []));
    if (this.split) this.scalarsIn.set('acc_reset', s.alloc('bool', []));
    for (const n of ['loss', ...this.metricNames.map((m) => `metric.${m}`), 'grad_norm']) this.scalarsOut.set(n, s.alloc('float32', []));
    // Fixed bindings: frozen inputs, scalar inputs and outputs.
    for (const [n, t] of this.frozen) this.gradBinding.bindInput(n, t);
    for (const [n, t] of this.scalarsIn) (n.startsWith('opt.') ? this.updateBinding : this.gradBinding).bindInput(n, t);
    for (const [n, t] of this.scalarsOut) (n === 'grad_norm' ? this.updateBinding : this.gradBinding).bindOutput(n, t);
    this.bindState();
  }

  /** The dtype of the optimizer slots: AdamW's moments follow graph's adamwMomentDtype of the parameters. */
  private slotDtype(): 'float32' | 'bfloat16' {
    return adamwMomentDtype(this.paramDtype) as 'float32' | 'bfloat16';
  }

  /** A float32 host tensor stored as `dtype`: itself, or rounded to 16 bits (nearest even). */
  private stored(t: HostTensor, dtype: 'float32' | 'bfloat16' | 'float16'): HostTensor {
    if (dtype === 'float32') return t;
    return { dtype, dims: [...t.dims], data: typedFrom(dtype, t.data as Float32Array) } as HostTensor;
  }

  /** A float32 parameter as stored (precision.params). */
  private asParam(t: HostTensor): HostTensor {
    return this.stored(t, this.paramDtype);
  }

  /** A stored parameter or moment downloaded as float32 (16-bit widened exactly). */
  private downloadFloat32(t: DeviceTensor): Float32Array {
    const data = this.counted(() => t.download());
    if (t.dtype === 'float32') return data as Float32Array;
    const bits = data as Uint16Array;
    const out = new Float32Array(bits.length);
    const widen = t.dtype === 'bfloat16' ? bf16BitsToFloat32 : f16BitsToFloat32;
    for (let i = 0; i < bits.length; i++) out[i] = widen(bits[i] as number);
    return out;
  }

  /** The compute-dtype copy of a float32 master, rounded to nearest even as the step graph's Cast would. */
  private weightCopy(master: HostTensor): HostTensor {
    const dtype = this.copyDtype as 'bfloat16' | 'float16';
    return { dtype, dims: [...master.dims], data: typedFrom(dtype, master.data as Float32Array) } as HostTensor;
  }

  /** Binds every state tensor to its current/next buffer (after creation, and after each swap when double buffered). */
  private bindState(): void {
    const fused = !this.split;
    for (const p of this.params.values()) {
      p.bind(this.updateBinding);
      if (!fused) this.gradBinding.bindInput(p.input, p.current);
    }
    for (const p of this.slots.values()) p.bind(this.updateBinding);
    for (const p of this.copies.values()) p.bind(this.updateBinding);
    this.bindAccs();
  }

  /** Binds the gradient accumulators (always double buffered) to their current/next buffers. */
  private bindAccs(): void {
    for (const p of this.accs.values()) {
      p.bind(this.gradBinding);
      this.updateBinding.bindInput(p.input, p.current);
    }
  }

  private upload(t: DeviceTensor, v: number | boolean): void {
    const data = t.dtype === 'bool' ? Uint8Array.of(v ? 1 : 0) : t.dtype === 'float64' ? Float64Array.of(Number(v)) : Float32Array.of(Number(v));
    this.counted(() => t.upload(data));
  }

  private readScalar(name: string): number {
    return this.counted(() => (this.scalarsOut.get(name) as DeviceTensor).download()[0] as number);
  }

  private feedBatch(batch: Record<string, HostTensor>, k: number): void {
    const specs = this.opts.objective.batch;
    for (const n of Object.keys(batch)) if (!(n in specs)) throw inputError({ field: `batches[${k}].${n}` }, 'not a batch input of the objective');
    for (const [n, spec] of Object.entries(specs)) {
      const h = this.checkHost(this.opts.batchShapes === undefined ? `batches[${k}]` : `batches[${k}] (batchShapes)`, n, batch[n], spec);
      // Zero-size tensors crash the device addon's upload/bind (runtime 1.29 addon): refuse them here.
      if (h.data.length === 0) throw inputError({ field: `batches[${k}].${n}` }, `empty tensor (dims [${h.dims.join(', ')}])`);
      let t = this.batchTensors.get(n);
      if (t === undefined || t.dims.join(',') !== h.dims.join(',')) {
        t?.release();
        t = this.mainSession.alloc(h.dtype, h.dims);
        this.batchTensors.set(n, t);
        this.gradBinding.bindInput(n, t);
      }
      const dev = t;
      this.counted(() => dev.upload(h.data));
    }
  }

  /** The learning rate of the next step. */
  lr(): number {
    return lrAt(this.stepsDone, this.opts.schedule, this.opts.optimizer.lr);
  }

  /** One update from `gradAccum` micro-batches (see the file header). */
  async step(batches: Array<Record<string, HostTensor>>, options: TrainerStepOptions = {}): Promise<TrainerStepResult> {
    if (this.released) throw inputError({ field: 'trainer' }, 'released');
    const weight = options.weight ?? 1;
    if (!(Number.isFinite(weight) && weight >= 0)) throw inputError({ field: 'weight' }, `must be a finite number >= 0, got ${weight}`);
    if (weight !== 1 && this.group === null) throw inputError({ field: 'weight' }, 'only data-parallel steps (a group of worldSize > 1) take a weight');
    if (!Array.isArray(batches) || batches.length !== this.gradAccum) {
      throw inputError(
        { field: 'batches' },
        `expected ${this.gradAccum} micro-batch${this.gradAccum > 1 ? 'es' : ''}, got ${Array.isArray(batches) ? batches.length : typeof batches}`,
      );
    }
    if (this.stepsDone >= this.opts.totalSteps) throw inputError({ field: 'totalSteps' }, `all ${this.opts.totalSteps} steps are done`);
    const step = this.stepsDone + 1;
    const t0 = performance.now();
    let runMs = 0;
    const timedRun = async (session: DeviceSession, binding: DeviceBinding) => {
      const r0 = performance.now();
      await session.runAsync(binding);
      runMs += performance.now() - r0;
    };
    const lr = this.lr();
    const lossScale = this.scaler?.scale ?? 1;
    if (this.scaler !== null) this.upload(this.scalarsIn.get('loss_scale') as DeviceTensor, lossScale);
    for (const [n, v] of Object.entries(this.opt.scalars(this.updatesDone + 1, lr))) this.upload(this.scalarsIn.get(n) as DeviceTensor, v);
    let loss = 0;
    const metrics: Record<string, number> = Object.fromEntries(this.metricNames.map((m) => [m, 0]));
    let tokens: number | undefined;
    const count = this.opts.objective.countTokens;
    for (let k = 0; k < batches.length; k++) {
      const b = batches[k] as Record<string, HostTensor>;
      this.feedBatch(b, k);
      if (count) tokens = (tokens ?? 0) + count.call(this.opts.objective, b);
      if (this.split) this.upload(this.scalarsIn.get('acc_reset') as DeviceTensor, k === 0);
      await timedRun(this.mainSession, this.gradBinding);
      loss += this.readScalar('loss');
      for (const m of this.metricNames) metrics[m] = (metrics[m] as number) + this.readScalar(`metric.${m}`);
      if (this.split) {
        for (const p of this.accs.values()) p.swap();
        if (this.stateMode.inPlace) this.bindAccs();
        else this.bindState();
      }
    }
    loss /= batches.length;
    for (const m of this.metricNames) metrics[m] = (metrics[m] as number) / batches.length;
    if (this.group !== null) {
      const stats = Float64Array.of(loss, ...this.metricNames.map((m) => metrics[m] as number), weight === 0 ? 0 : (tokens ?? 0));
      await this.allReduce(weight, stats);
      loss = stats[0] as number;
      this.metricNames.forEach((m, i) => {
        metrics[m] = stats[i + 1] as number;
      });
      if (tokens !== undefined) tokens = Math.round((stats[stats.length - 1] as number) * this.group.worldSize);
    }
    // Before the update graph runs: it does not see the loss, and in place it would write the state.
    checkFinite({ step, loss, lastGoodCheckpoint: this.lastGoodCheckpoint });
    if (this.split) await timedRun(this.sessions[1] as DeviceSession, this.updateBinding);
    const gradNorm = this.readScalar('grad_norm');

    let skipped = false;
    if (this.scaler !== null) {
      try {
        skipped = this.scaler.update(gradNorm, step);
      } catch (e) {
        if (e instanceof NonFiniteError) checkFinite({ step, loss, gradNorm, lastGoodCheckpoint: this.lastGoodCheckpoint });
        throw e;
      }
      if (skipped) this.logger.warn({ step, gradNorm, lossScale, nextLossScale: this.scaler.scale }, 'fp16 overflow: update skipped, loss scale halved');
    } else {
      checkFinite({ step, loss, gradNorm, lastGoodCheckpoint: this.lastGoodCheckpoint });
    }
    if (!skipped) {
      // In place the step has already written the state; swap() does nothing then, and the bindings stand as
      // they are (rebinding a 7B LoRA state of ~1,200 tensors every step was host time with the GPU idle).
      for (const p of this.params.values()) p.swap();
      for (const p of this.slots.values()) p.swap();
      for (const p of this.copies.values()) p.swap();
      if (!this.stateMode.inPlace) this.bindState();
      this.updatesDone += 1;
    }
    this.stepsDone = step;
    const r: TrainerStepResult = { step, loss, metrics, lr, gradNorm, skipped, lossScale, timing: { stepMs: performance.now() - t0, runMs } };
    if (tokens !== undefined) r.tokens = tokens;
    return r;
  }

  /**
   * Averages the summed gradients (acc.p) and `stats` over the ranks, this rank's scaled by `weight`
   * (tokens, the last stat, are not): the update graph then reads the global mean gradient.
   */
  private async allReduce(weight: number, stats: Float64Array): Promise<void> {
    const group = this.group as ProcessGroup;
    const accs = [...this.accs.values()];
    const grads = this.counted(() => accs.map((p) => p.current.download() as Float32Array));
    if (weight !== 1) {
      for (const a of grads) for (let j = 0; j < a.length; j++) a[j] = (a[j] as number) * weight;
      for (let j = 0; j < stats.length - 1; j++) stats[j] = (stats[j] as number) * weight;
    }
    await group.allReduceMean([...grads, stats]);
    this.counted(() => accs.forEach((p, i) => p.current.upload(grads[i] as Float32Array)));
  }

  /** Downloads everything needed to resume (synchronous; `state()` is the async form). */
  stateSync(): TrainerState {
    const down = (name: string, p: StatePair): NamedTensor => ({ name, shape: [...p.current.dims], data: this.downloadFloat32(p.current) });
    const scaler = this.scaler?.state();
    return {
      trainable: [...this.params].map(([n, p]) => down(n, p)),
      optimizer: [...this.slots].map(([n, p]) => down(n, p)),
      step: this.stepsDone,
      optimizerStep: this.updatesDone,
      lossScale: scaler?.scale ?? 1,
      lossScaleGoodSteps: scaler?.goodSteps ?? 0,
    };
  }

  async state(): Promise<TrainerState> {
    return this.stateSync();
  }

  /** Restores a state from `state()` (for exact resume): uploads into the current buffers. */
  async load(state: TrainerState): Promise<void> {
    const check = (what: string, list: readonly NamedTensor[], want: Map<string, StatePair>): Map<string, NamedTensor> => {
      const byName = new Map(list.map((t) => [t.name, t]));
      for (const n of byName.keys()) if (!want.has(n)) throw inputError({ field: `state.${what}.${n}` }, 'unknown tensor');
      for (const [n, p] of want) {
        const t = byName.get(n);
        if (t === undefined) throw inputError({ field: `state.${what}.${n}` }, 'missing');
        if (!(t.data instanceof Float32Array) || t.shape.join(',') !== p.current.dims.join(',') || t.data.length !== p.current.size) {
          throw inputError(
            { field: `state.${what}.${n}` },
            `expected float32 [${p.current.dims.join(', ')}], got ${t.data?.constructor?.name} [${t.shape.join(', ')}]`,
          );
        }
      }
      return byName;
    };
    const tp = check('trainable', state.trainable, this.params);
    const to = check('optimizer', state.optimizer, this.slots);
    const intOk = (x: number) => Number.isInteger(x) && x >= 0;
    const optStep = state.optimizerStep ?? state.step;
    if (!intOk(state.step) || !intOk(optStep) || optStep > state.step)
      throw inputError({ field: 'state.step' }, `bad step ${state.step} / optimizer step ${optStep}`);
    if (this.scaler !== null) this.scaler.load({ scale: state.lossScale, goodSteps: state.lossScaleGoodSteps ?? 0 });
    this.counted(() => {
      const host = (t: NamedTensor, dtype: 'float32' | 'bfloat16' | 'float16') => this.stored({ dtype: 'float32', dims: t.shape, data: t.data }, dtype).data;
      for (const [n, p] of this.params) p.current.upload(host(tp.get(n) as NamedTensor, this.paramDtype));
      for (const [n, p] of this.slots) p.current.upload(host(to.get(n) as NamedTensor, this.slotDtype()));
      for (const [n, p] of this.copies)
        p.current.upload(this.weightCopy({ dtype: 'float32', dims: [...p.current.dims], data: (tp.get(n) as NamedTensor).data }).data);
    });
    this.stepsDone = state.step;
    this.updatesDone = optStep;
  }

  /** Host<->device bytes this trainer moved (initial uploads, batches, scalars, state downloads). */
  transferStats(): TrainerTransferStats {
    return { hostToDevice: this.h2d, deviceToHost: this.d2h };
  }

  /** Parameter and optimizer names in graph order (trainable, then `<slot>.<name>`). */
  tensorNames(): { trainable: string[]; optimizer: string[] } {
    return { trainable: [...this.names], optimizer: [...this.slots.keys()] };
  }

  /** Stops ORT's profiler of every step session (`session.profilePrefix`) and returns the trace paths. */
  endProfiling(): string[] {
    return this.sessions.map((s) => s.endProfiling());
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const b of this.bindings) b.release();
    for (const m of [this.params, this.slots, this.accs, this.copies]) for (const p of m.values()) p.release();
    for (const m of [this.frozen, this.batchTensors, this.scalarsIn, this.scalarsOut]) for (const t of m.values()) t.release();
    for (const s of this.sessions) s.release();
  }
}

/** Whether the step runs as separate grad and update graphs: gradAccum > 1, or data parallel. */
function splitStep(opts: TrainerOptions): boolean {
  return (opts.gradAccum ?? 1) > 1 || (opts.group?.worldSize ?? 1) > 1;
}

/**
 * opts with the objective's batch inputs at batchShapes' dims (a step graph of fixed shapes), after checking
 * them: one entry per batch input, positive integer dims of the input's rank that keep its fixed dims, and
 * one value per symbolic dim shared between inputs.
 */
function withBatchShapes(opts: TrainerOptions): TrainerOptions {
  const shapes = opts.batchShapes;
  if (shapes === undefined) return opts;
  const field = 'batchShapes';
  if (shapes === null || typeof shapes !== 'object') throw inputError({ field }, 'expected { <batch input>: dims }');
  const specs = opts.objective.batch;
  for (const n of Object.keys(shapes)) if (!(n in specs)) throw inputError({ field: `${field}.${n}` }, 'not a batch input of the objective');
  const batch: Record<string, ValueSpec> = {};
  const symbols = new Map<string, { value: number; input: string }>();
  for (const [n, spec] of Object.entries(specs)) {
    const dims = shapes[n];
    if (dims === undefined) throw inputError({ field: `${field}.${n}` }, `missing (the batch inputs: ${Object.keys(specs).join(', ')})`);
    const fits =
      Array.isArray(dims) &&
      dims.length === spec.shape.length &&
      dims.every((d, i) => Number.isInteger(d) && d >= 1 && (typeof spec.shape[i] !== 'number' || spec.shape[i] === d));
    if (!fits) throw inputError({ field: `${field}.${n}` }, `dims [${String(dims)}] do not fit the objective's [${spec.shape.join(', ')}]`);
    // A symbolic dim the objective shares between inputs (e.g. 'batch') takes one value in all of them.
    spec.shape.forEach((d, i) => {
      if (typeof d !== 'string') return;
      const seen = symbols.get(d);
      if (seen === undefined) symbols.set(d, { value: dims[i] as number, input: n });
      else if (seen.value !== dims[i]) throw inputError({ field: `${field}.${n}` }, `gives '${d}' = ${dims[i]}, ${field}.${seen.input} gives ${seen.value}`);
    });
    batch[n] = { ...spec, shape: [...dims] };
  }
  return { ...opts, objective: withBatch(opts.objective, batch) };
}

/** The objective with other batch specs (its methods still bound to the objective). */
function withBatch(objective: Objective, batch: Objective['batch']): Objective {
  const o: Objective = {
    trainable: objective.trainable,
    frozen: objective.frozen,
    batch,
    buildLoss: (g, trainable, inputs) => objective.buildLoss(g, trainable, inputs),
  };
  if (objective.countTokens !== undefined) o.countTokens = (b) => (objective.countTokens as NonNullable<Objective['countTokens']>).call(objective, b);
  return o;
}

/**
 * Session options of the step sessions on a CUDA device, where they differ from ORT's: ORT's memory
 * pattern plans one arena block per run for the whole graph and, with the arena's power-of-two growth,
 * took the 1B full step from 53 GB to 76-81 GB peak at the same speed (docs/performance.md); no
 * pattern plus `kSameAsRequested` growth keeps the peak at what the live tensors need.
 */
export const trainingSessionDefaults: Readonly<{ enableMemPattern: boolean; cudaOptions: Readonly<Record<string, string>> }> = {
  enableMemPattern: false,
  cudaOptions: { arena_extend_strategy: 'kSameAsRequested' },
};

/** The options the Trainer opens its step sessions with: defaults, then `given` (cudaOptions merged). */
export function stepSessionOptions(device: Device, given: Omit<DeviceSessionOptions, 'device'> = {}): DeviceSessionOptions {
  if (device.kind !== 'cuda') return { deterministic: true, ...given, device };
  return {
    deterministic: true,
    enableMemPattern: trainingSessionDefaults.enableMemPattern,
    ...given,
    cudaOptions: { ...trainingSessionDefaults.cudaOptions, ...given.cudaOptions },
    device,
  };
}
