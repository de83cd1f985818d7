// The ONNX graphs a Trainer runs. Names of inputs/outputs (p = a trainable name):
//   fused (gradAccum 1): trainable p, frozen, batch, optimizer slots `<slot>.p`, scalars `opt.*`,
//       [loss_scale], [copy.p] → loss, metric.<k>, grad_norm, p.new, `<slot>.p.new`, [copy.p.new]
//       (copy.p: the 16-bit weight the forward reads, written by the fused AdamW; weightCopyDtype)
//   grad  (gradAccum N > 1, or split): trainable p, frozen, batch, acc.p, acc_reset (bool), [loss_scale]
//       → loss, metric.<k>, acc.p.new = acc_reset ? g : acc.p + g
//   update: trainable p, acc.p, slots, scalars → grad_norm, p.new, `<slot>.p.new`, from the mean acc.p / N
// Data-parallel training splits even gradAccum 1 into grad + update: the summed gradients acc.p are
// averaged over the ranks between the two (Trainer + @latent-sft/distributed), so the update graph,
// its clipping included, sees the global gradient.
// Gradients are of the float32 masters (the casts to the compute dtype are differentiated); with
// loss scaling the backward is seeded with loss_scale and the float32 grads are divided by it.
// grad_norm is the global L2 norm before clipping (clip_grad_norm_'s return value), always computed:
// the host skips the step when it is not finite.
// recompute 'layers': right after grad, graph.recomputeSegments rewrites the fused / grad graph so the
// backward rebuilds each decoder layer's values from the layer input (same values, less memory); then the
// graph-level LM-head cross-entropy is lowered (graph.lowerLinearLogProb).
import {
  type DType,
  type Graph as GraphT,
  Graph,
  type RecomputedSegment,
  type Tensor,
  fuseFlashAttention,
  fuseHashWords,
  fuseLinearCrossEntropy,
  fuseMaskedSoftmax,
  fuseMultiTensorAdamW,
  fuseMultiTensorCast,
  fuseRmsNorm,
  fuseRope,
  fuseSeededDropout,
  fuseSwiGlu,
  grad,
  lowerLinearLogProb,
  recomputeSegments,
} from '@latent-sft/graph';
import { type Logger, inputError } from '@latent-sft/core';
import { type GraphOptimizer, clipByGlobalNormGraph, globalNormFusedGraph } from './graph-optim.js';
import type { Objective } from './objective.js';

export type ComputeDtype = 'float32' | 'float16' | 'bfloat16';

/** Which fused kernels a step graph uses (StepGraphOptions.fused). */
export interface FusedParts {
  optimizer: boolean;
  softmax: boolean;
  /** The 16-bit RMSNorms as latent_sft.RMSNorm (graph.fuseRmsNorm); default: as `softmax`. */
  rmsnorm?: boolean;
  /** The MLP gating Mul(Mul(gate, σ(gate)), up) as latent_sft.SwiGLU (graph.fuseSwiGlu); default: as `softmax`. */
  swiglu?: boolean;
  /**
   * The LoRA inputs' seeded dropout (models' lora-graph.ts) as latent_sft.SeededDropout (graph.fuseSeededDropout):
   * one pass per module reading the per-forward tables in place, the mask recomputed in the backward, and the
   * column table as one latent_sft.HashWords (graph.fuseHashWords); the same masks bit for bit; default: as `softmax`.
   */
  dropout?: boolean;
  /**
   * The LM head's cross-entropy over chunks of the vocabulary (graph.fuseLinearCrossEntropy, lowered after
   * the backward into GEMMs and latent_sft.CEChunkStats / CEChunkGrad): no [tokens, vocab] logits, no
   * float32 copies of them; default: as `softmax`.
   */
  crossEntropy?: boolean;
  /**
   * The 16-bit attention (scores, MaskedSoftmax, probabilities · V) as latent_sft.FlashAttention
   * (graph.fuseFlashAttention, after the softmax fusion, which it needs): no [B, H, T, S] scores or
   * probabilities written or kept for the backward. Default: off, also for `true` / 'auto': on the GPU
   * (fused-check passes) it saves memory but no time yet (docs/performance.md, session 15). On CUDA only
   * heads of 64 or 128 are rewritten (the kernel's sizes;
   * StepGraphOptions.attentionHeadDims).
   */
  attention?: boolean;
  /**
   * The rotary position embeddings of the 16-bit q and k (models' applyRope: Split, Concat, Mul, Mul, Add for each,
   * and about as many backward) as latent_sft.Rope (graph.fuseRope): one node each way, x·cos + swap(x)·sinSigned in
   * float32 rounded once. Default: off, also for `true` / 'auto': measured on the GPU only together with
   * `attention` (docs/performance.md, session 15).
   */
  rope?: boolean;
  /** Vocabulary columns per cross-entropy chunk (default 8192: graph's DEFAULT_CE_CHUNK). */
  ceChunk?: number;
  /**
   * The fused AdamW also writes each updated weight in the 16-bit compute dtype (AdamWCopy), kept as
   * state `copy.<p>` that the forward reads instead of a Cast of the float32 master; only with the fused
   * optimizer, gradAccum 1 and a 16-bit compute dtype (otherwise ignored). Default: off, also for
   * `true` / 'auto': on the H200 it made the 1B step slower (36.3k vs 37.3k tokens/s) and the LoRA step
   * much slower (21.3k vs 29.9k), with +2.4 GB peak (docs/performance.md, h200-2026-12-04.jsonl).
   */
  weightCopies?: boolean;
  /**
   * The fused optimizer's per-parameter AdamW nodes as one multi-tensor node (graph.fuseMultiTensorAdamW:
   * AdamWMulti / AdamWCopyMulti, the same kernel per tensor, bit for bit), and the forward's casts of the
   * float32 masters to the compute dtype as one CastMulti (graph.fuseMultiTensorCast, rounded as Cast; on CUDA
   * only: StepGraphOptions.multiTensorCast): one ORT dispatch each instead of one per parameter (392 and 392 in
   * a 7B phase-2 step). Default: as `optimizer`.
   */
  multiTensor?: boolean;
}

/** `fused` as parts, every one set (rmsnorm and swiglu default to softmax). */
export function fusedParts(f: boolean | FusedParts | undefined): Required<Omit<FusedParts, 'ceChunk'>> & Pick<FusedParts, 'ceChunk'> {
  if (typeof f === 'object')
    return {
      ...f,
      rmsnorm: f.rmsnorm ?? f.softmax,
      swiglu: f.swiglu ?? f.softmax,
      dropout: f.dropout ?? f.softmax,
      crossEntropy: f.crossEntropy ?? f.softmax,
      weightCopies: f.weightCopies ?? false,
      attention: f.attention ?? false,
      rope: f.rope ?? false,
      multiTensor: f.multiTensor ?? f.optimizer,
    };
  return {
    optimizer: f === true,
    softmax: f === true,
    rmsnorm: f === true,
    swiglu: f === true,
    dropout: f === true,
    crossEntropy: f === true,
    weightCopies: false,
    attention: false,
    rope: false,
    multiTensor: f === true,
  };
}

/**
 * What `fusedKernels: true` or 'auto' turns on for a device kind: every part but weightCopies; on CUDA also
 * attention and rope (FlashAttention and the fused RoPE, which act on 16-bit graphs only). On the GPU they made every
 * step as fast or faster and 0.4–4.4 GB lower (1B full step with fp32 masters 39,138 → 41,888 tokens/s on an H100,
 * 30.0 → 25.9 GB; docs/performance.md, sessions 15–16). On the CPU they stay off: its FlashAttention is the row-by-row
 * reference of the CUDA kernels, not a fast path.
 */
export function defaultFusedParts(kind: 'cpu' | 'cuda'): ReturnType<typeof fusedParts> {
  const parts = fusedParts(true);
  return kind === 'cuda' ? { ...parts, attention: true, rope: true } : parts;
}

/**
 * The dtype of the compute-dtype weight copies the step graph keeps as state (`copy.<p>` in,
 * `copy.<p>.new` out, written by AdamWCopy), or null when it casts the masters (see FusedParts.weightCopies).
 */
export function weightCopyDtype(
  o: Pick<StepGraphOptions, 'optimizer' | 'compute' | 'fused' | 'paramDtype'>,
  gradAccum: number,
  split = gradAccum > 1,
): 'bfloat16' | 'float16' | null {
  const parts = fusedParts(o.fused);
  if (!parts.optimizer || !parts.weightCopies || split || o.optimizer.fusedUpdate === undefined) return null;
  if ((o.paramDtype ?? 'float32') !== 'float32') return null; // 16-bit parameters are their own copy
  return o.compute === 'bfloat16' || o.compute === 'float16' ? o.compute : null;
}

export interface StepGraphOptions {
  objective: Objective;
  optimizer: GraphOptimizer;
  clipNorm: number | null;
  compute: ComputeDtype;
  lossScale: boolean;
  /**
   * Fused kernels (domain latent_sft; sessions of @latent-sft/runtime, whose addon has them): the 16-bit
   * attention softmax as MaskedSoftmax (graph.fuseMaskedSoftmax, before the backward is built), the
   * 16-bit RMSNorms as RMSNorm (graph.fuseRmsNorm), the MLP gating as SwiGLU (graph.fuseSwiGlu), the LM
   * head's cross-entropy in vocabulary chunks (graph.fuseLinearCrossEntropy), and the optimizer's fused node with a SumSquares grad norm when it has one (AdamW). `true`: all; an
   * object picks them (the attention as FlashAttention only there: FusedParts.attention).
   */
  fused?: boolean | FusedParts;
  /**
   * The head sizes FusedParts.attention may rewrite (graph.fuseFlashAttention's headDims): the Trainer
   * gives the CUDA kernel's [64, 128] on CUDA; absent: any (the CPU kernel).
   */
  attentionHeadDims?: readonly number[];
  /**
   * With FusedParts.multiTensor, also merge the forward's casts of the float32 masters into one CastMulti
   * (graph.fuseMultiTensorCast): the Trainer sets it on CUDA. Not on ORT's CPU provider: there a standard Cast
   * of a 16-bit graph may be folded away by ORT's own cast transformers around ops it runs in float32 (so the
   * value is never rounded), which a CastMulti is not, and the CPU results would change.
   */
  multiTensorCast?: boolean;
  /** Where a warning goes (FusedParts.attention on but no attention rewritten: warnNoFlashAttention); absent: nowhere. */
  logger?: Logger;
  /**
   * Storage of the trainable parameters and the optimizer moments: 'float32' (default: float32 masters, the
   * forward reads them cast to `compute`), or the 16-bit compute dtype itself (PyTorch's bf16 recipe: no
   * masters, the forward reads the parameters as they are; the fused AdamW widens p, g, m, v exactly, does
   * float32 math and rounds p', m', v' once). 16-bit needs the fused AdamW (optimizer.fusedUpdate).
   */
  paramDtype?: 'float32' | 'bfloat16' | 'float16';
  /**
   * Activation recomputation: 'layers' rebuilds each `Graph.recomputable` segment of the forward (the
   * decoder's layers) in the backward from the segment's input, just after its output's cotangent
   * exists (graph.recomputeSegments), so only the layer inputs are kept from the forward; 'none'
   * (default) keeps every value the backward reads.
   */
  recompute?: Recompute;
}

/** TrainerOptions.recompute / StepGraphOptions.recompute. */
export type Recompute = 'none' | 'layers';

/** The built graphs and the metric names (outputs `metric.<name>`). */
export interface StepGraphs {
  /** gradAccum 1, not split: one graph per step. */
  fused?: GraphT;
  /** gradAccum > 1 or split: run per micro-batch, then `update` once. */
  grad?: GraphT;
  update?: GraphT;
  metrics: string[];
  /** What recompute 'layers' did to the fused (or grad) graph, per segment; empty with 'none'. */
  recomputed: RecomputedSegment[];
}

function checkObjective(o: Objective): void {
  const seen = new Map<string, string>();
  for (const part of ['trainable', 'frozen', 'batch'] as const) {
    for (const [name, spec] of Object.entries(o[part])) {
      const prev = seen.get(name);
      if (prev !== undefined) throw inputError({ field: `objective.${part}.${name}` }, `also declared in ${prev}`);
      seen.set(name, part);
      if (part === 'trainable' && spec.dtype !== 'float32')
        throw inputError({ field: `objective.trainable.${name}` }, `trainable masters are float32, got ${spec.dtype}`);
      if (part !== 'batch' && !spec.shape.every((d) => typeof d === 'number')) {
        throw inputError({ field: `objective.${part}.${name}` }, `needs a static shape, got [${spec.shape.join(', ')}]`);
      }
      if (/^(trainer\.|opt\.|loss$|loss_scale$|grad_norm$|acc_reset$|metric\.|acc\.|m\.|v\.|momentum\.|copy\.)/.test(name) || name.endsWith('.new')) {
        throw inputError({ field: `objective.${part}.${name}` }, 'name is reserved by the trainer graphs');
      }
    }
  }
  if (Object.keys(o.trainable).length === 0) throw inputError({ field: 'objective.trainable' }, 'no trainable inputs');
}

/**
 * FusedParts.attention rewrote no attention of `g`: a one-line warning on o.logger naming the head sizes of the
 * attentions left as MaskedSoftmax and the ones the kernel takes here (attentionHeadDims), or saying there is none.
 */
function warnNoFlashAttention(g: Graph, o: StepGraphOptions): void {
  if (o.logger === undefined) return;
  // Each MaskedSoftmax(Reshape(MatMul(q, kᵀ)), mask) the softmax fusion made: q's last dim is its head size.
  const headDims = new Set<number | string>();
  for (const n of g.nodes) {
    const rows = n.op === 'MaskedSoftmax' ? g.producer(n.inputs[0] as string) : undefined;
    const qk = rows === undefined ? undefined : g.producer(rows.inputs[0] as string);
    if (qk?.op === 'MatMul') headDims.add(g.value(qk.inputs[0] as string).shape.at(-1) as number | string);
  }
  const dims = [...headDims];
  const supported = o.attentionHeadDims?.join(', ') ?? 'any';
  const why =
    dims.length === 0
      ? `the ${o.compute} graph has no 16-bit MaskedSoftmax attention to rewrite`
      : `head dim ${dims.join(', ')}; FlashAttention takes ${supported} here`;
  o.logger.warn(
    { headDims: dims, supported: o.attentionHeadDims ?? 'any', compute: o.compute },
    `fusedKernels.attention rewrote no attention layer (${why}): the attention stays MatMul, MaskedSoftmax, MatMul`,
  );
}

/**
 * Declares inputs, builds the loss; returns grads of the masters (unscaled) and the loss/metric outputs.
 * With weight copies (`copy` set) the forward reads the inputs `copy.<p>` instead of Cast(master) and
 * the grads are those of the copies (what the Cast's own gradient would widen: the same values).
 */
function forwardBackward(
  g: Graph,
  o: StepGraphOptions,
  copy: 'bfloat16' | 'float16' | null = null,
): { grads: Record<string, Tensor>; masters: Record<string, Tensor>; metrics: string[]; loss: Tensor; recomputed: RecomputedSegment[] } {
  const obj = o.objective;
  const masters: Record<string, Tensor> = {};
  const view: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(obj.trainable)) {
    masters[n] = g.input(n, paramDtypeOf(o, s.dtype), s.shape);
    view[n] = copy === null ? g.cast(masters[n], o.compute) : g.input(`copy.${n}`, copy, s.shape); // a 16-bit parameter: itself
  }
  const inputs: Record<string, Tensor> = {};
  for (const part of [obj.frozen, obj.batch]) for (const [n, s] of Object.entries(part)) inputs[n] = g.input(n, s.dtype, s.shape);
  const scale = o.lossScale ? g.input('loss_scale', 'float32', []) : null;
  const built = obj.buildLoss(g, view, inputs);
  const parts = fusedParts(o.fused);
  if (parts.softmax) fuseMaskedSoftmax(g);
  if (parts.attention && fuseFlashAttention(g, o.attentionHeadDims !== undefined ? { headDims: o.attentionHeadDims } : {}) === 0) warnNoFlashAttention(g, o);
  if (parts.rmsnorm) fuseRmsNorm(g);
  if (parts.swiglu) fuseSwiGlu(g);
  if (parts.rope) fuseRope(g);
  if (parts.dropout) {
    fuseSeededDropout(g);
    fuseHashWords(g);
  }
  if (parts.crossEntropy) fuseLinearCrossEntropy(g, parts.ceChunk !== undefined ? { chunk: parts.ceChunk } : {});
  if (built.loss.rank !== 0) throw new Error(`objective loss must be a scalar, got ${built.loss.shapeText}`);
  const loss = g.cast(built.loss, 'float32');
  g.output(loss, 'loss');
  const metrics: string[] = [];
  for (const [k, t] of Object.entries(built.metrics ?? {})) {
    if (t.rank !== 0) throw new Error(`objective metric '${k}' must be a scalar, got ${t.shapeText}`);
    g.output(g.cast(t, 'float32'), `metric.${k}`);
    metrics.push(k);
  }
  const names = Object.keys(masters);
  const backwardFrom = g.nodes.length;
  const layers = (o.recompute ?? 'none') === 'layers';
  const cotangents = new Map<string, Tensor | null>(layers ? g.segments.map((s) => [s.output, null]) : []);
  const raw = grad(
    g,
    loss,
    names.map((n) => (copy === null ? masters : view)[n] as Tensor),
    scale ?? undefined,
    cotangents,
  );
  // Recomputation first: it splits forward from backward at `backwardFrom`, which the lowering (several
  // nodes in place of one) would shift.
  const recomputed = layers ? recomputeSegments(g, backwardFrom, cotangents, raw) : [];
  lowerLinearLogProb(g);
  const grads: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    let gr = raw[i] as Tensor;
    if (scale !== null) gr = g.div(g.cast(gr, 'float32'), scale);
    grads[n] = gr;
  });
  return { grads, masters, metrics, loss, recomputed };
}

/**
 * The gradient before the backward's final Cast to the float32 master's dtype, when it is one (a
 * bfloat16/float16 weight gradient): the fused optimizer widens it exactly as it reads it, so the float32
 * copy is never written.
 */
/** The graph dtype of a trainable input declared `declared` (float32) under `o.paramDtype`. */
function paramDtypeOf(o: Pick<StepGraphOptions, 'paramDtype' | 'compute'>, declared: DType): DType {
  const pd = o.paramDtype ?? 'float32';
  if (pd === 'float32') return declared;
  if (pd !== o.compute) throw inputError({ field: 'precision.params' }, `16-bit parameters must be the compute dtype ${o.compute}, got ${pd}`);
  return pd;
}

function narrowGrad(g: Graph, gr: Tensor): Tensor {
  const node = g.producer(gr.name);
  if (node === undefined || node.op !== 'Cast' || gr.dtype !== 'float32') return gr;
  const src = g.value(node.inputs[0] as string);
  return src.dtype === 'bfloat16' || src.dtype === 'float16' ? src : gr;
}

/**
 * The update of every master from its gradient. With the fused optimizer, `loss` (the fused graph's;
 * null in the update graph, whose host checks the loss before running it) joins the grad norm in the
 * skip guard: the fused AdamW changes nothing when either is not finite (globalNormFusedGraph), and every
 * node of the forward becomes an ancestor of every update node (what in-place state needs: in-place.ts).
 */
function applyUpdate(
  g: Graph,
  o: StepGraphOptions,
  masters: Record<string, Tensor>,
  grads: Record<string, Tensor>,
  loss: Tensor | null,
  copy: 'bfloat16' | 'float16' | null = null,
): void {
  const fused = fusedParts(o.fused).optimizer ? o.optimizer.fusedUpdate : undefined;
  if (fused === undefined && (o.paramDtype ?? 'float32') !== 'float32')
    throw inputError({ field: 'precision.params' }, `${o.paramDtype} parameters need the fused AdamW (fusedKernels with optimizer, optimizer kind adamw)`);
  if (fused !== undefined) {
    const names = Object.keys(masters);
    const raw = names.map((n) => narrowGrad(g, grads[n] as Tensor));
    const { norm, coef } = globalNormFusedGraph(g, raw, o.clipNorm, loss === null ? [] : [loss]);
    g.output(norm, 'grad_norm');
    names.forEach((n, i) => g.output(fused(g, masters[n] as Tensor, raw[i] as Tensor, coef, n, copy ?? undefined), `${n}.new`));
    if (fusedParts(o.fused).multiTensor) fuseMultiTensorAdamW(g);
    return;
  }
  const clipped = clipByGlobalNormGraph(g, grads, o.clipNorm);
  g.output(g.cast(clipped.norm, 'float32'), 'grad_norm');
  for (const [n, p] of Object.entries(masters)) g.output(o.optimizer.update(g, p, clipped.grads[n] as Tensor, n), `${n}.new`);
}

/**
 * Builds the step graphs for gradAccum micro-batches per update: one fused graph, or (gradAccum > 1,
 * or `split`: data-parallel) a grad and an update graph.
 */
export function buildStepGraphs(o: StepGraphOptions, gradAccum: number, split = gradAccum > 1): StepGraphs {
  checkObjective(o.objective);
  const parts = fusedParts(o.fused);
  if (parts.attention && !parts.softmax)
    throw inputError({ field: 'fusedKernels.attention' }, 'the fused attention needs the fused softmax (fusedKernels.softmax): it rewrites the MaskedSoftmax');
  if (o.recompute !== undefined && o.recompute !== 'none' && o.recompute !== 'layers')
    throw inputError({ field: 'recompute' }, `expected 'none' or 'layers', got ${JSON.stringify(o.recompute)}`);
  if (!Number.isInteger(gradAccum) || gradAccum < 1) throw inputError({ field: 'gradAccum' }, `must be an integer >= 1, got ${gradAccum}`);
  if (!split) {
    const g = new Graph('train_step');
    const copy = weightCopyDtype(o, 1);
    const fb = forwardBackward(g, o, copy);
    applyUpdate(g, o, fb.masters, fb.grads, fb.loss, copy);
    g.prune();
    if (parts.multiTensor && o.multiTensorCast === true) fuseMultiTensorCast(g);
    return { fused: g, metrics: fb.metrics, recomputed: fb.recomputed };
  }
  const gg = new Graph('train_grad');
  const fb = forwardBackward(gg, o);
  const reset = gg.input('acc_reset', 'bool', []);
  for (const [n, g16] of Object.entries(fb.grads)) {
    const gr = gg.cast(g16, 'float32'); // 16-bit parameters' gradients are summed in float32
    const acc = gg.input(`acc.${n}`, gr.dtype, gr.shape);
    gg.output(gg.where(reset, gr, gg.add(acc, gr)), `acc.${n}.new`);
  }
  gg.prune();
  if (parts.multiTensor && o.multiTensorCast === true) fuseMultiTensorCast(gg);
  const ug = new Graph('train_update');
  const masters: Record<string, Tensor> = {};
  const mean: Record<string, Tensor> = {};
  for (const [n, s] of Object.entries(o.objective.trainable)) masters[n] = ug.input(n, paramDtypeOf(o, s.dtype), s.shape);
  for (const [n, s] of Object.entries(o.objective.trainable)) {
    const acc = ug.input(`acc.${n}`, s.dtype, s.shape);
    mean[n] = ug.div(acc, ug.scalar(gradAccum, s.dtype));
  }
  applyUpdate(ug, o, masters, mean, null);
  ug.prune();
  return { grad: gg, update: ug, metrics: fb.metrics, recomputed: fb.recomputed };
}
