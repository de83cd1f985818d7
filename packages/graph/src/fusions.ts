// Graph rewrites into the fused ops of domain latent_sft (kernels in @latent-sft/runtime's addon), run on
// a forward graph before `grad` so the backward uses the fused ops' own rules.
//
// fuseMaskedSoftmax: the 16-bit attention softmax that the decoder writes as
//   Cast(Softmax(Add(Cast(x16 → f32) [· scale], mask_f32), axis −1) → x16's dtype)
// becomes MaskedSoftmax(x16, mask){scale}: the same float32 arithmetic without the float32 [.., T, S]
// tensors (the Cast, the Add, the Softmax output kept for the backward), and a backward that recomputes
// the probabilities from x16 and the row statistics instead of reading a saved float32 copy.
import type { Graph, Node } from './graph.js';
import { normAxis } from './ops.js';

/** Rewrites every matching softmax of `g` (see the file header); returns how many. */
export function fuseMaskedSoftmax(g: Graph): number {
  const uses = new Map<string, number>();
  const producer = new Map<string, Node>();
  for (const n of g.nodes) {
    for (const x of n.inputs) if (x !== '') uses.set(x, (uses.get(x) ?? 0) + 1);
    for (const o of n.outputs) producer.set(o, n);
  }
  for (const o of g.outputs) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  const single = (name: string) => uses.get(name) === 1;
  let count = 0;
  for (const cast of [...g.nodes]) {
    if (cast.op !== 'Cast') continue;
    const to = cast.attrs['to'];
    if (to !== 'bfloat16' && to !== 'float16') continue;
    const sm = producer.get(cast.inputs[0] as string);
    if (sm === undefined || sm.op !== 'Softmax' || !single(sm.outputs[0] as string)) continue;
    const probs = g.value(sm.outputs[0] as string);
    if (probs.dtype !== 'float32' || normAxis((sm.attrs['axis'] as number | undefined) ?? -1, probs.rank) !== probs.rank - 1) continue;
    const add = producer.get(sm.inputs[0] as string);
    if (add === undefined || add.op !== 'Add' || !single(add.outputs[0] as string)) continue;
    for (const [xi, mi] of [[0, 1], [1, 0]] as const) {
      let scoresName = add.inputs[xi] as string;
      const mask = g.value(add.inputs[mi] as string);
      let scale = 1;
      let p = producer.get(scoresName);
      if (p !== undefined && p.op === 'Mul' && single(scoresName)) {
        const k = p.inputs.findIndex((n) => constantScalar(g, n) !== undefined);
        if (k < 0) continue;
        scale = constantScalar(g, p.inputs[k] as string) as number;
        scoresName = p.inputs[1 - k] as string;
        p = producer.get(scoresName);
      }
      if (p === undefined || p.op !== 'Cast' || !single(scoresName)) continue;
      const x = g.value(p.inputs[0] as string);
      if (x.dtype !== to || mask.dtype !== 'float32' || mask.rank > x.rank) continue;
      // The mask must broadcast to x without growing it (x's shape is the Add's output shape). A
      // symbolic mask dim (e.g. of a mask built from Range over the sequence) is taken unless x's dim is
      // 1: the kernel checks at run time that each mask dim is 1 or x's, with a one-line error.
      const lead = x.rank - mask.rank;
      if (!mask.shape.every((d, i) => d === 1 || d === x.shape[lead + i] || (typeof d !== 'number' && x.shape[lead + i] !== 1))) continue;
      if (!x.shape.every((d, i) => d === probs.shape[i])) continue;
      g.replaceNode(cast, 'MaskedSoftmax', [x, mask], scale === 1 ? {} : { scale });
      count++;
      break;
    }
  }
  return count;
}

/** The value of a rank-0 (or one-element) float32 initializer, else undefined. */
function constantScalar(g: Graph, name: string): number | undefined {
  const t = g.initializers.get(name);
  if (t === undefined || t.dtype !== 'float32' || t.data.length !== 1) return undefined;
  return Number(t.data[0]);
}
