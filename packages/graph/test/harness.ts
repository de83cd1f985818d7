// Test harness shared by the gradient, golden and training tests: the case table (cases.json, also
// read by tools/reference/graph_goldens.py), a small seeded generator (mulberry32 + Box–Muller; tests
// must not use Math.random), graph building for one case, and ORT sessions from built graphs.
import { readFileSync } from 'node:fs';
import { Session } from '@latent-sft/runtime';
import type { HostTensor } from '@latent-sft/runtime';
import { type DType, Graph, type OpAttrs, type OpType, type Tensor, crossEntropy, grad, serialize, typedFrom } from '../src/index.js';

export interface InputSpec {
  shape: number[];
  dist: 'normal' | 'positive' | 'distinct' | 'bool' | 'const';
  dtype?: DType;
  values?: number[];
}
export interface OpCase {
  name: string;
  op: OpType | 'CrossEntropy';
  attrs: Record<string, unknown>;
  dtype: 'float64' | 'float32';
  inputs: InputSpec[];
  seed: number;
  outputs?: number[];
}
export interface ModelConfigs {
  mlp: { seed: number; batch: number; din: number; hidden: number; classes: number; lr: number; steps: number; ignore: number[] };
  attention: { seed: number; batch: number; time: number; dim: number; lr: number; steps: number };
}
export const caseTable = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url), 'utf8')) as {
  version: number;
  opset: number;
  cases: OpCase[];
  models: ModelConfigs;
};

/** Seeded uniform [0,1) and standard normal draws (test-only; not the generator of the goldens). */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.uniform(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Generates the inputs of a case from its seed (TS-side values, used by the finite-difference test). */
export function generateInputs(c: OpCase): HostTensor[] {
  const rng = new TestRng(c.seed);
  return c.inputs.map((spec) => {
    const dtype = spec.dtype ?? c.dtype;
    const n = size(spec.shape);
    let v: number[];
    switch (spec.dist) {
      case 'const':
        v = spec.values ?? [];
        break;
      case 'normal':
        v = Array.from({ length: n }, () => rng.normal());
        break;
      case 'positive':
        v = Array.from({ length: n }, () => 0.5 + 1.5 * rng.uniform());
        break;
      case 'bool':
        v = Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0));
        break;
      case 'distinct': {
        v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.37 + 0.11);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rng.uniform() * (i + 1));
          [v[i], v[j]] = [v[j] as number, v[i] as number];
        }
        break;
      }
    }
    return { dtype, dims: [...spec.shape], data: typedFrom(dtype, v) } as HostTensor;
  });
}

/** Random cotangents for the chosen outputs of a case. */
export function generateCotangents(shapes: ReadonlyArray<{ dtype: DType; shape: number[] }>, seed: number): HostTensor[] {
  const rng = new TestRng(seed ^ 0x5eed);
  return shapes.map(
    (s) =>
      ({
        dtype: s.dtype,
        dims: s.shape,
        data: typedFrom(
          s.dtype,
          Array.from({ length: size(s.shape) }, () => rng.normal()),
        ),
      }) as HostTensor,
  );
}

export interface CaseGraph {
  graph: Graph;
  /** Indices of the case inputs that are graph inputs with gradients. */
  wrt: number[];
  /** Float outputs in the loss, with their shapes. */
  outs: Array<{ dtype: DType; shape: number[] }>;
}

/**
 * Graph of one case: inputs x<i> (const specs become initializers holding `values`), the op, cotangent
 * inputs c<k>, loss L = Σ_k sum(y_k · c_k), outputs L, y<k> and grad<i> (via `grad`).
 */
export function buildCaseGraph(c: OpCase, values: readonly HostTensor[]): CaseGraph {
  const g = new Graph(c.name);
  const wrt: number[] = [];
  const ins: Tensor[] = c.inputs.map((spec, i) => {
    const v = values[i] as HostTensor;
    if (spec.dist === 'const') return g.initializer(`x${i}`, { dtype: v.dtype, dims: v.dims, data: v.data });
    if (spec.dist !== 'bool') wrt.push(i);
    return g.input(`x${i}`, v.dtype, v.dims);
  });
  let ys: Tensor[];
  if (c.op === 'CrossEntropy') ys = [crossEntropy(g, ins[0] as Tensor, ins[1] as Tensor, c.attrs.ignoreIndex as number)];
  else ys = g.op(c.op, ins, c.attrs as OpAttrs[OpType]);
  const chosen = c.outputs ?? ys.map((_, k) => k);
  const outs = chosen.map((k) => {
    const y = ys[k] as Tensor;
    return { dtype: y.dtype, shape: y.shape.map(Number) };
  });
  let loss: Tensor | undefined;
  chosen.forEach((k, j) => {
    const y = ys[k] as Tensor;
    const ct = g.input(`c${j}`, y.dtype, y.shape);
    const term = g.reduceSum(g.mul(y, ct), undefined, false);
    loss = loss === undefined ? term : g.add(loss, term);
    g.output(y, `y${j}`);
  });
  const L = loss as Tensor;
  g.output(L, 'L');
  const grads = grad(
    g,
    L,
    wrt.map((i) => ins[i] as Tensor),
  );
  grads.forEach((t, j) => g.output(t, `grad${wrt[j]}`));
  g.prune();
  return { graph: g, wrt, outs };
}

/** A CPU session over a built graph (single-threaded, deterministic). */
export async function sessionOf(g: Graph): Promise<Session> {
  return Session.create(serialize(g).model, { intraOpThreads: 1, deterministic: true });
}

/** Feeds of a case graph: non-const inputs and cotangents. */
export function caseFeeds(c: OpCase, values: readonly HostTensor[], cots: readonly HostTensor[]): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  c.inputs.forEach((spec, i) => {
    if (spec.dist !== 'const') feeds[`x${i}`] = values[i] as HostTensor;
  });
  cots.forEach((t, j) => {
    feeds[`c${j}`] = t;
  });
  return feeds;
}

/** Plain numbers of a host tensor. */
export function nums(t: HostTensor | undefined): number[] {
  if (t === undefined) throw new Error('missing tensor');
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
