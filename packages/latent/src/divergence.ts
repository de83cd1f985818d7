// The Stage-2 latent KL losses (spec §4.4) and per-row entropy, as fp64 references for the graph-side
// losses. Leaves out the shift-by-one that picks the student logits (o[b, s-1 : e-1]), the batch mean
// (loss_kl = Σ_b mean_t KL_t / B, done by the caller), the CE term and gradients.
//
// Shape legend: m = latent slots, V = vocabulary, k = stored top-k entries.
// References: `kd_kl_loss` (v1) and `kd_kl_loss_topk` (HEAD), src/modeling/modeling_stage2.py.
//   q     = p / (Σ p + 1e-12)                       teacher renormalised (inferred placement of 1e-12)
//   KL_t  = Σ_j q_j (log max(q_j, 1e-12) − log_softmax(o_t)[idx_j])
// Temperature is 1, so there is no T² factor.

import { checkIndices, checkMatrix, checkProbabilities, checkSameShape, shapeOf, type Matrix } from './matrix.js';
import { logSumExpRow } from './softmax.js';

/** Per-slot KL values and their mean over the m slots of one sample. */
export interface KlResult {
  /** KL_t for every latent slot t, [m]. */
  perSlot: Float64Array;
  /** mean_t KL_t. */
  mean: number;
}

/** KL over the slots of one row; `slot(j)` gives the vocab id of teacher entry j. */
function klRows(fn: string, teacher: Matrix, studentLogits: Matrix, slot: (i: number, j: number) => number): KlResult {
  const { rows: m, cols: k } = teacher;
  if (m === 0) throw new Error(`${fn}: needs at least one latent slot, teacher has shape ${shapeOf(teacher)}`);
  const V = studentLogits.cols;
  const perSlot = new Float64Array(m);
  let total = 0;
  for (let i = 0; i < m; i++) {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += teacher.data[i * k + j] as number;
    const denom = sum + 1e-12;
    const lse = logSumExpRow(fn, studentLogits.data, i * V, V, i, shapeOf(studentLogits));
    let kl = 0;
    for (let j = 0; j < k; j++) {
      const q = (teacher.data[i * k + j] as number) / denom;
      if (q === 0) continue; // 0 · (log 1e-12 − ·) = 0
      const logStudent = (studentLogits.data[i * V + slot(i, j)] as number) - lse;
      kl += q * (Math.log(Math.max(q, 1e-12)) - logStudent);
    }
    perSlot[i] = kl;
    total += kl;
  }
  return { perSlot, mean: total / m };
}

/**
 * HEAD sparse KL: teacher top-k probs [m,k] at vocab ids teacherIdx [m,k] against the student's
 * full-vocabulary log-softmax of studentLogits [m,V], gathered at the teacher ids.
 */
export function klTopK(teacherProbs: Matrix, teacherIdx: Matrix<Int32Array>, studentLogits: Matrix): KlResult {
  const fn = 'klTopK';
  checkSameShape(fn, ['teacherProbs', teacherProbs], ['teacherIdx', teacherIdx]);
  checkMatrix(fn, 'studentLogits', studentLogits);
  if (studentLogits.rows !== teacherProbs.rows) {
    throw new Error(`${fn}: teacherProbs has shape ${shapeOf(teacherProbs)} but studentLogits has shape ${shapeOf(studentLogits)} (m must agree)`);
  }
  checkProbabilities(fn, 'teacherProbs', teacherProbs);
  checkIndices(fn, 'teacherIdx', teacherIdx, studentLogits.cols);
  const k = teacherIdx.cols;
  return klRows(fn, teacherProbs, studentLogits, (i, j) => teacherIdx.data[i * k + j] as number);
}

/** v1 dense KL: teacher probabilities [m,V] against studentLogits [m,V]. */
export function klFull(teacher: Matrix, studentLogits: Matrix): KlResult {
  const fn = 'klFull';
  checkSameShape(fn, ['teacher', teacher], ['studentLogits', studentLogits]);
  checkProbabilities(fn, 'teacher', teacher);
  return klRows(fn, teacher, studentLogits, (_i, j) => j);
}

/** Shannon entropy H = −Σ_j p_j log p_j (nats, 0·log 0 = 0) of each row of probs [m,k] → [m]. */
export function entropy(probs: Matrix): Float64Array {
  const fn = 'entropy';
  checkMatrix(fn, 'probs', probs);
  checkProbabilities(fn, 'probs', probs);
  const { rows: m, cols: k } = probs;
  const out = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let h = 0;
    for (let j = 0; j < k; j++) {
      const p = probs.data[i * k + j] as number;
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}
