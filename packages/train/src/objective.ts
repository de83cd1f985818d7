// Training objectives: which graph inputs are trained, frozen or fed per batch, and how the loss is
// built from them. The Trainer declares every input itself (trainable ones as float32 masters, cast to
// the compute dtype) and hands the tensors to buildLoss.
//
// Builders that declare their own inputs (models' buildDecoder declares `input_ids`, the HF parameter
// names…) are built into a scratch Graph and copied in with `inlineGraph`, which maps the scratch
// graph's inputs onto the tensors the Trainer declared.
import type { Graph, Tensor, ValueSpec } from '@latent-sft/graph';
import type { HostTensor } from '@latent-sft/runtime';

/** A training objective: which graph inputs are trained, frozen or fed per batch, and the loss. */
export interface Objective {
  /** Get gradients and optimizer updates; float32 masters, device-resident. */
  trainable: Readonly<Record<string, ValueSpec>>;
  /** Constant over training (base weights, detached copies); device-resident, uploaded once. */
  frozen: Readonly<Record<string, ValueSpec>>;
  /** Fed every step (ids, masks, labels, positions…). */
  batch: Readonly<Record<string, ValueSpec>>;
  /**
   * The scalar loss (any float dtype) and optional scalar metrics (e.g. ce, kl), from the trainable
   * tensors (already cast to the compute dtype) and the frozen + batch inputs.
   */
  buildLoss(g: Graph, trainable: Record<string, Tensor>, inputs: Record<string, Tensor>): { loss: Tensor; metrics?: Record<string, Tensor> };
  /** Tokens in one micro-batch, for StepResult.tokens (optional). */
  countTokens?(batch: Readonly<Record<string, HostTensor>>): number;
}

/**
 * Copies every node and initializer of `sub` into `g`, with each input of `sub` replaced by
 * `feeds[name]` (cast to the input's dtype when it differs). Returns a map from values of `sub`
 * (tensors or names) to their copies in `g`. Throws naming the missing feeds.
 */
export function inlineGraph(g: Graph, sub: Graph, feeds: Readonly<Record<string, Tensor>>): (t: Tensor | string) => Tensor {
  const missing = sub.inputs.filter((t) => feeds[t.name] === undefined).map((t) => t.name);
  if (missing.length > 0) throw new Error(`inlineGraph: no feed for input${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of graph '${sub.name}'`);
  const map = new Map<string, Tensor>();
  for (const t of sub.inputs) {
    const f = feeds[t.name] as Tensor;
    if (f.graph !== g) throw new Error(`inlineGraph: feed '${t.name}' belongs to another graph`);
    map.set(t.name, g.cast(f, t.dtype));
  }
  for (const [name, c] of sub.initializers) map.set(name, g.initializer(g.fresh(`${sub.name}.${name}`), c));
  const get = (name: string): Tensor => {
    const t = map.get(name);
    if (t === undefined) throw new Error(`inlineGraph: value '${name}' of graph '${sub.name}' is not defined before use`);
    return t;
  };
  for (const n of sub.nodes) {
    const ins = n.inputs.map((x) => (x === '' ? null : get(x)));
    // Detached values stay detached (Graph.stopGradient marks its Identity nodes).
    const outs = (n as { stopGradient?: true }).stopGradient === true ? [g.stopGradient(ins[0] as Tensor)] : g.op(n.op, ins, n.attrs as never);
    n.outputs.forEach((o, i) => map.set(o, outs[i] as Tensor));
  }
  return (t) => get(typeof t === 'string' ? t : t.name);
}
