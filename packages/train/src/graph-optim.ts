// Optimizer updates inside ONNX graphs, as @latent-sft/graph `UpdateFn`s, plus in-graph global-norm
// clipping. Same arithmetic, in the same order, as the float64 reference optimizers of optim.ts (and so
// torch's single-tensor AdamW/SGD), evaluated in the parameter's dtype.
//
// State: each slot is a graph input `<slot>.<p>` (dtype/shape of p) with an output `<slot>.<p>.new`
// (AdamW: m, v; SGD with momentum: momentum). Everything that depends on the step number is a scalar
// input computed on the host in float64 (see `scalars`), so one graph serves every step:
//   AdamW: opt.decay = 1 - lr·wd, opt.step_size = lr / (1 - β1^t), opt.bc2_sqrt = sqrt(1 - β2^t)
//   SGD:   opt.lr = lr
// Scalar inputs have the dtype of the first parameter that uses them and are cast for the others.
// SGD's first momentum step (torch: buf = g) equals momentum·0 + g because the buffer starts at zero
// and dampening is fixed at 0.
import { type Graph, type Tensor, type UpdateFn, adamwMomentDtype } from '@latent-sft/graph';
import { inputError } from '@latent-sft/core';

/** Optimizer of a Trainer (the peak lr; the schedule scales it per step). */
export type OptimizerConfig =
  | { kind: 'adamw'; lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }
  | { kind: 'sgd'; lr: number; momentum?: number; weightDecay?: number; nesterov?: boolean };

/** An optimizer as graph pieces: the UpdateFn, its state slots and its host-computed scalar inputs. */
export interface GraphOptimizer {
  readonly config: Readonly<OptimizerConfig>;
  /** Per-parameter state: graph inputs `<slot>.<p>`, outputs `<slot>.<p>.new`. */
  readonly slots: readonly string[];
  /** Names of the scalar graph inputs the update reads. */
  readonly scalarInputs: readonly string[];
  /** Values of the scalar inputs for update number `t` (1-based) at learning rate `lr`, in float64. */
  scalars(t: number, lr: number): Record<string, number>;
  /** Appends the update of one parameter (declaring its slot and scalar inputs); returns the new value. */
  readonly update: UpdateFn;
  /**
   * The same update as one fused node (domain latent_sft, kernels in @latent-sft/runtime's addon), when
   * the optimizer has one: `grad` may be the bfloat16/float16 gradient (widened exactly in the kernel)
   * and is multiplied by the float32 scalar `coef` first (the clip coefficient). Returns `<name>.new`.
   * With `copyTo`, the node also writes `<name>.new` rounded to that dtype (as a Cast) as the graph
   * output `copy.<name>.new` (the compute-dtype weight the next step's forward reads).
   */
  readonly fusedUpdate?: (g: Graph, p: Tensor, grad: Tensor, coef: Tensor, name: string, copyTo?: 'bfloat16' | 'float16') => Tensor;
}

function scalarInput(g: Graph, name: string, like: Tensor): Tensor {
  const s = g.hasValue(name) ? g.value(name) : g.input(name, like.dtype, []);
  return g.cast(s, like.dtype);
}

function slotInput(g: Graph, slot: string, p: Tensor, name: string): Tensor {
  return g.input(`${slot}.${name}`, p.dtype, p.shape);
}

function checkNumber(field: string, v: number, ok: (x: number) => boolean, want: string): void {
  if (!(typeof v === 'number' && ok(v))) throw inputError({ field: `optimizer.${field}` }, `must be ${want}, got ${String(v)}`);
}

/** Validates an optimizer config (one-line errors naming the field). */
export function checkOptimizerConfig(c: OptimizerConfig): void {
  checkNumber('lr', c.lr, (x) => Number.isFinite(x) && x >= 0, 'finite and >= 0');
  if (c.kind === 'adamw') {
    checkNumber('beta1', c.beta1 ?? 0.9, (x) => x >= 0 && x < 1, 'in [0, 1)');
    checkNumber('beta2', c.beta2 ?? 0.999, (x) => x >= 0 && x < 1, 'in [0, 1)');
    checkNumber('eps', c.eps ?? 1e-8, (x) => Number.isFinite(x) && x >= 0, 'finite and >= 0');
    checkNumber('weightDecay', c.weightDecay ?? 0.01, (x) => Number.isFinite(x) && x >= 0, 'finite and >= 0');
  } else if (c.kind === 'sgd') {
    checkNumber('momentum', c.momentum ?? 0, (x) => Number.isFinite(x) && x >= 0, 'finite and >= 0');
    checkNumber('weightDecay', c.weightDecay ?? 0, (x) => Number.isFinite(x) && x >= 0, 'finite and >= 0');
    if (c.nesterov === true && !((c.momentum ?? 0) > 0)) throw inputError({ field: 'optimizer.nesterov' }, 'nesterov needs momentum > 0');
  } else {
    throw inputError({ field: 'optimizer.kind' }, `expected 'adamw' or 'sgd', got ${JSON.stringify((c as { kind: unknown }).kind)}`);
  }
}

/**
 * AdamW as torch.optim.AdamW (optim.ts `adamw`): p ← p·(1 − lr·wd); m ← m + (1−β1)(g − m);
 * v ← v·β2 + ((1−β2)·g)·g; p ← p − step_size · m / (sqrt(v)/bc2_sqrt + eps).
 */
function adamwGraph(c: Extract<OptimizerConfig, { kind: 'adamw' }>): GraphOptimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = c;
  return {
    config: c,
    slots: ['m', 'v'],
    scalarInputs: weightDecay !== 0 ? ['opt.decay', 'opt.step_size', 'opt.bc2_sqrt'] : ['opt.step_size', 'opt.bc2_sqrt'],
    scalars(t, lr) {
      if (!Number.isInteger(t) || t < 1) throw new Error(`update number must be an integer >= 1, got ${t}`);
      const out: Record<string, number> = { 'opt.step_size': lr / (1 - beta1 ** t), 'opt.bc2_sqrt': Math.sqrt(1 - beta2 ** t) };
      if (weightDecay !== 0) out['opt.decay'] = 1 - lr * weightDecay;
      return out;
    },
    update(g, p, gr, name) {
      const k = (v: number) => g.scalar(v, p.dtype);
      const m = slotInput(g, 'm', p, name);
      const v = slotInput(g, 'v', p, name);
      const pd = weightDecay !== 0 ? g.mul(p, scalarInput(g, 'opt.decay', p)) : p;
      const mNew = g.add(m, g.mul(k(1 - beta1), g.sub(gr, m)));
      const vNew = g.add(g.mul(v, k(beta2)), g.mul(g.mul(k(1 - beta2), gr), gr));
      const denom = g.add(g.div(g.sqrt(vNew), scalarInput(g, 'opt.bc2_sqrt', p)), k(eps));
      g.output(mNew, `m.${name}.new`);
      g.output(vNew, `v.${name}.new`);
      return g.sub(pd, g.mul(scalarInput(g, 'opt.step_size', p), g.div(mNew, denom)));
    },
    // Bit for bit `update` applied to grad·coef (fused_ops.cc evaluates the same float32 operations in
    // the same order; decay 1 when weightDecay is 0 multiplies exactly).
    fusedUpdate(g, p, gr, coef, name, copyTo) {
      if (copyTo !== undefined && p.dtype !== 'float32') throw new Error(`AdamWCopy needs a float32 master, '${name}' is ${p.dtype}`);
      const md = adamwMomentDtype(p.dtype); // float32, or bfloat16 with bfloat16 parameters
      const m = g.input(`m.${name}`, md, p.shape);
      const v = g.input(`v.${name}`, md, p.shape);
      // The scalars are float32 whatever p's dtype (coef is a float32 scalar).
      const decay = weightDecay !== 0 ? scalarInput(g, 'opt.decay', coef) : g.scalar(1, 'float32');
      const inputs = [p, gr, m, v, scalarInput(g, 'opt.step_size', coef), decay, scalarInput(g, 'opt.bc2_sqrt', coef), coef];
      const attrs = { beta2, one_minus_beta1: 1 - beta1, one_minus_beta2: 1 - beta2, eps };
      const names = [`${name}.new`, `m.${name}.new`, `v.${name}.new`];
      const [pNew, mNew, vNew, copy] =
        copyTo === undefined ? g.op('AdamW', inputs, attrs, names) : g.op('AdamWCopy', inputs, { ...attrs, to: copyTo }, [...names, `copy.${name}.new`]);
      g.output(mNew as Tensor);
      g.output(vNew as Tensor);
      if (copy !== undefined) g.output(copy);
      return pNew as Tensor;
    },
  };
}

/**
 * SGD as torch.optim.SGD with dampening 0 (optim.ts `sgd`): g ← g + wd·p; buf ← momentum·buf + g;
 * g ← nesterov ? g + momentum·buf : buf; p ← p − lr·g.
 */
function sgdGraph(c: Extract<OptimizerConfig, { kind: 'sgd' }>): GraphOptimizer {
  const { momentum = 0, weightDecay = 0, nesterov = false } = c;
  return {
    config: c,
    slots: momentum !== 0 ? ['momentum'] : [],
    scalarInputs: ['opt.lr'],
    scalars(t, lr) {
      if (!Number.isInteger(t) || t < 1) throw new Error(`update number must be an integer >= 1, got ${t}`);
      return { 'opt.lr': lr };
    },
    update(g, p, gr, name) {
      const k = (v: number) => g.scalar(v, p.dtype);
      let d = weightDecay !== 0 ? g.add(gr, g.mul(k(weightDecay), p)) : gr;
      if (momentum !== 0) {
        const buf = slotInput(g, 'momentum', p, name);
        const bufNew = g.add(g.mul(buf, k(momentum)), d);
        g.output(bufNew, `momentum.${name}.new`);
        d = nesterov ? g.add(d, g.mul(k(momentum), bufNew)) : bufNew;
      }
      return g.sub(p, g.mul(scalarInput(g, 'opt.lr', p), d));
    },
  };
}

/** The graph form of an optimizer config. */
export function graphOptimizer(c: OptimizerConfig): GraphOptimizer {
  checkOptimizerConfig(c);
  return c.kind === 'adamw' ? adamwGraph(c) : sgdGraph(c);
}

/**
 * Global L2 norm of `grads` as one fused SumSquares node (float64 accumulation) and the clip
 * coefficient min(1, maxNorm / (norm + 1e-6)) of clip_grad_norm_ (1 without clipping), both float32
 * scalars. The grads are not scaled here: the fused optimizer multiplies by coef as it reads them.
 * coef is NaN when the norm or any of `finite` (float32 scalars, e.g. the loss) is not finite: the fused
 * AdamW then leaves p, m and v as they are, so a step the host skips or refuses has changed no state,
 * also when that state is updated in place. coef + norm·0 + x·0 is coef exactly for finite values.
 */
export function globalNormFusedGraph(
  g: Graph,
  grads: readonly Tensor[],
  maxNorm: number | null,
  finite: readonly Tensor[] = [],
): { norm: Tensor; coef: Tensor } {
  if (maxNorm !== null && !(Number.isFinite(maxNorm) && maxNorm > 0)) throw inputError({ field: 'clipNorm' }, `must be finite and > 0, got ${maxNorm}`);
  if (grads.length === 0) throw new Error('globalNormFusedGraph: no gradients');
  const norm = g.sqrt(g.op1('SumSquares', grads));
  const zero = g.scalar(0, 'float32');
  // 0 when every value is finite, else NaN (x·0 is NaN for ±inf and NaN).
  let guard = g.mul(norm, zero);
  for (const x of finite) guard = g.add(guard, g.mul(g.cast(x, 'float32'), zero));
  const one = g.scalar(1, 'float32');
  if (maxNorm === null) return { norm, coef: g.add(one, guard) };
  const raw = g.div(g.scalar(maxNorm, 'float32'), g.add(norm, g.scalar(1e-6, 'float32')));
  return { norm, coef: g.add(g.where(g.op1('Less', [raw, one]), raw, one), guard) };
}

/**
 * Global L2 norm of `grads` (one ReduceSumSquare per tensor, summed in the given order, then sqrt) and,
 * with `maxNorm`, the grads scaled by coef = min(1, maxNorm / (norm + 1e-6)) as clip_grad_norm_
 * (a NaN norm leaves coef 1; the caller skips such steps). Returns the norm as a rank-0 tensor.
 */
export function clipByGlobalNormGraph(
  g: Graph,
  grads: Readonly<Record<string, Tensor>>,
  maxNorm: number | null,
): { grads: Record<string, Tensor>; norm: Tensor } {
  if (maxNorm !== null && !(Number.isFinite(maxNorm) && maxNorm > 0)) throw inputError({ field: 'clipNorm' }, `must be finite and > 0, got ${maxNorm}`);
  const names = Object.keys(grads);
  if (names.length === 0) throw new Error('clipByGlobalNormGraph: no gradients');
  // One ReduceSumSquare per tensor (one op instead of Mul + ReduceSum). Concatenating the small
  // gradients into a single reduction was measured on the H100 and is far worse: ORT's CUDA Concat of
  // ~300 inputs cost 1.7 s per step (docs/performance.md).
  let sumSq: Tensor | null = null;
  for (const n of names) {
    const s = g.reduceSumSquare(grads[n] as Tensor, undefined, false);
    sumSq = sumSq === null ? s : g.add(sumSq, g.cast(s, sumSq.dtype));
  }
  const norm = g.sqrt(sumSq as Tensor);
  if (maxNorm === null) return { grads: { ...grads }, norm };
  const raw = g.div(g.scalar(maxNorm, norm.dtype), g.add(norm, g.scalar(1e-6, norm.dtype)));
  const one = g.scalar(1, norm.dtype);
  const coef = g.where(g.op1('Less', [raw, one]), raw, one);
  const out: Record<string, Tensor> = {};
  for (const n of names) {
    const gr = grads[n] as Tensor;
    out[n] = g.mul(gr, g.cast(coef, gr.dtype));
  }
  return { grads: out, norm };
}
