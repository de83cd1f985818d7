// Graph-side Stage-2 latent losses (spec §4.4) and entropy, batched with padding, as training-graph
// builders whose gradients come from the graph package's rule table (LogSoftmax, GatherElements,
// Where, ReduceSum, Div). CPU references: divergence.ts (klTopK, klFull, entropy), which these match
// on unpadded rows; graph-divergence.test.ts checks values and gradients on ORT CPU.
// Leaves out the shift-by-one that selects the student logits (gShiftedSlotLogits in graph-slots.ts),
// the CE term (crossEntropy of @latent-sft/graph) and the 1/1 weighting of CE + KL (the caller's sum).
//
// Shape legend: B = batch, m = latent slots (padded), k = stored top-k entries, V = vocabulary.
//   q      = p / (Σ p + 1e-12)                          teacher renormalised per slot
//   KL_t   = Σ_j [q_j > 0] q_j (log max(q_j, 1e-12) − log_softmax(o_t)[idx_j])
//   sample = Σ_t valid_t KL_t / max(Σ_t valid_t, 1)     mean over the valid slots of an example
//   loss   = Σ_b sample_b / B                           spec: loss_kl = Σ_b mean_t KL_t / B
// Numerics: the student log-softmax and the KL run in float32 for float16/bfloat16 logits (spec §8:
// "KL is computed in fp32"), else in the logits' dtype; the teacher probabilities are cast to that
// dtype. Padded slots must still hold ids in [0, V) (GatherElements reads them); their values are
// masked with Where, so they never enter the loss or the gradient. An example with no valid slot
// contributes 0 and still counts in B.
import type { Graph, Tensor } from '@latent-sft/graph';
import { computeDtype, requireDtype, requireFloatTensor, requireRank, requireSameDim, upcast } from './graph-checks.js';

/** The KL loss of a batch with its per-slot and per-example terms. */
export interface GraphKl {
  /** Scalar Σ_b mean_t KL_t / B. */
  loss: Tensor;
  /** KL_t per slot [B,m]; 0 at invalid slots. */
  perSlot: Tensor;
  /** mean over the valid slots of each example [B]. */
  perSample: Tensor;
}

/** Σ_j [q>0] q (log max(q,1e-12) − logp) over the last axis: q, logp [B,m,n] → [B,m]. */
function klTerms(g: Graph, teacher: Tensor, studentLogp: Tensor): Tensor {
  const c = studentLogp.dtype;
  const p = g.cast(teacher, c);
  const q = g.div(p, g.add(g.reduceSum(p, [2], true), g.scalar(1e-12, c)));
  const floor = g.scalar(1e-12, c);
  const logq = g.log(g.where(g.op1('Greater', [q, floor]), q, floor));
  const term = g.mul(q, g.sub(logq, studentLogp));
  const zero = g.scalar(0, c);
  return g.reduceSum(g.where(g.op1('Greater', [q, zero]), term, zero), [2], false);
}

/** Masks per-slot KL [B,m] with `valid` and reduces it to per-example means and the batch mean. */
function reduceSlots(fn: string, g: Graph, kl: Tensor, valid: Tensor | undefined): GraphKl {
  const c = kl.dtype;
  if (valid === undefined) {
    const perSample = g.reduceMean(kl, [1], false);
    return { loss: g.reduceMean(perSample, [0], false), perSlot: kl, perSample };
  }
  requireRank(fn, 'validMask', valid, 2, 'bool [B, m]');
  requireDtype(fn, 'validMask', valid, 'bool');
  requireSameDim(fn, ['validMask', valid, 0], ['per-slot KL', kl, 0], 'B');
  requireSameDim(fn, ['validMask', valid, 1], ['per-slot KL', kl, 1], 'm');
  const perSlot = g.where(valid, kl, g.scalar(0, c));
  const count = g.reduceSum(g.cast(valid, c), [1], false);
  const one = g.scalar(1, c);
  const denom = g.where(g.op1('Less', [count, one]), one, count);
  const perSample = g.div(g.reduceSum(perSlot, [1], false), denom);
  return { loss: g.reduceMean(perSample, [0], false), perSlot, perSample };
}

function checkStudent(fn: string, studentLogits: Tensor): void {
  requireRank(fn, 'studentLogits', studentLogits, 3, '[B, m, V]');
  requireFloatTensor(fn, 'studentLogits', studentLogits);
}

/**
 * HEAD sparse KL (`kd_kl_loss_topk`): teacher top-k probs [B,m,k] at ids teacherIdx [B,m,k] int64
 * against the student's full-vocabulary log-softmax of studentLogits [B,m,V] (already shifted to the
 * previous position), gathered at the teacher ids; validMask [B,m] bool (default: all valid).
 */
export function gKlTopK(g: Graph, teacherProbs: Tensor, teacherIdx: Tensor, studentLogits: Tensor, validMask?: Tensor): GraphKl {
  const fn = 'gKlTopK';
  checkStudent(fn, studentLogits);
  requireRank(fn, 'teacherProbs', teacherProbs, 3, '[B, m, k]');
  requireFloatTensor(fn, 'teacherProbs', teacherProbs);
  requireRank(fn, 'teacherIdx', teacherIdx, 3, 'int64 [B, m, k]');
  requireDtype(fn, 'teacherIdx', teacherIdx, 'int64');
  for (const ax of [0, 1, 2]) requireSameDim(fn, ['teacherProbs', teacherProbs, ax], ['teacherIdx', teacherIdx, ax], ['B', 'm', 'k'][ax] as string);
  for (const ax of [0, 1]) requireSameDim(fn, ['teacherProbs', teacherProbs, ax], ['studentLogits', studentLogits, ax], ['B', 'm'][ax] as string);
  const logp = g.logSoftmax(upcast(g, studentLogits), -1);
  const picked = g.op1('GatherElements', [logp, teacherIdx], { axis: 2 }); // [B,m,k]
  return reduceSlots(fn, g, klTerms(g, teacherProbs, picked), validMask);
}

/** v1 dense KL (`kd_kl_loss`): teacher probabilities [B,m,V] against studentLogits [B,m,V]; validMask [B,m]. */
export function gKlFull(g: Graph, teacher: Tensor, studentLogits: Tensor, validMask?: Tensor): GraphKl {
  const fn = 'gKlFull';
  checkStudent(fn, studentLogits);
  requireRank(fn, 'teacher', teacher, 3, '[B, m, V]');
  requireFloatTensor(fn, 'teacher', teacher);
  for (const ax of [0, 1, 2]) requireSameDim(fn, ['teacher', teacher, ax], ['studentLogits', studentLogits, ax], ['B', 'm', 'V'][ax] as string);
  const logp = g.logSoftmax(upcast(g, studentLogits), -1);
  return reduceSlots(fn, g, klTerms(g, teacher, logp), validMask);
}

/**
 * Shannon entropy −Σ p log p (nats, 0·log 0 = 0, with a zero gradient there) over the last axis of
 * probs [..., k] → [...], in float32 for float16/bfloat16 inputs.
 */
export function gEntropy(g: Graph, probs: Tensor): Tensor {
  const fn = 'gEntropy';
  requireFloatTensor(fn, 'probs', probs);
  if (probs.rank < 1) throw new Error(`${fn}: probs must have rank ≥ 1, got ${probs.dtype}${probs.shapeText}`);
  const p = upcast(g, probs);
  const c = computeDtype(probs.dtype);
  const zero = g.scalar(0, c);
  const pos = g.op1('Greater', [p, zero]);
  const safe = g.where(pos, p, g.scalar(1, c)); // log 1 = 0 where p = 0: no −∞, no NaN gradient
  return g.neg(g.reduceSum(g.where(pos, g.mul(p, g.log(safe)), zero), [probs.rank - 1], false));
}
