// The typed ONNX graph builder (default domain, opset 18): values with dtype and (possibly symbolic)
// shape, nodes appended in topological order, shape/dtype inference on every op call, and build-time
// folding of small int64 shape arithmetic (Shape → Gather → Concat on static dims becomes an
// initializer). Leaves out subgraphs (If/Loop), sequences and optional types; the only non-default
// domain is latent_sft (the fused optimizer ops of ops.ts).
import { type DType, type TensorData, dtypeArray, isFloat, typedFrom } from './dtype.js';
import { type AttrValue, type InferRule, type OpAttrs, type OpType, inferRules } from './ops.js';

/** Opset of the default ONNX domain every graph targets. */
export const OPSET = 18;

/** A dimension: a size, or a symbol for a size known only at run time. */
export type Dim = number | string;

/** A constant tensor in host memory (initializers, attribute tensors). */
export interface ConstTensor {
  dtype: DType;
  dims: readonly number[];
  data: TensorData;
}

/** A node of the graph; `inputs` use '' for an omitted optional input. */
export interface Node {
  readonly op: OpType;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /**
   * Set on the Identity nodes made by `Graph.stopGradient`: `grad` propagates nothing through them.
   * IR-only; serialized as a plain Identity.
   */
  readonly stopGradient?: true;
  /**
   * The `Graph.recomputable` segment the node was built in (its id), if any. IR-only: read by the
   * recomputation pass (recompute.ts), not serialized.
   */
  readonly segment?: number;
}

/**
 * A segment of the forward graph that the backward may recompute instead of keeping its values
 * (`Graph.recomputable`): the nodes tagged `segment: id` compute `output` from `input` (plus values
 * built outside it: weights, tables).
 */
export interface Segment {
  readonly id: number;
  readonly input: string;
  readonly output: string;
}

/** A value in a graph: a graph input, an initializer or a node output. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** Shape as text for error messages, e.g. `[B, 4]`. */
  get shapeText(): string {
    return `[${this.shape.join(', ')}]`;
  }
}

/** Formats a shape for messages. */
export function showShape(s: readonly Dim[]): string {
  return `[${s.join(', ')}]`;
}

/** True when every dim is a number. */
export function isStatic(s: readonly Dim[]): s is readonly number[] {
  return s.every((d) => typeof d === 'number');
}

type Input = Tensor | null;

/** `from>to` casts that represent every value of `from` exactly (so casting back restores it bit for bit). */
const LOSSLESS_WIDENING = new Set([
  'bfloat16>float32',
  'float16>float32',
  'bfloat16>float64',
  'float16>float64',
  'float32>float64',
  'int32>int64',
  'int8>int32',
  'int8>int64',
  'uint8>int32',
  'uint8>int64',
  'bool>int32',
  'bool>int64',
  'bool>uint8',
  'bool>int8',
]);

/** An ONNX graph under construction. Names are deterministic: same calls → same graph. */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  readonly initializers = new Map<string, ConstTensor>();
  private readonly values = new Map<string, Tensor>();
  /** Known contents of small int64 tensors (rank ≤ 1), element-wise possibly symbolic. */
  private readonly known = new Map<string, Dim[]>();
  /** The node that produced each value (kept across prune: only looked up for values still in use). */
  private readonly producers = new Map<string, Node>();
  private counter = 0;
  /** The recomputable segments built so far, in order (`recomputable`). */
  readonly segments: Segment[] = [];
  /** The id of the segment being built, or null outside `recomputable`. */
  private openSegment: number | null = null;

  constructor(readonly name = 'graph') {}

  /** A fresh name `<base>_<n>` (deterministic counter). */
  fresh(base: string): string {
    let name: string;
    do name = `${base}_${this.counter++}`;
    while (this.values.has(name));
    return name;
  }

  /** The value called `name`; throws when there is none. */
  value(name: string): Tensor {
    const t = this.values.get(name);
    if (t === undefined) throw new Error(`graph '${this.name}' has no value '${name}'`);
    return t;
  }

  hasValue(name: string): boolean {
    return this.values.has(name);
  }

  private define(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
    if (this.values.has(name)) throw new Error(`value '${name}' is already defined`);
    for (const d of shape) {
      if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) throw new Error(`'${name}': bad dim ${d} in ${showShape(shape)}`);
    }
    const t = new Tensor(this, name, dtype, [...shape]);
    this.values.set(name, t);
    return t;
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
    const t = this.define(name, dtype, shape);
    this.inputs.push(t);
    return t;
  }

  /** Adds a named constant (serialized as an initializer). */
  initializer(name: string, tensor: ConstTensor): Tensor {
    const size = tensor.dims.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== size) {
      throw new Error(`initializer '${name}': dims ${showShape(tensor.dims)} hold ${size} elements, data has ${tensor.data.length}`);
    }
    if (!(tensor.data instanceof dtypeArray[tensor.dtype])) {
      throw new Error(`initializer '${name}': dtype ${tensor.dtype} needs ${dtypeArray[tensor.dtype].name}, got ${tensor.data.constructor.name}`);
    }
    const t = this.define(name, tensor.dtype, tensor.dims);
    this.initializers.set(name, { dtype: tensor.dtype, dims: [...tensor.dims], data: tensor.data });
    if (tensor.dtype === 'int64' && tensor.dims.length <= 1 && size <= 64) {
      this.known.set(name, Array.from(tensor.data as BigInt64Array, Number));
    }
    return t;
  }

  /**
   * Turns initializer `name` into a graph input of the same name, dtype and dims (the caller feeds it;
   * lift.ts). Returns its data.
   */
  liftInitializer(name: string): ConstTensor {
    const c = this.initializers.get(name);
    if (c === undefined) throw new Error(`liftInitializer: '${name}' is not an initializer of graph '${this.name}'`);
    this.initializers.delete(name);
    this.known.delete(name);
    this.inputs.push(this.value(name));
    return c;
  }

  /** An anonymous constant from numbers; `dims` defaults to [values.length] (pass [] for a scalar). */
  constant(values: ArrayLike<number | bigint>, dtype: DType, dims?: readonly number[]): Tensor {
    return this.initializer(this.fresh('const'), { dtype, dims: dims ?? [values.length], data: typedFrom(dtype, values) });
  }

  /** A rank-0 constant. */
  scalar(v: number, dtype: DType): Tensor {
    return this.constant([v], dtype, []);
  }

  /** An int64 1-D constant (shapes, axes, starts…). */
  ints(values: readonly number[]): Tensor {
    return this.constant(values, 'int64');
  }

  /** Marks values as graph outputs, optionally renaming them (via Identity). */
  output(t: Tensor, name?: string): Tensor {
    let out = t;
    if (name !== undefined && name !== t.name) out = this.op('Identity', [t], {}, [name])[0] as Tensor;
    if (this.outputs.some((o) => o.name === out.name)) throw new Error(`'${out.name}' is already an output`);
    this.outputs.push(out);
    return out;
  }

  /** Contents of a small int64 tensor when known at build time (elements may be symbolic). */
  knownValue(t: Tensor): Dim[] | undefined {
    return this.known.get(t.name);
  }

  /** Numeric contents of a small int64 tensor when fully known, else undefined. */
  knownInts(t: Tensor): number[] | undefined {
    const v = this.known.get(t.name);
    return v !== undefined && isStatic(v) ? [...v] : undefined;
  }

  /** The node producing `name`, or undefined for inputs and initializers. */
  producer(name: string): Node | undefined {
    for (let i = this.nodes.length - 1; i >= 0; i--) if ((this.nodes[i] as Node).outputs.includes(name)) return this.nodes[i];
    return undefined;
  }

  /**
   * Appends one node after inferring its output dtypes and shapes; throws naming the op and the
   * input shapes when they do not fit. Small int64 results known at build time become initializers.
   */
  op<P extends OpType>(type: P, inputs: readonly Input[], attrs: OpAttrs[P] = {} as OpAttrs[P], outputNames?: readonly string[]): Tensor[] {
    return this.append(type, inputs, attrs, outputNames, false);
  }

  /**
   * `t` unchanged in value, but `grad` propagates nothing through it (torch's `detach`): an Identity
   * node flagged `stopGradient` (named `StopGradient_<n>`), serialized as a plain Identity. Other uses
   * of `t` keep their gradients.
   */
  stopGradient(t: Tensor): Tensor {
    return this.append('Identity', [t], {}, undefined, true)[0] as Tensor;
  }

  /**
   * `body(x)`, with the nodes it adds tagged as one recomputable segment (a decoder layer, say): the
   * graph is the same as without the call; only the recomputation pass (recompute.ts) reads the tags,
   * to rebuild the segment's values in the backward from `x` instead of keeping them. Segments do not nest.
   */
  recomputable(x: Tensor, body: (x: Tensor) => Tensor): Tensor {
    if (this.openSegment !== null) throw new Error(`recomputable: segment ${this.openSegment} is still open (segments do not nest)`);
    const id = this.segments.length;
    this.openSegment = id;
    let out: Tensor;
    try {
      out = body(x);
    } finally {
      this.openSegment = null;
    }
    if (out.graph !== this) throw new Error('recomputable: the body returned a value of another graph');
    this.segments.push({ id, input: x.name, output: out.name });
    return out;
  }

  private append<P extends OpType>(type: P, inputs: readonly Input[], attrs: OpAttrs[P], outputNames: readonly string[] | undefined, stop: boolean): Tensor[] {
    const rule = inferRules[type] as InferRule<P>;
    let inferred: InferredOut[];
    try {
      inferred = rule(this, inputs, attrs);
    } catch (e) {
      const shapes = inputs.map((t) => (t === null ? '-' : `${t.name}:${t.dtype}${t.shapeText}`)).join(', ');
      throw new Error(`${type}(${shapes}): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    for (const t of inputs) {
      if (t !== null && t.graph !== this) throw new Error(`${type}: input '${t.name}' belongs to another graph`);
    }
    const n = inferred.length;
    if (outputNames !== undefined && outputNames.length !== n) throw new Error(`${type}: ${n} outputs, ${outputNames.length} names`);
    // Cast(Cast(y → wider) → y.dtype) is y exactly (the widening loses nothing): skip the round trip,
    // e.g. float32 master → bfloat16 view → float32 (a builder's declared input) → bfloat16 compute.
    if (type === 'Cast' && outputNames === undefined && !stop) {
      const src = inputs[0] as Tensor;
      const to = (attrs as OpAttrs['Cast']).to;
      if (src.dtype === to) return [src];
      const p = this.producers.get(src.name);
      if (p !== undefined && p.op === 'Cast' && p.stopGradient !== true) {
        const orig = this.value(p.inputs[0] as string);
        if (orig.dtype === to && LOSSLESS_WIDENING.has(`${orig.dtype}>${src.dtype}`)) return [orig];
      }
    }
    // Fold int64 shape arithmetic whose result is fully known.
    if (outputNames === undefined && n === 1) {
      const o = inferred[0] as InferredOut;
      if (o.known !== undefined && isStatic(o.known) && o.dtype === 'int64') {
        return [this.constant(o.known, 'int64', o.shape as number[])];
      }
    }
    const nodeName = this.fresh(stop ? 'StopGradient' : type);
    const outs = inferred.map((o, i) => {
      const t = this.define(outputNames?.[i] ?? (n === 1 ? `${nodeName}_out` : `${nodeName}_out${i}`), o.dtype, o.shape);
      if (o.known !== undefined) this.known.set(t.name, o.known);
      return t;
    });
    const clean: Record<string, AttrValue> = {};
    for (const k of Object.keys(attrs as object).sort()) {
      const v = (attrs as Record<string, AttrValue | undefined>)[k];
      if (v !== undefined) clean[k] = v;
    }
    const node: Node = { op: type, name: nodeName, inputs: inputs.map((t) => (t === null ? '' : t.name)), outputs: outs.map((t) => t.name), attrs: clean };
    const seg = this.openSegment;
    const added: Node = { ...node, ...(stop ? { stopGradient: true as const } : {}), ...(seg !== null ? { segment: seg } : {}) };
    this.nodes.push(added);
    for (const o of added.outputs) this.producers.set(o, added);
    return outs;
  }

  /**
   * Replaces node `old` by a new `type` node at the same place in the order (graph rewrites such as
   * fusions.ts): the new node's first outputs take over every use of `old`'s outputs, which must have the
   * same dtypes and shapes and must not be graph outputs; with `looseSymbolicDims`, the same dtypes, ranks and
   * static dims (a symbolic dim may then have another symbol, or a size: the new node's shapes are inferred
   * from its own inputs, e.g. a row count that a Reshape to -1 left symbolic; fuseFlashAttention's case). The
   * nodes that fed only `old` stay until `prune`. Returns the new node's outputs.
   */
  replaceNode<P extends OpType>(
    old: Node,
    type: P,
    inputs: readonly Input[],
    attrs: OpAttrs[P] = {} as OpAttrs[P],
    opts: { looseSymbolicDims?: boolean } = {},
  ): Tensor[] {
    const at = this.nodes.indexOf(old);
    if (at < 0) throw new Error(`replaceNode: '${old.name}' is not a node of graph '${this.name}'`);
    const before = this.nodes.length;
    const outs = this.append(type, inputs, attrs, undefined, false);
    if (this.nodes.length !== before + 1) throw new Error(`replaceNode: ${type} did not add exactly one node`);
    if (outs.length < old.outputs.length) throw new Error(`replaceNode: ${type} has fewer outputs than '${old.name}'`);
    const rename = new Map<string, string>();
    old.outputs.forEach((name, k) => {
      const [a, b] = [this.value(name), outs[k] as Tensor];
      const fits = (d: Dim, e: Dim | undefined) => d === e || (opts.looseSymbolicDims === true && (typeof d !== 'number' || typeof e !== 'number'));
      if (a.dtype !== b.dtype || a.rank !== b.rank || !a.shape.every((d, i) => fits(d, b.shape[i]))) {
        throw new Error(`replaceNode: output ${k} of ${type} is ${b.dtype}${b.shapeText}, '${name}' is ${a.dtype}${a.shapeText}`);
      }
      if (this.outputs.some((o) => o.name === name)) throw new Error(`replaceNode: '${name}' is a graph output`);
      rename.set(name, b.name);
    });
    const made = this.nodes.pop() as Node;
    // The new node takes the old one's place, in its recomputable segment too.
    const node: Node = old.segment !== undefined ? { ...made, segment: old.segment } : made;
    for (const o of node.outputs) this.producers.set(o, node);
    for (let i = 0; i < this.nodes.length; i++) {
      const n = this.nodes[i] as Node;
      if (!n.inputs.some((x) => rename.has(x))) continue;
      const copy: Node = { ...n, inputs: n.inputs.map((x) => rename.get(x) ?? x) };
      this.nodes[i] = copy;
      for (const o of copy.outputs) this.producers.set(o, copy);
    }
    this.nodes.splice(at, 1, node);
    return outs;
  }

  /**
   * Replaces the nodes `olds` by one `type` node whose outputs are theirs, in order and under the same names
   * (so graph outputs and every use stay as they are; a multi-tensor op that does the work of several,
   * fusions.ts's fuseMultiTensorAdamW / fuseMultiTensorCast). It is placed before the first node that reads
   * one of those outputs (after the last of `olds` when none does); every input must be produced before
   * that place. Its inferred outputs must have the old outputs' dtypes and shapes. None of `olds` may be in
   * a recomputable segment. Returns the new node.
   */
  mergeNodes<P extends OpType>(olds: readonly Node[], type: P, inputs: readonly Input[], attrs: OpAttrs[P] = {} as OpAttrs[P]): Node {
    const at = olds.map((n) => this.nodes.indexOf(n));
    if (olds.length === 0 || at.some((i) => i < 0)) throw new Error(`mergeNodes: every node must be a node of graph '${this.name}'`);
    if (olds.some((n) => n.segment !== undefined)) throw new Error('mergeNodes: a node in a recomputable segment');
    const names = olds.flatMap((n) => n.outputs);
    const gone = new Set(olds);
    const outputSet = new Set(names);
    // The place: before the first reader of a merged output, else after the last merged node.
    const firstReader = this.nodes.findIndex((n) => !gone.has(n) && n.inputs.some((x) => outputSet.has(x)));
    const place = firstReader >= 0 ? firstReader : Math.max(...at) + 1;
    const position = new Map(this.nodes.map((n, i) => [n, i] as const));
    for (const t of inputs) {
      const p = t === null ? undefined : this.producers.get(t.name);
      if (p === undefined) continue;
      if (gone.has(p)) throw new Error(`mergeNodes: input '${t?.name}' is an output of a merged node`);
      if ((position.get(p) ?? Number.POSITIVE_INFINITY) >= place)
        throw new Error(`mergeNodes: input '${t?.name}' is produced after the first use of a merged output`);
    }
    // Infer (and validate) on fresh names, then take the old names over.
    const before = this.nodes.length;
    const outs = this.append(type, inputs, attrs, undefined, false);
    if (this.nodes.length !== before + 1) throw new Error(`mergeNodes: ${type} did not add exactly one node`);
    const made = this.nodes.pop() as Node;
    if (outs.length !== names.length) throw new Error(`mergeNodes: ${type} has ${outs.length} outputs, the merged nodes ${names.length}`);
    names.forEach((name, k) => {
      const [a, b] = [this.value(name), outs[k] as Tensor];
      if (a.dtype !== b.dtype || a.rank !== b.rank || !a.shape.every((d, i) => d === b.shape[i]))
        throw new Error(`mergeNodes: output ${k} of ${type} is ${b.dtype}${b.shapeText}, '${name}' is ${a.dtype}${a.shapeText}`);
      this.values.delete(b.name);
    });
    const node: Node = { ...made, outputs: names };
    for (const o of names) this.producers.set(o, node);
    const kept: Node[] = [];
    this.nodes.forEach((n, i) => {
      if (i === place) kept.push(node);
      if (!gone.has(n)) kept.push(n);
    });
    if (place >= this.nodes.length) kept.push(node);
    this.nodes.splice(0, this.nodes.length, ...kept);
    return node;
  }

  /**
   * Replaces node `old` by the nodes `build` appends (a lowering into several ops): they take `old`'s place
   * in the order, and each of `build`'s results takes over the name of `old`'s output in its place (same
   * dtype and shape; it must be the output of one of the new nodes), so uses of it — graph outputs and
   * Tensors held by callers included — stay valid. null: that output of `old` must have no use.
   */
  replaceWithNodes(old: Node, build: () => ReadonlyArray<Tensor | null>): void {
    const at = this.nodes.indexOf(old);
    if (at < 0) throw new Error(`replaceWithNodes: '${old.name}' is not a node of graph '${this.name}'`);
    const before = this.nodes.length;
    const outs = build();
    const added = this.nodes.splice(before);
    if (outs.length !== old.outputs.length) throw new Error(`replaceWithNodes: ${outs.length} results for the ${old.outputs.length} outputs of '${old.name}'`);
    const used = new Set([...this.nodes.flatMap((n) => n.inputs), ...this.outputs.map((o) => o.name)]);
    const rename = new Map<string, string>(); // a new node's output → the old output's name
    old.outputs.forEach((name, k) => {
      const b = outs[k] as Tensor | null;
      if (b === null) {
        if (used.has(name)) throw new Error(`replaceWithNodes: output '${name}' of '${old.name}' is used but has no replacement`);
        return;
      }
      const a = this.value(name);
      if (a.dtype !== b.dtype || a.rank !== b.rank || !a.shape.every((d, i) => d === b.shape[i])) {
        throw new Error(`replaceWithNodes: the replacement of '${name}' is ${b.dtype}${b.shapeText}, '${name}' is ${a.dtype}${a.shapeText}`);
      }
      if (!added.some((n) => n.outputs.includes(b.name)) || rename.has(b.name)) {
        throw new Error(`replaceWithNodes: the replacement of '${name}' must be the output of a new node, once`);
      }
      rename.set(b.name, name);
    });
    const renamed = added.map((n) => ({ ...n, inputs: n.inputs.map((x) => rename.get(x) ?? x), outputs: n.outputs.map((x) => rename.get(x) ?? x) }));
    for (const n of renamed) for (const o of n.outputs) this.producers.set(o, n);
    this.nodes.splice(at, 1, ...renamed);
  }

  /**
   * Removes the nodes `dead` (a rewrite's replaced chain, so that a later rewrite sees only the uses that
   * remain); throws when another node still reads one of their outputs or it is a graph output.
   */
  removeNodes(dead: readonly Node[]): void {
    const gone = new Set(dead.map((n) => n.name)); // by name: a rewrite may have replaced a node object by a copy
    const outs = new Set(dead.flatMap((n) => n.outputs));
    for (const n of this.nodes) {
      if (gone.has(n.name)) continue;
      const read = n.inputs.find((x) => outs.has(x));
      if (read !== undefined) throw new Error(`removeNodes: '${n.name}' still reads '${read}'`);
    }
    const out = this.outputs.find((o) => outs.has(o.name));
    if (out !== undefined) throw new Error(`removeNodes: '${out.name}' is a graph output`);
    const kept = this.nodes.filter((n) => !gone.has(n.name));
    if (kept.length !== this.nodes.length - gone.size) throw new Error(`removeNodes: not every node is in graph '${this.name}'`);
    this.nodes.splice(0, this.nodes.length, ...kept);
  }

  /** `op` for ops with exactly one output. */
  op1<P extends OpType>(type: P, inputs: readonly Input[], attrs: OpAttrs[P] = {} as OpAttrs[P]): Tensor {
    const outs = this.op(type, inputs, attrs);
    if (outs.length !== 1) throw new Error(`${type} has ${outs.length} outputs; use op()`);
    return outs[0] as Tensor;
  }

  // ---- typed convenience ops -------------------------------------------------------------------
  add(a: Tensor, b: Tensor): Tensor {
    return this.op1('Add', [a, b]);
  }
  sub(a: Tensor, b: Tensor): Tensor {
    return this.op1('Sub', [a, b]);
  }
  mul(a: Tensor, b: Tensor): Tensor {
    return this.op1('Mul', [a, b]);
  }
  div(a: Tensor, b: Tensor): Tensor {
    return this.op1('Div', [a, b]);
  }
  pow(a: Tensor, b: Tensor): Tensor {
    return this.op1('Pow', [a, b]);
  }
  neg(a: Tensor): Tensor {
    return this.op1('Neg', [a]);
  }
  exp(a: Tensor): Tensor {
    return this.op1('Exp', [a]);
  }
  log(a: Tensor): Tensor {
    return this.op1('Log', [a]);
  }
  sqrt(a: Tensor): Tensor {
    return this.op1('Sqrt', [a]);
  }
  reciprocal(a: Tensor): Tensor {
    return this.op1('Reciprocal', [a]);
  }
  sigmoid(a: Tensor): Tensor {
    return this.op1('Sigmoid', [a]);
  }
  tanh(a: Tensor): Tensor {
    return this.op1('Tanh', [a]);
  }
  sin(a: Tensor): Tensor {
    return this.op1('Sin', [a]);
  }
  cos(a: Tensor): Tensor {
    return this.op1('Cos', [a]);
  }
  relu(a: Tensor): Tensor {
    return this.op1('Relu', [a]);
  }
  identity(a: Tensor): Tensor {
    return this.op1('Identity', [a]);
  }
  matmul(a: Tensor, b: Tensor): Tensor {
    return this.op1('MatMul', [a, b]);
  }
  softmax(a: Tensor, axis = -1): Tensor {
    return this.op1('Softmax', [a], { axis });
  }
  logSoftmax(a: Tensor, axis = -1): Tensor {
    return this.op1('LogSoftmax', [a], { axis });
  }
  cast(a: Tensor, to: DType): Tensor {
    return a.dtype === to ? a : this.op1('Cast', [a], { to });
  }
  where(c: Tensor, a: Tensor, b: Tensor): Tensor {
    return this.op1('Where', [c, a, b]);
  }
  equal(a: Tensor, b: Tensor): Tensor {
    return this.op1('Equal', [a, b]);
  }
  shapeOf(a: Tensor): Tensor {
    return this.op1('Shape', [a]);
  }
  reshape(a: Tensor, shape: readonly number[] | Tensor): Tensor {
    return this.op1('Reshape', [a, Array.isArray(shape) ? this.ints(shape) : (shape as Tensor)]);
  }
  transpose(a: Tensor, perm?: readonly number[]): Tensor {
    return this.op1('Transpose', [a], perm ? { perm: [...perm] } : {});
  }
  unsqueeze(a: Tensor, axes: readonly number[]): Tensor {
    return this.op1('Unsqueeze', [a, this.ints(axes)]);
  }
  squeeze(a: Tensor, axes?: readonly number[]): Tensor {
    return this.op1('Squeeze', [a, axes ? this.ints(axes) : null]);
  }
  concat(ts: readonly Tensor[], axis: number): Tensor {
    return this.op1('Concat', ts, { axis });
  }
  expand(a: Tensor, shape: readonly number[] | Tensor): Tensor {
    return this.op1('Expand', [a, Array.isArray(shape) ? this.ints(shape) : (shape as Tensor)]);
  }
  gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
    return this.op1('Gather', [data, indices], { axis });
  }
  slice(a: Tensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Tensor {
    return this.op1('Slice', [a, this.ints(starts), this.ints(ends), axes ? this.ints(axes) : null, steps ? this.ints(steps) : null]);
  }
  private reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceSumSquare', a: Tensor, axes?: readonly number[], keepdims = true): Tensor {
    return this.op1(op, [a, axes ? this.ints(axes) : null], { keepdims: keepdims ? 1 : 0 });
  }
  reduceSum(a: Tensor, axes?: readonly number[], keepdims = true): Tensor {
    return this.reduce('ReduceSum', a, axes, keepdims);
  }
  reduceMean(a: Tensor, axes?: readonly number[], keepdims = true): Tensor {
    return this.reduce('ReduceMean', a, axes, keepdims);
  }
  reduceMax(a: Tensor, axes?: readonly number[], keepdims = true): Tensor {
    return this.reduce('ReduceMax', a, axes, keepdims);
  }
  reduceSumSquare(a: Tensor, axes?: readonly number[], keepdims = true): Tensor {
    return this.reduce('ReduceSumSquare', a, axes, keepdims);
  }

  /** Zeros shaped like `like` (dtype of `like` unless given), via Expand of a scalar. */
  zerosLike(like: Tensor, dtype: DType = like.dtype): Tensor {
    return this.expand(this.scalar(0, dtype), this.shapeOf(like));
  }

  /**
   * Node `at` reading `inputs` instead (graph rewrites such as recompute.ts): each replaced input must
   * be a value of the same dtype, rank and static dims (a symbolic dim may have another symbol: a
   * recomputed value's shape is inferred afresh). Call `sortNodes` when a new input is defined after the node.
   */
  rewireInputs(at: number, inputs: readonly string[]): void {
    const n = this.nodes[at];
    if (n === undefined) throw new Error(`rewireInputs: no node at ${at}`);
    if (inputs.length !== n.inputs.length) throw new Error(`rewireInputs: '${n.name}' has ${n.inputs.length} inputs, got ${inputs.length}`);
    inputs.forEach((name, k) => {
      const was = n.inputs[k] as string;
      if (name === was) return;
      const [a, b] = [this.value(was), this.value(name)];
      const fits = (d: Dim, e: Dim | undefined) => typeof d !== 'number' || typeof e !== 'number' || d === e;
      if (a.dtype !== b.dtype || a.rank !== b.rank || !a.shape.every((d, i) => fits(d, b.shape[i]))) {
        throw new Error(`rewireInputs: '${name}' is ${b.dtype}${b.shapeText}, input ${k} of '${n.name}' ('${was}') is ${a.dtype}${a.shapeText}`);
      }
    });
    const copy: Node = { ...n, inputs: [...inputs] };
    this.nodes[at] = copy;
    for (const o of copy.outputs) this.producers.set(o, copy);
  }

  /**
   * Reorders the nodes topologically (ONNX wants each input defined before its use), keeping the current
   * order wherever it already is one: among the nodes whose inputs are all defined, the earliest goes
   * first. Throws on a cycle.
   */
  sortNodes(): void {
    const nodes = this.nodes;
    const producerAt = new Map<string, number>();
    nodes.forEach((n, i) => {
      for (const o of n.outputs) producerAt.set(o, i);
    });
    const waiting = nodes.map(() => 0);
    const users: number[][] = nodes.map(() => []);
    nodes.forEach((n, i) => {
      for (const p of new Set(n.inputs.map((x) => producerAt.get(x)).filter((p): p is number => p !== undefined))) {
        waiting[i] = (waiting[i] as number) + 1;
        (users[p] as number[]).push(i);
      }
    });
    const ready = new MinHeap();
    waiting.forEach((w, i) => {
      if (w === 0) ready.push(i);
    });
    const order: Node[] = [];
    while (ready.size > 0) {
      const i = ready.pop();
      order.push(nodes[i] as Node);
      for (const u of users[i] as number[]) {
        waiting[u] = (waiting[u] as number) - 1;
        if (waiting[u] === 0) ready.push(u);
      }
    }
    if (order.length !== nodes.length) throw new Error(`sortNodes: graph '${this.name}' has a cycle`);
    nodes.splice(0, nodes.length, ...order);
  }

  /**
   * Dead-node elimination: keeps only the nodes and initializers the outputs need. Graph inputs
   * stay declared (feeds must not change when a value turns out unused).
   */
  prune(): void {
    const needed = new Set(this.outputs.map((o) => o.name));
    const keep: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i] as Node;
      if (n.outputs.some((o) => needed.has(o))) {
        keep.push(n);
        for (const x of n.inputs) if (x !== '') needed.add(x);
      }
    }
    keep.reverse();
    this.nodes.splice(0, this.nodes.length, ...keep);
    for (const name of [...this.initializers.keys()]) if (!needed.has(name)) this.initializers.delete(name);
  }
}

/** A binary min-heap of node indices (sortNodes). */
class MinHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as number) <= v) break;
      a[i] = a[p] as number;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0] as number;
    const last = a.pop() as number;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && (a[l + 1] as number) < (a[l] as number) ? l + 1 : l;
        if ((a[c] as number) >= last) break;
        a[i] = a[c] as number;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** What an inference rule returns for each output. */
export interface InferredOut {
  dtype: DType;
  shape: Dim[];
  /** Build-time contents of a small int64 output, when known. */
  known?: Dim[];
}

/** Throws unless `t` has a floating dtype. */
export function requireFloat(t: Tensor, what: string): void {
  if (!isFloat(t.dtype)) throw new Error(`${what} needs a float tensor, '${t.name}' is ${t.dtype}`);
}
