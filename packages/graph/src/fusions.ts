// Graph rewrites into the fused ops of domain latent_sft (kernels in @latent-sft/runtime's addon), run on
// a forward graph before `grad` so the backward uses the fused ops' own rules.
//
// fuseMaskedSoftmax: the 16-bit attention softmax that the decoder writes as
//   Cast(Softmax(Add(Cast(x16 → f32) [· scale], mask_f32), axis −1) → x16's dtype)
// becomes MaskedSoftmax(x16, mask){scale}: the same float32 arithmetic without the float32 [.., T, S]
// tensors (the Cast, the Add, the Softmax output kept for the backward), and a backward that recomputes
// the probabilities from x16 and the row statistics instead of reading a saved float32 copy.
//
// fuseRmsNorm: the 16-bit RMSNorm that the decoder writes as (HF's LlamaRMSNorm)
//   Mul(w16, Cast(Div(xf, Sqrt(Add(ReduceMean(Mul(xf, xf), [-1]), ε))) → 16-bit)),  xf = Cast(x16 → f32)
// becomes RMSNorm(x16, w16){epsilon}: one read of x and one write of y instead of a chain of float32
// [.., D] tensors, and a backward (RMSNormGrad) that recomputes the normalized row from x and 1/rms.
//
// fuseSwiGlu: the LLaMA MLP gating that the decoder writes as Mul(Mul(gate, Sigmoid(gate)), up) (any
// operand order, any float dtype, gate and up of one shape) becomes SwiGLU(gate, up): one pass instead of
// three, no σ(g) / g·σ(g) tensors kept for the backward, and a backward (SwiGLUGrad) that writes dGate
// and dUp in one pass instead of seven elementwise ops.
import type { Graph, Node } from './graph.js';
import { normAxis } from './ops.js';

/** Use counts (graph outputs count) and producers of every value of `g` (also linear-cross-entropy.ts). */
export function useMap(g: Graph): { uses: Map<string, number>; producer: Map<string, Node> } {
  const uses = new Map<string, number>();
  const producer = new Map<string, Node>();
  for (const n of g.nodes) {
    for (const x of n.inputs) if (x !== '') uses.set(x, (uses.get(x) ?? 0) + 1);
    for (const o of n.outputs) producer.set(o, n);
  }
  for (const o of g.outputs) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  return { uses, producer };
}

/** Rewrites every matching softmax of `g` (see the file header); returns how many. */
export function fuseMaskedSoftmax(g: Graph): number {
  const { uses, producer } = useMap(g);
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
    for (const [xi, mi] of [
      [0, 1],
      [1, 0],
    ] as const) {
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

/** Rewrites every matching RMSNorm of `g` (see the file header); returns how many. */
export function fuseRmsNorm(g: Graph): number {
  const { uses, producer } = useMap(g);
  const single = (name: string) => uses.get(name) === 1;
  const made = (name: string | undefined, op: string): Node | undefined => {
    const p = name === undefined ? undefined : producer.get(name);
    return p !== undefined && p.op === op && single(p.outputs[0] as string) ? p : undefined;
  };
  let count = 0;
  for (const mul of [...g.nodes]) {
    if (mul.op !== 'Mul') continue;
    for (const [wi, ci] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const w = g.value(mul.inputs[wi] as string);
      const cast = made(mul.inputs[ci], 'Cast');
      if (cast === undefined || (w.dtype !== 'bfloat16' && w.dtype !== 'float16') || cast.attrs['to'] !== w.dtype || w.rank !== 1) continue;
      const div = made(cast.inputs[0], 'Div');
      const sqrt = made(div?.inputs[1], 'Sqrt');
      const add = made(sqrt?.inputs[0], 'Add');
      if (div === undefined || sqrt === undefined || add === undefined) continue;
      const k = add.inputs.findIndex((n) => constantScalar(g, n) !== undefined);
      if (k < 0) continue;
      const eps = constantScalar(g, add.inputs[k] as string) as number;
      const mean = made(add.inputs[1 - k], 'ReduceMean');
      const sq = made(mean?.inputs[0], 'Mul');
      const xfName = div.inputs[0] as string;
      const xf = producer.get(xfName);
      if (mean === undefined || sq === undefined || xf === undefined || xf.op !== 'Cast' || !(eps > 0)) continue;
      // xf feeds exactly the square (twice) and the division.
      if (sq.inputs[0] !== xfName || sq.inputs[1] !== xfName || uses.get(xfName) !== 3) continue;
      const x = g.value(xf.inputs[0] as string);
      const xfv = g.value(xfName);
      if (x.dtype !== w.dtype || xfv.dtype !== 'float32' || x.rank < 1) continue;
      const axes = mean.inputs[1] ? g.knownInts(g.value(mean.inputs[1])) : undefined;
      if (axes === undefined || axes.length !== 1 || ((axes[0] as number) !== -1 && axes[0] !== x.rank - 1) || (mean.attrs['keepdims'] ?? 1) !== 1) continue;
      const out = g.value(mul.outputs[0] as string);
      if (w.shape[0] !== x.shape[x.rank - 1] || out.rank !== x.rank || !out.shape.every((d, i) => d === x.shape[i])) continue;
      g.replaceNode(mul, 'RMSNorm', [x, w], { epsilon: eps });
      count++;
      break;
    }
  }
  return count;
}

/** Rewrites every matching SwiGLU of `g` (see the file header); returns how many. */
export function fuseSwiGlu(g: Graph): number {
  const { uses, producer } = useMap(g);
  const made = (name: string | undefined, op: string): Node | undefined => {
    const p = name === undefined ? undefined : producer.get(name);
    return p !== undefined && p.op === op && uses.get(p.outputs[0] as string) === 1 ? p : undefined;
  };
  let count = 0;
  for (const mul of [...g.nodes]) {
    if (mul.op !== 'Mul') continue;
    for (const [ai, ui] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const inner = made(mul.inputs[ai], 'Mul');
      if (inner === undefined) continue;
      const k = [0, 1].find((j) => made(inner.inputs[j], 'Sigmoid')?.inputs[0] === inner.inputs[1 - j]);
      if (k === undefined) continue;
      const gate = g.value(inner.inputs[1 - k] as string);
      const up = g.value(mul.inputs[ui] as string);
      const out = g.value(mul.outputs[0] as string);
      if (!['float32', 'bfloat16', 'float16'].includes(gate.dtype) || up.dtype !== gate.dtype) continue;
      const same = (t: typeof gate) => t.rank === gate.rank && t.shape.every((d, i) => d === gate.shape[i]);
      if (!same(up) || !same(out)) continue;
      g.replaceNode(mul, 'SwiGLU', [gate, up], {});
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
