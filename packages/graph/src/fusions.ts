// Graph rewrites into the fused ops of domain latent_sft (kernels in @latent-sft/runtime's addon), run on
// a forward graph before `grad` so the backward uses the fused ops' own rules.
//
// fuseMaskedSoftmax: the 16-bit attention softmax that the decoder writes as
//   Cast(Softmax(Add(Cast(x16 → f32) [· scale], mask_f32), axis −1) → x16's dtype)
// becomes MaskedSoftmax(x16, mask){scale}: the same float32 arithmetic without the float32 [.., T, S]
// tensors (the Cast, the Add, the Softmax output kept for the backward), and a backward that recomputes
// the probabilities from x16 and the row statistics instead of reading a saved float32 copy. The replaced
// float32 chain is removed at once (the other rewrites leave theirs to the next prune), so x16's only
// use is the MaskedSoftmax, as fuseFlashAttention expects.
//
// fuseFlashAttention (after fuseMaskedSoftmax): the 16-bit attention that the decoder writes as
//   rows = MatMul(q4, Transpose(k, [0, 1, 3, 2]))          q4 = Reshape(q5) [B, G, rep·T, hd], k [B, G, S, hd]
//   probs = MaskedSoftmax(Reshape(rows → [B, G, rep, T, S]), mask){scale}
//   ctx4 = MatMul(Reshape(probs → [B, G, rep·T, S]), v)    v [B, G, S, hd]
// becomes ctx4 = FlashAttention(q4, k, v, mask){scale, rep}: the scores and probabilities [B, G, rep·T, S]
// are never written (each row's softmax runs over key blocks in float32), and the backward
// (FlashAttentionGrad) recomputes them block by block from q, k, the mask and the row statistics. Optionally
// only for the head sizes a kernel supports (`headDims`: the CUDA kernel's 64 and 128).
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
//
// fuseRope: the rotary position embedding that models' applyRope writes for q and for k of every layer,
//   Add(Mul(x, cos), Mul(Concat([x2, x1], 3), sinSigned)),  [x1, x2] = Split(x, [hd/2, hd/2], axis 3)
// (any operand order of the Add and the Muls; x [B, T, n, hd], cos / sinSigned [B, T, 1, hd]), for 16-bit x
// only, becomes Rope(x, cos, sinSigned): one pass instead of five nodes (and the swapped copy of x), and a
// backward of one Rope{transpose: 1} instead of Mul, Mul, Split, Concat and the Adds summing the two paths. The
// replaced nodes are removed at once. float32 graphs keep the standard ops (and so their PyTorch goldens).
//
// fuseSeededDropout: the inverted dropout of models' lora-graph.ts,
//   Mul(x, Cast(Less(Mul(Add(a, b), Add(c, d)), threshold) → x's dtype))   (int32 a, c [N, 1], b, d [1, I]; the
//   1/(1 − p) in the LoRA down-projection's alpha), or the same with the mask times a constant scale,
// becomes SeededDropout(x, a, b, c, d){threshold, scale, indices}: one pass instead of five full-size int32 /
// bool tensors and two Muls per LoRA module, and a backward that recomputes the mask from the tables instead
// of keeping it. Where a table is a constant Slice of one column of a [N, W] table (a, c) or of one row's
// first I columns of a [R, K] table (b, d), as lora-graph.ts's dropoutKeep takes them from the per-forward
// DropoutSource, the op reads that table in place at the index instead (no Slice nodes: 4 per module).
import { f16BitsToNumber, isFloat } from './dtype.js';
import type { Dim, Graph, Node, Tensor } from './graph.js';
import { type OpAttrs, normAxis } from './ops.js';

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
      const chain: Node[] = [sm, add];
      if (p !== undefined && p.op === 'Mul' && single(scoresName)) {
        const k = p.inputs.findIndex((n) => constantScalar(g, n) !== undefined);
        if (k < 0) continue;
        scale = constantScalar(g, p.inputs[k] as string) as number;
        scoresName = p.inputs[1 - k] as string;
        chain.push(p);
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
      // The float32 chain fed only the replaced Cast: gone now, so x keeps one use (fuseFlashAttention's match).
      g.removeNodes([...chain, p]);
      count++;
      break;
    }
  }
  return count;
}

/**
 * Rewrites every matching attention of `g` (see the file header) into FlashAttention; run after
 * fuseMaskedSoftmax (it matches the MaskedSoftmax that one makes). `headDims`: rewrite only heads of
 * these sizes (default: any). The dead nodes go with the next prune. Returns how many.
 */
export function fuseFlashAttention(g: Graph, opts: { headDims?: readonly number[] } = {}): number {
  const { uses, producer } = useMap(g);
  const made = (name: string | undefined, op: string): Node | undefined => {
    const p = name === undefined ? undefined : producer.get(name);
    return p !== undefined && p.op === op && uses.get(p.outputs[0] as string) === 1 ? p : undefined;
  };
  const clash = (a: Dim | undefined, b: Dim | undefined) => typeof a === 'number' && typeof b === 'number' && a !== b;
  let count = 0;
  for (const mm of [...g.nodes]) {
    if (mm.op !== 'MatMul') continue;
    // ctx4 = MatMul(Reshape(probs), v); probs = MaskedSoftmax(x5, mask) whose stats nothing reads (yet).
    const pr = made(mm.inputs[0], 'Reshape');
    const ms = made(pr?.inputs[0], 'MaskedSoftmax');
    if (pr === undefined || ms === undefined || (uses.get(ms.outputs[1] as string) ?? 0) !== 0) continue;
    // x5 = Reshape(rows), rows = MatMul(q4, Transpose(k, [0, 1, 3, 2])), q4 = Reshape(q5).
    const r5 = made(ms.inputs[0], 'Reshape');
    const qk = made(r5?.inputs[0], 'MatMul');
    const kt = made(qk?.inputs[1], 'Transpose');
    const r4 = made(qk?.inputs[0], 'Reshape');
    if (r5 === undefined || qk === undefined || kt === undefined || r4 === undefined) continue;
    const perm = kt.attrs['perm'] as readonly number[] | undefined;
    if (perm === undefined || perm.join() !== '0,1,3,2') continue;
    const [q5, q4, k, v, x5, mask, ctx] = [r4.inputs[0], qk.inputs[0], kt.inputs[0], mm.inputs[1], ms.inputs[0], ms.inputs[1], mm.outputs[0]].map((n) =>
      g.value(n as string),
    ) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const dtype = q4.dtype;
    if ((dtype !== 'bfloat16' && dtype !== 'float16') || k.dtype !== dtype || v.dtype !== dtype) continue;
    if (q5.rank !== 5 || q4.rank !== 4 || k.rank !== 4 || v.rank !== 4 || x5.rank !== 5 || ctx.rank !== 4) continue;
    const [rep, hd] = [x5.shape[2], q4.shape[3]];
    if (typeof rep !== 'number' || rep < 1 || typeof hd !== 'number' || k.shape[3] !== hd || v.shape[3] !== hd) continue;
    if (opts.headDims !== undefined && !opts.headDims.includes(hd)) continue;
    // The Reshapes only split / merge the row axis: q5 [B, G, rep, T, hd], x5 [B, G, rep, T, S], probs as
    // [B, G, rep·T, S] (symbolic dims are taken on trust; the kernel checks the shapes at run time).
    const [B, G, T, S] = [x5.shape[0], x5.shape[1], x5.shape[3], x5.shape[4]];
    const N = typeof T === 'number' ? rep * T : undefined;
    const pr4 = g.value(pr.outputs[0] as string);
    const want: ReadonlyArray<[Tensor, ReadonlyArray<Dim | undefined>]> = [
      [q5, [B, G, rep, T, hd]],
      [q4, [B, G, N, hd]],
      [k, [B, G, S, hd]],
      [v, [B, G, S, hd]],
      [pr4, [B, G, N, S]],
    ];
    if (want.some(([t, dims]) => t.shape.some((d, i) => clash(d, dims[i])))) continue;
    // The mask broadcasts to [B, G, rep, T, S] without growing it (fuseMaskedSoftmax's rule).
    if (mask.dtype !== 'float32' || mask.rank !== 5) continue;
    if (!mask.shape.every((d, i) => d === 1 || d === x5.shape[i] || (typeof d !== 'number' && x5.shape[i] !== 1))) continue;
    const scale = (ms.attrs['scale'] as number | undefined) ?? 1;
    // O's row dim is q4's (a Reshape to -1: another symbol than ctx4's, or unknown): the runtime checks shapes.
    g.replaceNode(mm, 'FlashAttention', [q4, k, v, mask], { scale, rep }, { looseSymbolicDims: true });
    count++;
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

/**
 * Rewrites SwiGLU(gate, up) whose gate and up are the two halves of one Split along the last axis (and
 * used nowhere else) into SwiGLUPacked(x) of the Split's input: no copy of x into two tensors. Inference
 * graphs only (SwiGLUPacked has no gradient): the generation step, where q/k/v and gate/up are one Gemm
 * each. Run after fuseSwiGlu and a prune (its dead chains still use gate); the dead Split goes with the next
 * prune. Returns how many.
 */
export function fusePackedSwiGlu(g: Graph): number {
  const { uses, producer } = useMap(g);
  let count = 0;
  for (const node of [...g.nodes]) {
    if (node.op !== 'SwiGLU') continue;
    const [gName, uName] = node.inputs as [string, string];
    const split = producer.get(gName);
    if (split === undefined || split.op !== 'Split' || split.outputs.length !== 2 || split.outputs[0] !== gName || split.outputs[1] !== uName) continue;
    if (uses.get(gName) !== 1 || uses.get(uName) !== 1) continue;
    const x = g.value(split.inputs[0] as string);
    const gate = g.value(gName);
    const half = gate.shape[gate.rank - 1];
    if (normAxis(Number(split.attrs['axis'] ?? 0), x.rank) !== x.rank - 1 || typeof half !== 'number' || x.shape[x.rank - 1] !== 2 * half) continue;
    g.replaceNode(node, 'SwiGLUPacked', [x], {});
    count++;
  }
  return count;
}

/** Rewrites every matching RoPE of `g` (see the file header) into latent_sft.Rope; returns how many. */
export function fuseRope(g: Graph): number {
  const { uses, producer } = useMap(g);
  const single = (name: string | undefined) => name !== undefined && uses.get(name) === 1;
  const made = (name: string | undefined, op: string): Node | undefined => {
    const p = name === undefined ? undefined : producer.get(name);
    return p !== undefined && p.op === op && single(p.outputs[0]) ? p : undefined;
  };
  // A dim of cos / sinSigned against x's: equal, or symbolic on either side (the kernel checks at run time)
  // where that side cannot be a broadcast 1.
  const fits = (d: Dim | undefined, e: Dim | undefined) => d === e || (typeof d !== 'number' && e !== 1) || (typeof e !== 'number' && d !== 1);
  // Values computed from a float graph input (what `grad` may differentiate).
  const fromFloatInputs = new Set(g.inputs.filter((t) => isFloat(t.dtype)).map((t) => t.name));
  for (const n of g.nodes) if (n.stopGradient !== true && n.inputs.some((i) => fromFloatInputs.has(i))) for (const o of n.outputs) fromFloatInputs.add(o);
  // A rewrite renames the replaced Add's output in its readers (replaceNode), which `producer` still holds as they were.
  const renamed = new Map<string, string>();
  const nm = (name: string | undefined) => (name === undefined ? '' : (renamed.get(name) ?? name));
  let count = 0;
  for (const add of [...g.nodes]) {
    if (add.op !== 'Add') continue;
    for (const [ai, bi] of [
      [0, 1],
      [1, 0],
    ] as const) {
      // b = Mul(Concat([x2, x1], 3), sinSigned), [x1, x2] = Split(x, [h, h], 3), each used only there.
      const mulB = made(add.inputs[bi], 'Mul');
      const ci = mulB === undefined ? -1 : mulB.inputs.findIndex((n) => made(n, 'Concat') !== undefined);
      const concat = mulB === undefined || ci < 0 ? undefined : made(mulB.inputs[ci], 'Concat');
      const split = concat === undefined ? undefined : producer.get(concat.inputs[0] as string);
      if (mulB === undefined || concat === undefined || split === undefined || split.op !== 'Split') continue;
      const [x1, x2] = split.outputs;
      if (split.outputs.length !== 2 || concat.inputs.length !== 2 || concat.inputs[0] !== x2 || concat.inputs[1] !== x1 || !single(x1) || !single(x2))
        continue;
      const x = g.value(nm(split.inputs[0]));
      const hd = x.shape[3];
      if ((x.dtype !== 'bfloat16' && x.dtype !== 'float16') || x.rank !== 4 || typeof hd !== 'number' || hd % 2 !== 0) continue;
      if (normAxis(Number(split.attrs['axis'] ?? 0), 4) !== 3 || normAxis(Number(concat.attrs['axis']), 4) !== 3) continue;
      const sizesIn = split.inputs[1] ?? '';
      const sizes = sizesIn === '' ? [hd / 2, hd / 2] : g.knownInts(g.value(sizesIn)); // no sizes: two equal halves
      if (sizes?.join() !== `${hd / 2},${hd / 2}`) continue;
      // a = Mul(x, cos), used only by the Add.
      const mulA = made(add.inputs[ai], 'Mul');
      const xi = mulA === undefined ? -1 : mulA.inputs.findIndex((n) => nm(n) === x.name);
      if (mulA === undefined || xi < 0) continue;
      const cos = g.value(nm(mulA.inputs[1 - xi]));
      const sin = g.value(nm(mulB.inputs[1 - ci]));
      const factor = (t: Tensor) =>
        t.dtype === x.dtype && t.rank === 4 && fits(t.shape[0], x.shape[0]) && fits(t.shape[1], x.shape[1]) && t.shape[2] === 1 && t.shape[3] === hd;
      const out = g.value(add.outputs[0] as string);
      if (!factor(cos) || !factor(sin) || out.rank !== 4 || !out.shape.every((d, i) => d === x.shape[i])) continue;
      // cos and sinSigned get no gradient (the Rope rule): they must not depend on a float graph input (a parameter).
      if (fromFloatInputs.has(cos.name) || fromFloatInputs.has(sin.name)) continue;
      const [y] = g.replaceNode(add, 'Rope', [x, cos, sin], {}) as [Tensor];
      renamed.set(add.outputs[0] as string, y.name);
      if (fromFloatInputs.has(x.name)) fromFloatInputs.add(y.name);
      g.removeNodes([mulA, mulB, concat, split]); // by name: replaceNode may have copied them
      count++;
      break;
    }
  }
  return count;
}

/** The value of a rank-0 (or one-element) float32 initializer, else undefined. */
/** The value of a one-element constant of any float or int32 dtype (16-bit bits decoded exactly). */
function constantValue(g: Graph, name: string | undefined): number | undefined {
  const t = name === undefined ? undefined : g.initializers.get(name);
  if (t === undefined || t.data.length !== 1) return undefined;
  const v = Number(t.data[0]);
  if (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'int32') return v;
  if (t.dtype === 'bfloat16') return new Float32Array(new Uint32Array([v << 16]).buffer)[0];
  if (t.dtype === 'float16') return f16BitsToNumber(v);
  return undefined;
}

/** Rewrites every matching seeded dropout of `g` (see the file header); returns how many. */
export function fuseSeededDropout(g: Graph): number {
  const { uses, producer } = useMap(g);
  const made = (name: string | undefined, op: string): Node | undefined => {
    const p = name === undefined ? undefined : producer.get(name);
    return p !== undefined && p.op === op && uses.get(p.outputs[0] as string) === 1 ? p : undefined;
  };
  /** The (per-row [N, 1], per-column [1, I]) int32 operands of a single-use Add, or undefined. */
  const tables = (name: string | undefined): [string, string] | undefined => {
    const add = made(name, 'Add');
    if (add === undefined) return undefined;
    const [p, q] = add.inputs.map((n) => g.value(n as string));
    if (p === undefined || q === undefined || p.dtype !== 'int32' || q.dtype !== 'int32' || p.rank !== 2 || q.rank !== 2) return undefined;
    if (p.shape[1] === 1 && q.shape[0] === 1) return [p.name, q.name];
    if (q.shape[1] === 1 && p.shape[0] === 1) return [q.name, p.name];
    return undefined;
  };
  let count = 0;
  for (const mul of [...g.nodes]) {
    if (mul.op !== 'Mul') continue;
    for (const [xi, mi] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const x = g.value(mul.inputs[xi] as string);
      if (x.rank !== 2 || (x.dtype !== 'float32' && x.dtype !== 'bfloat16' && x.dtype !== 'float16')) continue;
      // The mask is Cast(keep) itself (lora-graph.ts: 1/(1 − p) goes into the down-projection's alpha), or
      // Cast(keep) times a scalar constant of x's dtype.
      let cast = made(mul.inputs[mi], 'Cast');
      let scale: number | undefined = 1;
      if (cast === undefined) {
        const m = made(mul.inputs[mi], 'Mul');
        const ci = m === undefined ? -1 : m.inputs.findIndex((n) => made(n, 'Cast') !== undefined);
        if (m === undefined || ci < 0 || g.value(m.inputs[1 - ci] as string).dtype !== x.dtype) continue;
        cast = made(m.inputs[ci], 'Cast');
        scale = constantValue(g, m.inputs[1 - ci]);
      }
      if (cast === undefined || cast.attrs['to'] !== x.dtype || scale === undefined || !(scale > 0)) continue;
      const less = made(cast.inputs[0], 'Less');
      const threshold = constantValue(g, less?.inputs[1]);
      const h = made(less?.inputs[0], 'Mul');
      if (less === undefined || h === undefined || threshold === undefined || g.value(less.inputs[1] as string).dtype !== 'int32') continue;
      const ab = tables(h.inputs[0]);
      const cd = tables(h.inputs[1]);
      if (ab === undefined || cd === undefined || g.value(ab[1]).shape[1] !== x.shape[1] || g.value(cd[1]).shape[1] !== x.shape[1]) continue;
      const [a, b, c, d] = [
        inPlace(g, producer, ab[0], 'row', x),
        inPlace(g, producer, ab[1], 'col', x),
        inPlace(g, producer, cd[0], 'row', x),
        inPlace(g, producer, cd[1], 'col', x),
      ];
      g.replaceNode(mul, 'SeededDropout', [x, ...[a, b, c, d].map((t) => g.value(t.table))], {
        threshold,
        scale,
        a_col: a.index,
        b_row: b.index,
        c_col: c.index,
        d_row: d.index,
      });
      count++;
      break;
    }
  }
  return count;
}

/** The values of a constant int64 / int32 vector, or undefined. */
function constantInts(g: Graph, name: string | null | undefined): number[] | undefined {
  const t = name === undefined || name === null || name === '' ? undefined : g.initializers.get(name);
  if (t === undefined || (t.dtype !== 'int64' && t.dtype !== 'int32') || t.dims.length !== 1) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * A SeededDropout table operand read in place: when `name` is a constant Slice of one column j of an int32
 * [N, W] table ('row': a, c [N, 1]) or of row j, columns [0, I), of an int32 [R, K] table ('col': b, d
 * [1, I]), that table and j; else `name` itself at index 0. The Slice's other uses keep it (it goes with
 * the next prune only when nothing reads it).
 */
function inPlace(g: Graph, producer: Map<string, Node>, name: string, kind: 'row' | 'col', x: Tensor): { table: string; index: number } {
  const self = { table: name, index: 0 };
  const p = producer.get(name);
  if (p === undefined || p.op !== 'Slice') return self;
  const src = g.value(p.inputs[0] as string);
  const [starts, ends] = [constantInts(g, p.inputs[1]), constantInts(g, p.inputs[2])];
  const axes = p.inputs[3] === undefined || p.inputs[3] === '' ? starts?.map((_, i) => i) : constantInts(g, p.inputs[3]);
  const steps = p.inputs[4] === undefined || p.inputs[4] === '' ? starts?.map(() => 1) : constantInts(g, p.inputs[4]);
  if (src.dtype !== 'int32' || src.rank !== 2 || starts === undefined || ends === undefined || axes === undefined || steps === undefined) return self;
  if (steps.some((v) => v !== 1) || axes.length !== starts.length || ends.length !== starts.length) return self;
  const range = (axis: number): [number, number] | undefined => {
    const i = axes.findIndex((a) => a === axis || a === axis - 2);
    if (i < 0) return undefined; // the whole axis
    return [starts[i] as number, ends[i] as number];
  };
  const [r0, r1] = [range(0), range(1)];
  const [S0, S1] = src.shape;
  if (kind === 'row') {
    // [N, W] → column j: axis 0 whole, axis 1 [j, j + 1), j within W. N must be x's rows: a known N that
    // differs is no match; a symbolic one is checked by the op at run time (as the Add it replaces would).
    const N = x.shape[0];
    if (r0 !== undefined || (typeof S0 === 'number' && typeof N === 'number' && S0 !== N)) return self;
    if (r1 === undefined || r1[0] < 0 || r1[1] !== r1[0] + 1 || typeof S1 !== 'number' || r1[0] >= S1) return self;
    return { table: src.name, index: r1[0] };
  }
  // [R, K] → row j, columns [0, I): axis 0 [j, j + 1), axis 1 [0, I) with I = x's columns ≤ K.
  const I = x.shape[1];
  if (r0 === undefined || r0[0] < 0 || r0[1] !== r0[0] + 1 || typeof S0 !== 'number' || r0[0] >= S0) return self;
  if (typeof I !== 'number' || typeof S1 !== 'number' || S1 < I) return self;
  if (r1 === undefined ? S1 !== I : !(r1[0] === 0 && r1[1] === I)) return self;
  return { table: src.name, index: r0[0] };
}

function constantScalar(g: Graph, name: string): number | undefined {
  return g.initializers.get(name)?.dtype === 'float32' ? constantValue(g, name) : undefined;
}

/**
 * fuseMultiTensorAdamW: the fused optimizer's per-parameter AdamW (AdamWCopy) nodes that share their four
 * scalar inputs and their attributes become one AdamWMulti (AdamWCopyMulti) node with every tensor's
 * p, g, m, v: one node (ORT dispatch) for the whole update instead of one per parameter (392 LoRA factors
 * in a 7B phase-2 step). The outputs keep their names (Graph.mergeNodes), so state bindings and in-place
 * pairs are unchanged; each tensor is updated by the single op's element function, bit for bit. The node
 * takes the place of the last AdamW: every AdamW already waits for the clip coefficient, so for the whole
 * backward. Returns how many nodes were merged away.
 */
export function fuseMultiTensorAdamW(g: Graph): number {
  const groups = new Map<string, Node[]>();
  for (const n of g.nodes) {
    if ((n.op !== 'AdamW' && n.op !== 'AdamWCopy') || n.segment !== undefined) continue;
    // A scalar input that is a one-element constant is keyed by its value (graph-optim's decay 1 without weight
    // decay is a fresh constant per parameter), any other by its name.
    const scalars = n.inputs.slice(4).map((name) => {
      const t = g.initializers.get(name);
      return t !== undefined && t.data.length === 1 ? `${t.dtype}=${String(t.data[0])}` : name;
    });
    const key = `${n.op}|${scalars.join(',')}|${JSON.stringify(n.attrs)}`;
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  let merged = 0;
  for (const nodes of groups.values()) {
    if (nodes.length < 2) continue;
    const first = nodes[0] as Node;
    const inputs = [...first.inputs.slice(4), ...nodes.flatMap((n) => n.inputs.slice(0, 4))].map((name) => g.value(name));
    const attrs = first.attrs as OpAttrs['AdamW'];
    if (first.op === 'AdamW') g.mergeNodes(nodes, 'AdamWMulti', inputs, attrs);
    else g.mergeNodes(nodes, 'AdamWCopyMulti', inputs, first.attrs as OpAttrs['AdamWCopy']);
    merged += nodes.length - 1;
  }
  return merged;
}

/**
 * fuseMultiTensorCast: the step's Casts of float32 graph inputs (the trainable masters, and any float32 batch or
 * frozen input cast the same way) to one 16-bit dtype,
 * outside recomputable segments, become one CastMulti node (the outputs keep their names): one ORT dispatch
 * instead of one per parameter (392 LoRA factors in a 7B phase-2 step), each value rounded as Cast rounds.
 * Placed before the first reader of any of them. Returns how many nodes were merged away.
 */
export function fuseMultiTensorCast(g: Graph): number {
  const inputs = new Set(g.inputs.map((t) => t.name));
  const groups = new Map<string, Node[]>();
  for (const n of g.nodes) {
    if (n.op !== 'Cast' || n.segment !== undefined || n.stopGradient === true || !inputs.has(n.inputs[0] as string)) continue;
    const to = n.attrs['to'];
    if ((to !== 'bfloat16' && to !== 'float16') || g.value(n.inputs[0] as string).dtype !== 'float32') continue;
    groups.set(to, [...(groups.get(to) ?? []), n]);
  }
  let merged = 0;
  for (const [to, nodes] of groups) {
    if (nodes.length < 2) continue;
    g.mergeNodes(
      nodes,
      'CastMulti',
      nodes.map((n) => g.value(n.inputs[0] as string)),
      { to: to as 'bfloat16' | 'float16' },
    );
    merged += nodes.length - 1;
  }
  return merged;
}
