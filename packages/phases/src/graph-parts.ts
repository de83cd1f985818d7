// Graph pieces shared by the objectives:
//   inlineDecoder  builds a decoder (@latent-sft/models buildDecoder) in a scratch graph and copies it
//                  into the target graph (train.inlineGraph), with every scratch input bound to a
//                  tensor of the target graph. buildDecoder declares fixed input names (input_ids,
//                  position_ids, attention_mask, HF parameter names), so two decoders (the Phase-1
//                  encoder and decoder) cannot share one graph otherwise. Bound tensors are Cast to the
//                  declared dtype when they differ (e.g. bf16 trainer views of float32 inputs).
//   gatherRows     x [B,T,D] at int64 positions [B,m] → [B,m,D] (row Gather on x flattened to [B·T,D]),
//                  with positions clamped to [0,T): the encoder states at compress positions, and the
//                  student logits at the position before each latent slot (spec §4.4) for a batch
//                  whose padded latent count m is only known at run time.
// Shapes: B batch, T sequence, m latent slots (padded), D feature size.
import { type DType, Graph, type Tensor } from '@latent-sft/graph';
import { type DecoderOptions, type ModelConfig, buildDecoder } from '@latent-sft/models';
import { inlineGraph } from '@latent-sft/train';

/** Outputs of an inlined decoder (null when not requested). */
export interface InlinedDecoder {
  logits: Tensor | null;
  hidden: Tensor | null;
}

/** Declared dtype and shape of a scratch-graph input, passed to the binder. */
export interface InputDecl {
  dtype: DType;
  shape: readonly (number | string)[];
}

/**
 * Appends `buildDecoder(config, opts)` to `g` through train.inlineGraph (scratch graph named by
 * `prefix`); `bind(name, decl)` returns the tensor of `g` that feeds the decoder's input `name` (HF
 * parameter names, PEFT LoRA names, input_ids / inputs_embeds, attention_mask, position_ids,
 * dropout_seed); it is Cast to the declared dtype when they differ.
 */
export function inlineDecoder(
  g: Graph, config: ModelConfig, opts: DecoderOptions, prefix: string,
  bind: (name: string, decl: InputDecl) => Tensor | undefined,
): InlinedDecoder {
  const sub = new Graph(prefix);
  const dec = buildDecoder(sub, config, { ...opts, markOutputs: false });
  const feeds: Record<string, Tensor> = {};
  for (const input of sub.inputs) {
    const t = bind(input.name, { dtype: input.dtype, shape: input.shape });
    if (t === undefined) throw new Error(`inlineDecoder(${prefix}): no tensor bound to decoder input '${input.name}' ${input.dtype}${input.shapeText}`);
    if (t.rank !== input.rank) {
      throw new Error(`inlineDecoder(${prefix}): '${input.name}' needs rank ${input.rank} ${input.shapeText}, bound '${t.name}' is ${t.dtype}${t.shapeText}`);
    }
    feeds[input.name] = t;
  }
  const copy = inlineGraph(g, sub, feeds);
  return { logits: dec.logits === null ? null : copy(dec.logits), hidden: dec.hidden === null ? null : copy(dec.hidden) };
}

/** dim `axis` of `t` as an int64 scalar tensor (a constant when static). */
function dimOf(g: Graph, t: Tensor, axis: number): Tensor {
  const n = t.shape[axis];
  return typeof n === 'number' ? g.scalar(n, 'int64') : g.gather(g.shapeOf(t), g.scalar(axis, 'int64'), 0);
}

/** out[b,i] = x[b, clamp(positions[b,i] + offset, 0, T−1)]: x [B,T,D], positions int64 [B,m] → [B,m,D]. */
export function gatherRows(g: Graph, x: Tensor, positions: Tensor, offset = 0): Tensor {
  if (x.rank !== 3) throw new Error(`gatherRows: x must be [B, T, D], got ${x.dtype}${x.shapeText}`);
  if (positions.rank !== 2 || positions.dtype !== 'int64') throw new Error(`gatherRows: positions must be int64 [B, m], got ${positions.dtype}${positions.shapeText}`);
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
