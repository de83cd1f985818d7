// Loss helpers composed of primitive ops, so their gradients come from the rule table.
// crossEntropy: logits [N, V], labels [N] (int64) → mean NLL over labels ≠ ignoreIndex.
import type { Graph, Tensor } from './graph.js';

/**
 * Mean cross-entropy of `logits` [N, V] against int64 `labels` [N], skipping `ignoreIndex` (as
 * torch.nn.functional.cross_entropy: NaN when every label is ignored). Built from LogSoftmax,
 * GatherElements, Equal/Not/Where masks and ReduceSum.
 */
export function crossEntropy(g: Graph, logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, V], got ${logits.shapeText}`);
  if (labels.rank !== 1 || labels.dtype !== 'int64') throw new Error(`crossEntropy: labels must be int64 [N], got ${labels.dtype}${labels.shapeText}`);
  const logp = g.logSoftmax(logits, 1);
  const valid = g.op1('Not', [g.equal(labels, g.scalar(ignoreIndex, 'int64'))]);
  const safe = g.where(valid, labels, g.scalar(0, 'int64'));
  const picked = g.reshape(g.op1('GatherElements', [logp, g.unsqueeze(safe, [1])], { axis: 1 }), [-1]);
  const w = g.cast(valid, logits.dtype);
  const total = g.reduceSum(g.mul(g.neg(picked), w), [0], false);
  return g.div(total, g.reduceSum(w, [0], false));
}
