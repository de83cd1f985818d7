// Reference optimizers on the CPU in float64: init/update pairs over named flat parameters, matching
// PyTorch's single-tensor (foreach=False) code paths step for step. They are the golden reference for
// the update that the training graphs compute on the device, and drive the CPU tests.
// Not here: fused/foreach kernels, amsgrad, maximize, parameter groups (one lr for all tensors).
// References: torch/optim/adam.py `_single_tensor_adam` (AdamW = Adam with decoupled_weight_decay),
// torch/optim/sgd.py `_single_tensor_sgd`.

/** Named flat float64 tensors (parameters, gradients or one optimizer slot). */
export type Tensors = Readonly<Record<string, Float64Array>>;

/** Optimizer state as plain data: the update count and named slots (e.g. m and v) per parameter. */
export interface OptState {
  readonly step: number;
  readonly slots: Readonly<Record<string, Tensors>>;
}

/** An optimizer: `init` makes the state, `update` returns new params and state (inputs untouched). */
export interface Optimizer {
  readonly name: string;
  init(params: Tensors): OptState;
  /** One update with learning rate `lr` (from the schedule; defaults to the optimizer's lr). */
  update(params: Tensors, grads: Tensors, state: OptState, lr?: number): { params: Record<string, Float64Array>; state: OptState };
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

function checkGrads(params: Tensors, grads: Tensors): void {
  for (const [name, p] of Object.entries(params)) {
    const g = grads[name];
    if (!g) throw new Error(`no gradient for parameter '${name}'`);
    if (g.length !== p.length) throw new Error(`gradient '${name}' has ${g.length} values, parameter has ${p.length}`);
  }
  for (const name of Object.keys(grads)) if (!(name in params)) throw new Error(`gradient '${name}' has no parameter`);
}

function checkState(params: Tensors, state: OptState, slotNames: readonly string[]): void {
  for (const slot of slotNames) {
    const s = state.slots[slot];
    if (!s) throw new Error(`optimizer state has no slot '${slot}'`);
    for (const [name, p] of Object.entries(params)) {
      if (s[name]?.length !== p.length) throw new Error(`optimizer slot '${slot}.${name}' does not match the parameter (${p.length} values)`);
    }
  }
}

const zerosLike = (params: Tensors): Record<string, Float64Array> =>
  Object.fromEntries(Object.entries(params).map(([k, p]) => [k, new Float64Array(p.length)]));

function checkLr(lr: number): void {
  if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`lr must be finite and >= 0, got ${lr}`);
}

/**
 * AdamW as torch.optim.AdamW: p *= 1 - lr*wd (decoupled, first); m = lerp(m, g, 1-b1);
 * v = b2*v + (1-b2)*g*g; p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
export function adamw(opts: AdamWOptions): Optimizer {
  const { lr: baseLr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = opts;
  checkLr(baseLr);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw new Error(`betas must be in [0, 1), got ${beta1}, ${beta2}`);
  return {
    name: 'adamw',
    init: (params) => ({ step: 0, slots: { m: zerosLike(params), v: zerosLike(params) } }),
    update(params, grads, state, lr = baseLr) {
      checkLr(lr);
      checkGrads(params, grads);
      checkState(params, state, ['m', 'v']);
      const step = state.step + 1;
      const bc1 = 1 - beta1 ** step;
      const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
      const stepSize = lr / bc1;
      const w1 = 1 - beta1;
      const w2 = 1 - beta2;
      const decay = 1 - lr * weightDecay;
      const out: Record<string, Float64Array> = {};
      const m: Record<string, Float64Array> = {};
      const v: Record<string, Float64Array> = {};
      for (const [name, p0] of Object.entries(params)) {
        const g = grads[name] as Float64Array;
        const m0 = state.slots['m']![name] as Float64Array;
        const v0 = state.slots['v']![name] as Float64Array;
        const p = new Float64Array(p0.length);
        const mt = new Float64Array(p0.length);
        const vt = new Float64Array(p0.length);
        for (let i = 0; i < p0.length; i++) {
          const gi = g[i] as number;
          const pi = weightDecay !== 0 ? (p0[i] as number) * decay : (p0[i] as number);
          const mi = m0[i] as number;
          mt[i] = mi + w1 * (gi - mi); // torch.lerp with weight < 0.5
          vt[i] = (v0[i] as number) * beta2 + w2 * gi * gi;
          const denom = Math.sqrt(vt[i] as number) / bc2Sqrt + eps;
          p[i] = pi + -stepSize * ((mt[i] as number) / denom);
        }
        out[name] = p;
        m[name] = mt;
        v[name] = vt;
      }
      return { params: out, state: { step, slots: { m, v } } };
    },
  };
}

/**
 * SGD as torch.optim.SGD: g += wd*p; buf = g on the first step, else momentum*buf + (1-dampening)*g;
 * g = nesterov ? g + momentum*buf : buf; p -= lr*g.
 */
export function sgd(opts: SgdOptions): Optimizer {
  const { lr: baseLr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = opts;
  checkLr(baseLr);
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error('nesterov momentum requires a momentum and zero dampening');
  const slots = momentum !== 0 ? ['momentum'] : [];
  return {
    name: 'sgd',
    init: (params): OptState => ({ step: 0, slots: momentum !== 0 ? { momentum: zerosLike(params) } : ({} as Record<string, Tensors>) }),
    update(params, grads, state, lr = baseLr) {
      checkLr(lr);
      checkGrads(params, grads);
      checkState(params, state, slots);
      const out: Record<string, Float64Array> = {};
      const bufs: Record<string, Float64Array> = {};
      for (const [name, p0] of Object.entries(params)) {
        const g0 = grads[name] as Float64Array;
        const p = new Float64Array(p0.length);
        const buf0 = momentum !== 0 ? (state.slots['momentum']![name] as Float64Array) : undefined;
        const buf = new Float64Array(buf0 ? p0.length : 0);
        for (let i = 0; i < p0.length; i++) {
          let g = weightDecay !== 0 ? (g0[i] as number) + weightDecay * (p0[i] as number) : (g0[i] as number);
          if (buf0) {
            const b = state.step === 0 ? g : (buf0[i] as number) * momentum + (1 - dampening) * g;
            buf[i] = b;
            g = nesterov ? g + momentum * b : b;
          }
          p[i] = (p0[i] as number) + -lr * g;
        }
        out[name] = p;
        if (buf0) bufs[name] = buf;
      }
      const nextSlots: Record<string, Tensors> = momentum !== 0 ? { momentum: bufs } : {};
      return { params: out, state: { step: state.step + 1, slots: nextSlots } };
    },
  };
}

/** The optimizer state as named tensors `<prefix>.<slot>.<param>` plus its step (for checkpoints). */
export function optStateToTensors(state: OptState, prefix = 'optim'): { step: number; tensors: Record<string, Float64Array> } {
  const tensors: Record<string, Float64Array> = {};
  for (const [slot, byParam] of Object.entries(state.slots)) {
    for (const [name, data] of Object.entries(byParam)) tensors[`${prefix}.${slot}.${name}`] = data;
  }
  return { step: state.step, tensors };
}

/** Rebuilds an optimizer state saved by optStateToTensors; every slot must cover every parameter. */
export function optStateFromTensors(step: number, tensors: Tensors, params: Tensors, slotNames: readonly string[], prefix = 'optim'): OptState {
  if (!Number.isInteger(step) || step < 0) throw new Error(`optimizer step must be an integer >= 0, got ${step}`);
  const slots: Record<string, Record<string, Float64Array>> = {};
  for (const slot of slotNames) {
    slots[slot] = {};
    for (const name of Object.keys(params)) {
      const key = `${prefix}.${slot}.${name}`;
      const t = tensors[key];
      if (!t) throw new Error(`optimizer tensor '${key}' is missing`);
      slots[slot][name] = t;
    }
  }
  const state = { step, slots };
  checkState(params, state, slotNames);
  return state;
}
