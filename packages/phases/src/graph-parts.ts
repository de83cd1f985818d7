// Graph pieces shared by the objectives:
//   modelWeights / modelLora  the tensors that @latent-sft/models' decoder() takes (weights by HF name,
//                  LoRA by PEFT name), looked up by a binder in the objective's own inputs (prefixed names
//                  of the Phase-1 encoder and decoder, the Trainer's compute-dtype views of trainables).
//   gatherRows     x [B,T,D] at int64 positions [B,m] → [B,m,D] (row Gather on x flattened to [B·T,D]),
//                  with positions clamped to [0,T): the encoder states at compress positions, and the
//                  student logits at the position before each latent slot (spec §4.4) for a batch
//                  whose padded latent count m is only known at run time.
// Shapes: B batch, T sequence, m latent slots (padded), D feature size.
import type { Graph, Tensor } from '@latent-sft/graph';
import { type DecoderLora, type LoraConfig, type ModelConfig, loraParameterShapes, parameterShapes } from '@latent-sft/models';

/** `bind(name)` for every name, dropping the unbound ones (decoder() names any it then misses). */
function bound(names: readonly string[], bind: (name: string) => Tensor | undefined): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const n of names) {
    const t = bind(n);
    if (t !== undefined) out[n] = t;
  }
  return out;
}

/** The weights of `config` by HF name (lm_head only with `withHead`), each `bind(name)`. */
export function modelWeights(config: ModelConfig, withHead: boolean, bind: (name: string) => Tensor | undefined): Record<string, Tensor> {
  return bound(
    parameterShapes(config)
      .map((p) => p.name)
      .filter((n) => withHead || n !== 'lm_head.weight'),
    bind,
  );
}

/** The decoder LoRA of `lora`: its tensors by PEFT name (`bind(name)`), dropout from `seed` when given. */
export function modelLora(config: ModelConfig, lora: LoraConfig, bind: (name: string) => Tensor | undefined, seed?: Tensor): DecoderLora {
  return {
    config: lora,
    tensors: bound(
      loraParameterShapes(config, lora).map((s) => s.name),
      bind,
    ),
    ...(seed !== undefined ? { dropoutSeed: seed } : {}),
  };
}

/** dim `axis` of `t` as an int64 scalar tensor (a constant when static). */
function dimOf(g: Graph, t: Tensor, axis: number): Tensor {
  const n = t.shape[axis];
  return typeof n === 'number' ? g.scalar(n, 'int64') : g.gather(g.shapeOf(t), g.scalar(axis, 'int64'), 0);
}

/** out[b,i] = x[b, clamp(positions[b,i] + offset, 0, T−1)]: x [B,T,D], positions int64 [B,m] → [B,m,D]. */
export function gatherRows(g: Graph, x: Tensor, positions: Tensor, offset = 0): Tensor {
  if (x.rank !== 3) throw new Error(`gatherRows: x must be [B, T, D], got ${x.dtype}${x.shapeText}`);
  if (positions.rank !== 2 || positions.dtype !== 'int64')
    throw new Error(`gatherRows: positions must be int64 [B, m], got ${positions.dtype}${positions.shapeText}`);
  const D = x.shape[2];
  if (typeof D !== 'number') throw new Error(`gatherRows: x needs a static last dim, got ${x.shapeText}`);
  const i64 = (v: number): Tensor => g.scalar(v, 'int64');
  const T = dimOf(g, x, 1);
  let pos = offset === 0 ? positions : g.add(positions, i64(offset));
  pos = g.where(g.op1('Less', [pos, i64(0)]), i64(0), pos);
  const last = g.sub(T, i64(1));
  pos = g.where(g.op1('Greater', [pos, last]), last, pos);
  const iotaB = g.op1('Range', [i64(0), dimOf(g, x, 0), i64(1)]); // [B]
  const rowBase = g.unsqueeze(g.mul(iotaB, T), [1]); // [B,1]
  return g.gather(g.reshape(x, [-1, D]), g.add(pos, rowBase), 0);
}

/**
 * The fraction of sequences whose every supervised position is predicted exactly: with the labels shifted
 * as causalLmLoss does (position t scored against labels[t + 1]), a row counts when ArgMax(logits[t]) equals
 * the label at every t whose label is not `ignoreIndex`. Teacher-forced exact match of the whole target
 * equals greedy decoding reproducing it token for token. logits [B,T,V], labels int64 [B,T] → float32 [].
 */
export function sequenceExactMatch(g: Graph, logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (logits.rank !== 3) throw new Error(`sequenceExactMatch: logits must be [B, T, V], got ${logits.shapeText}`);
  if (labels.rank !== 2 || labels.dtype !== 'int64') throw new Error(`sequenceExactMatch: labels must be int64 [B, T], got ${labels.dtype}${labels.shapeText}`);
  const pad = g.expand(g.scalar(ignoreIndex, 'int64'), g.concat([g.slice(g.shapeOf(labels), [0], [1]), g.ints([1])], 0));
  const shifted = g.concat([g.slice(labels, [1], [2 ** 62], [1]), pad], 1);
  const pred = g.op1('ArgMax', [logits], { axis: 2, keepdims: 0 });
  const valid = g.op1('Not', [g.equal(shifted, g.scalar(ignoreIndex, 'int64'))]);
  const wrong = g.op1('And', [valid, g.op1('Not', [g.equal(pred, shifted)])]);
  const wrongPerRow = g.reduceSum(g.cast(wrong, 'float32'), [1], false);
  const right = g.cast(g.equal(wrongPerRow, g.scalar(0, 'float32')), 'float32');
  return g.reduceMean(right, [0], false);
}
