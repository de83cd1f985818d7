// Graph-side latent slots of the decoder sequence: placing the latent embeddings z into the decoder
// input embeddings at the latent slots (spec §3.2 last bullets, §4.2), and picking the student logits
// that predict each latent from the PREVIOUS position (spec §4.4: p_logits = o[b, s-1 : e-1], §10
// "shift-by-one"). Batched with padding: m is the largest latent count of the batch, and a bool
// `latentValid` [B,m] marks the real slots of each example.
// Leaves out building the token embeddings (the decoder gathers its embedding table at input ids with
// the -100 slots replaced by any valid id) and the LTIM/LTSuM masks (@latent-sft/masks).
//
// Shape legend: B = batch, T = sequence length, m = latent slots (padded), d = hidden size, V = vocabulary.
//
// Scatter as a sum, not ScatterND: the graph package has no gradient for ScatterND, so the slots are a
// one-hot selection S [B,T,m] built in-graph from the positions (Equal against 0..T−1, And valid,
// Cast), placed = S·z (MatMul: gradient Sᵀ·dy into z), and out = Where(slot, placed, tokens). The
// gradient reaches z only at valid slots and tokenEmbeds only off the slots, and a slot's token
// embedding is never read (a NaN there does not leak). Cost B·T·m·d multiply-adds, small next to the
// decoder. Contract (not checkable in a graph): valid positions are distinct and in [0, T); an
// out-of-range valid position replaces nothing, and two valid slots at one position are summed.
import type { Graph, Tensor } from '@latent-sft/graph';
import { requireDtype, requireFloatTensor, requireRank, requireSameDim, requireSameDtype } from './graph-checks.js';

/** int64 [n] holding 0..n−1: a constant when n is static, else Range(0, n) from a scalar dim. */
function iotaOf(g: Graph, t: Tensor, axis: number): Tensor {
  const n = t.shape[axis];
  if (typeof n === 'number')
    return g.constant(
      Array.from({ length: n }, (_, i) => i),
      'int64',
      [n],
    );
  const size = g.gather(g.shapeOf(t), g.scalar(axis, 'int64'), 0);
  return g.op1('Range', [g.scalar(0, 'int64'), size, g.scalar(1, 'int64')]);
}

/** dim `axis` of `t` as an int64 scalar tensor. */
function dimOf(g: Graph, t: Tensor, axis: number): Tensor {
  const n = t.shape[axis];
  return typeof n === 'number' ? g.scalar(n, 'int64') : g.gather(g.shapeOf(t), g.scalar(axis, 'int64'), 0);
}

function checkValid(fn: string, valid: Tensor, like: [string, Tensor]): void {
  requireRank(fn, 'latentValid', valid, 2, 'bool [B, m]');
  requireDtype(fn, 'latentValid', valid, 'bool');
  requireSameDim(fn, ['latentValid', valid, 0], [like[0], like[1], 0], 'B');
  requireSameDim(fn, ['latentValid', valid, 1], [like[0], like[1], 1], 'm');
}

/**
 * The decoder inputs with latent i of example b at position latentPositions[b,i]: tokenEmbeds
 * [B,T,d], latentEmbeds [B,m,d], latentPositions [B,m] int64, latentValid [B,m] bool (default: all
 * slots valid) → [B,T,d]. Differentiable w.r.t. latentEmbeds (and tokenEmbeds off the slots).
 */
export function gScatterLatents(g: Graph, tokenEmbeds: Tensor, latentEmbeds: Tensor, latentPositions: Tensor, latentValid?: Tensor): Tensor {
  const fn = 'gScatterLatents';
  requireRank(fn, 'tokenEmbeds', tokenEmbeds, 3, '[B, T, d]');
  requireFloatTensor(fn, 'tokenEmbeds', tokenEmbeds);
  requireRank(fn, 'latentEmbeds', latentEmbeds, 3, '[B, m, d]');
  requireSameDtype(fn, ['tokenEmbeds', tokenEmbeds], ['latentEmbeds', latentEmbeds]);
  requireSameDim(fn, ['tokenEmbeds', tokenEmbeds, 0], ['latentEmbeds', latentEmbeds, 0], 'B');
  requireSameDim(fn, ['tokenEmbeds', tokenEmbeds, 2], ['latentEmbeds', latentEmbeds, 2], 'd');
  requireRank(fn, 'latentPositions', latentPositions, 2, 'int64 [B, m]');
  requireDtype(fn, 'latentPositions', latentPositions, 'int64');
  requireSameDim(fn, ['latentPositions', latentPositions, 0], ['latentEmbeds', latentEmbeds, 0], 'B');
  requireSameDim(fn, ['latentPositions', latentPositions, 1], ['latentEmbeds', latentEmbeds, 1], 'm');
  let hit = g.equal(g.unsqueeze(latentPositions, [2]), iotaOf(g, tokenEmbeds, 1)); // [B,m,T]
  if (latentValid !== undefined) {
    checkValid(fn, latentValid, ['latentPositions', latentPositions]);
    hit = g.op1('And', [hit, g.unsqueeze(latentValid, [2])]);
  }
  const select = g.transpose(g.cast(hit, latentEmbeds.dtype), [0, 2, 1]); // S [B,T,m], one-hot rows
  const placed = g.matmul(select, latentEmbeds); // [B,T,d]
  const slot = g.op1('Greater', [g.reduceSum(select, [2], true), g.scalar(0.5, select.dtype)]); // [B,T,1]
  return g.where(slot, placed, tokenEmbeds);
}

/**
 * The student logits that predict the latents: out[b,t] = logits[b, latentStart[b] − 1 + t] for
 * t < m (spec §4.4 p_logits = o[b, s-1 : e-1]). logits [B,T,V], latentStart [B] int64 (s ≥ 1, the
 * first latent slot) → [B,m,V]. Built as a row Gather on logits flattened to [B·T, V] at
 * b·T + s_b − 1 + t. Positions are clamped to [0, T) so that padded slots of shorter examples stay in
 * range; mask those slots in the loss (their rows are arbitrary).
 */
export function gShiftedSlotLogits(g: Graph, logits: Tensor, latentStart: Tensor, m: number): Tensor {
  const fn = 'gShiftedSlotLogits';
  requireRank(fn, 'logits', logits, 3, '[B, T, V]');
  requireRank(fn, 'latentStart', latentStart, 1, 'int64 [B]');
  requireDtype(fn, 'latentStart', latentStart, 'int64');
  requireSameDim(fn, ['logits', logits, 0], ['latentStart', latentStart, 0], 'B');
  if (!Number.isInteger(m) || m < 1) throw new Error(`${fn}: m = ${m} must be a positive integer (logits ${logits.shapeText})`);
  const i64 = (v: number): Tensor => g.scalar(v, 'int64');
  const T = dimOf(g, logits, 1);
  const offsets = g.constant(
    Array.from({ length: m }, (_, t) => t - 1),
    'int64',
    [m],
  );
  let pos = g.add(g.unsqueeze(latentStart, [1]), offsets); // [B,m]: s_b − 1 + t
  pos = g.where(g.op1('Less', [pos, i64(0)]), i64(0), pos);
  const last = g.sub(T, i64(1));
  pos = g.where(g.op1('Greater', [pos, last]), last, pos);
  const rowBase = g.unsqueeze(g.mul(iotaOf(g, logits, 0), T), [1]); // [B,1]: b·T
  const flat = g.reshape(logits, g.concat([g.ints([-1]), g.slice(g.shapeOf(logits), [2], [3])], 0)); // [B·T, V]
  return g.gather(flat, g.add(pos, rowBase), 0);
}
