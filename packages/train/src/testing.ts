// @latent-sft/train/testing (a test-only subpath export, not the public API): op-level cases for the
// fused kernels (domain latent_sft: AdamW, SumSquares, MaskedSoftmax, RMSNorm, SwiGLU, Rope, After, FlashAttention, …): one-node graphs over
// seeded data, run on a device, and their exact float32 references in JS. Used by the fused-*.test.ts
// files here (CPU kernels vs the reference) and tools/bench/src/fused-check.ts (CUDA kernels vs the CPU
// kernels, on the GPU machine).
import { Rng } from '@latent-sft/core';
import { type DType, Graph, type Tensor, adamwMomentDtype, dtypeBytes, f16BitsToNumber, hashWords, serialize, typedFrom } from '@latent-sft/graph';
import { type Device, DeviceSession, type HostTensor, StatePair, type TypedData } from '@latent-sft/runtime';

const fr = Math.fround;

/** n seeded draws of f(i, normal) into a Float64Array (a JS array of 8M boxed numbers took ~20 s). */
function draws(n: number, f: (i: number, z: number) => number, r: Rng): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i, r.normal());
  return out;
}

/** AdamW attributes and scalars of the cases (scalars as the host computes them for step t = 3). */
export const ADAMW_CASE = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  step: 1e-3 / (1 - 0.9 ** 3),
  decay: 1 - 1e-3 * 0.01,
  bc2: Math.sqrt(1 - 0.999 ** 3),
  coef: 0.37,
} as const;

/**
 * Seeded inputs of one AdamW case with `n` elements, a gradient of dtype `gdt`, p of dtype `pdt` (float32
 * masters, or 16-bit parameters) and m, v of graph's adamwMomentDtype(pdt).
 */
export function adamwInputs(
  n: number,
  gdt: 'float32' | 'bfloat16' | 'float16',
  seed: number,
  pdt: 'float32' | 'bfloat16' | 'float16' = 'float32',
): Record<string, HostTensor> {
  const r = Rng.fromSeed(seed);
  const normal = (s: number) => draws(n, (_, z) => s * z, r);
  const md = adamwMomentDtype(pdt) as 'float32' | 'bfloat16';
  const as =
    (dtype: 'float32' | 'bfloat16' | 'float16') =>
    (v: ArrayLike<number>): HostTensor =>
      ({ dtype, dims: [n], data: typedFrom(dtype, v) as TypedData }) as HostTensor;
  const [pt, mt] = [as(pdt), as(md)];
  const s = (v: number): HostTensor => ({ dtype: 'float32', dims: [], data: Float32Array.of(v) });
  const c = ADAMW_CASE;
  return {
    p: pt(normal(0.05)),
    g: { dtype: gdt, dims: [n], data: typedFrom(gdt, normal(2e-3)) as TypedData } as HostTensor,
    m: mt(normal(1e-3)),
    v: mt(normal(1e-3).map((x) => x * x)),
    step: s(c.step),
    decay: s(c.decay),
    bc2: s(c.bc2),
    coef: s(c.coef),
  };
}

/** A one-node graph: AdamW(p, g, m, v, step, decay, bc2, coef) → p', m', v' (p, m, v of dtype `pdt`). */
export function adamwGraph(n: number, gdt: 'float32' | 'bfloat16' | 'float16', pdt: 'float32' | 'bfloat16' | 'float16' = 'float32'): Uint8Array {
  const g = new Graph('adamw_case');
  const c = ADAMW_CASE;
  const ins = ['p', 'g', 'm', 'v'].map((k) => g.input(k, k === 'g' ? gdt : k === 'p' ? pdt : adamwMomentDtype(pdt), [n]));
  const sc = ['step', 'decay', 'bc2', 'coef'].map((k) => g.input(k, 'float32', []));
  const outs = g.op('AdamW', [...ins, ...sc], { beta2: c.beta2, one_minus_beta1: 1 - c.beta1, one_minus_beta2: 1 - c.beta2, eps: c.eps }, [
    'p_new',
    'm_new',
    'v_new',
  ]);
  for (const o of outs) g.output(o);
  return serialize(g).model;
}

/** The tensors of adamwMultiCase: [elements, gradient dtype, parameter dtype] (p float32: masters; 16-bit: their own moments). */
export const ADAMW_MULTI_TENSORS: ReadonlyArray<readonly [number, 'float32' | 'bfloat16' | 'float16', 'float32' | 'bfloat16' | 'float16']> = [
  [1001, 'bfloat16', 'float32'],
  [(1 << 16) + 3, 'float32', 'float32'],
  [7, 'float16', 'float32'],
  [4099, 'bfloat16', 'bfloat16'],
  [515, 'float16', 'float16'],
];

/**
 * The multi-tensor AdamW against the single op on one graph: for each tensor i of ADAMW_MULTI_TENSORS (p_i,
 * g_i, m_i, v_i inputs; the four scalars shared), AdamW → `single_{p,m,v}_i` and one AdamWMulti over all →
 * `multi_{p,m,v}_i`, which must be bit for bit the single op's (`coef` NaN: every tensor skipped).
 */
export function adamwMultiCase(seed: number, coef: number = ADAMW_CASE.coef): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('adamw_multi_case');
  const c = ADAMW_CASE;
  const attrs = { beta2: c.beta2, one_minus_beta1: 1 - c.beta1, one_minus_beta2: 1 - c.beta2, eps: c.eps };
  const sc = ['step', 'decay', 'bc2', 'coef'].map((k) => g.input(k, 'float32', []));
  const inputs: Record<string, HostTensor> = {};
  const groups: Tensor[] = [];
  ADAMW_MULTI_TENSORS.forEach(([n, gdt, pdt], i) => {
    const one = adamwInputs(n, gdt, seed + i, pdt);
    const ins = ['p', 'g', 'm', 'v'].map((k) => {
      const t = one[k] as HostTensor;
      inputs[`${k}_${i}`] = t;
      return g.input(`${k}_${i}`, t.dtype, [n]);
    });
    if (i === 0) for (const k of ['step', 'decay', 'bc2', 'coef']) inputs[k] = one[k] as HostTensor;
    groups.push(...ins);
    g.op(
      'AdamW',
      [...ins, ...sc],
      attrs,
      ['p', 'm', 'v'].map((k) => `single_${k}_${i}`),
    ).forEach((o) => g.output(o));
  });
  inputs['coef'] = { dtype: 'float32', dims: [], data: Float32Array.of(coef) };
  const names = ADAMW_MULTI_TENSORS.flatMap((_, i) => ['p', 'm', 'v'].map((k) => `multi_${k}_${i}`));
  for (const o of g.op('AdamWMulti', [...sc, ...groups], attrs, names)) g.output(o);
  return { model: serialize(g).model, inputs };
}

/**
 * CastMulti against Cast on one graph: 3 float32 tensors (special values, 65,541 spread over 14 decades, 1)
 * → `cast_i` (ONNX Cast) and `multi_i` (one CastMulti over all), which must be bit for bit equal.
 */
export function castMultiCase(to: 'bfloat16' | 'float16', seed: number): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('cast_multi_case');
  const r = Rng.fromSeed(seed);
  const specials = [
    0,
    -0,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NaN,
    65504,
    65520,
    1e6,
    5.96e-8,
    3e-8,
    1e-40,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
  ];
  const sizes = [specials.length, (1 << 16) + 5, 1];
  const inputs: Record<string, HostTensor> = {};
  const xs = sizes.map((n, i) => {
    inputs[`x${i}`] = {
      dtype: 'float32',
      dims: [n],
      data: Float32Array.from({ length: n }, (_, j) => (i === 0 ? (specials[j] as number) : r.normal() * 10 ** (r.uniform() * 14 - 9))),
    };
    return g.input(`x${i}`, 'float32', [n]);
  });
  xs.forEach((x, i) => g.output(g.cast(x, to), `cast_${i}`));
  g.op('CastMulti', xs, { to }).forEach((y, i) => g.output(y, `multi_${i}`));
  return { model: serialize(g).model, inputs };
}

/** `inputs` with the clip coefficient replaced (NaN / ±inf: the step graph's "skip this update"). */
export function withCoef(inputs: Record<string, HostTensor>, coef: number): Record<string, HostTensor> {
  return { ...inputs, coef: { dtype: 'float32', dims: [], data: Float32Array.of(coef) } };
}

/**
 * Runs adamwGraph's AdamW (p, m, v of the inputs' dtype) once with p', m', v' bound to the very tensors p, m, v are read from (runtime's
 * in-place StatePair, as the Trainer's in-place state) and returns what those tensors hold afterwards (widened).
 */
export async function runAdamWInPlace(
  inputs: Record<string, HostTensor>,
  gdt: 'float32' | 'bfloat16' | 'float16',
  device: Device,
): Promise<{ p: Float32Array; m: Float32Array; v: Float32Array }> {
  const n = (inputs['p'] as HostTensor).data.length;
  const pdt = (inputs['p'] as HostTensor).dtype as 'float32' | 'bfloat16' | 'float16';
  const session = DeviceSession.create(adamwGraph(n, gdt, pdt), { device, deterministic: true });
  const binding = session.createBinding();
  const state = ['p', 'm', 'v'].map((k) => StatePair.create(session, k, `${k}_new`, inputs[k] as HostTensor, true));
  const rest = ['g', 'step', 'decay', 'bc2', 'coef'].map((k) => {
    const t = session.upload(inputs[k] as HostTensor);
    binding.bindInput(k, t);
    return t;
  });
  try {
    for (const s of state) s.bind(binding);
    await session.runAsync(binding);
    const [p, m, v] = state.map((s) => Float32Array.from(floatValues({ dtype: s.current.dtype, dims: [n], data: s.current.download() } as HostTensor))) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    return { p, m, v };
  } finally {
    for (const t of [...state, ...rest]) t.release();
    binding.release();
    session.release();
  }
}

/** Element values of a float tensor as numbers (bf16/f16 widened). */
export function floatValues(t: HostTensor): Float64Array {
  const out = new Float64Array(t.data.length);
  const u32 = new Uint32Array(1);
  const f = new Float32Array(u32.buffer);
  for (let i = 0; i < out.length; i++) {
    const x = (t.data as ArrayLike<number>)[i] as number;
    if (t.dtype === 'bfloat16') {
      u32[0] = x << 16;
      out[i] = f[0] as number;
    } else if (t.dtype === 'float16') out[i] = f16BitsToNumber(x);
    else out[i] = x;
  }
  return out;
}

/** The float32 reference of AdamW (fused_ops.cc's order, every operation rounded to float32; 16-bit p, m, v: the results rounded once). */
export function adamwReference(inp: Record<string, HostTensor>): { p: Float32Array; m: Float32Array; v: Float32Array } {
  const c = ADAMW_CASE;
  const [b2, omb1, omb2, eps] = [fr(c.beta2), fr(1 - c.beta1), fr(1 - c.beta2), fr(c.eps)];
  const sc = (k: string) => ((inp[k] as HostTensor).data as Float32Array)[0] as number;
  const [step, decay, bc2, coef] = [sc('step'), sc('decay'), sc('bc2'), sc('coef')];
  const [p, m, v, g] = ['p', 'm', 'v', 'g'].map((k) => floatValues(inp[k] as HostTensor)) as [Float64Array, Float64Array, Float64Array, Float64Array];
  const n = p.length;
  const out = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    // Double rounding through float64 is exact for + − × ÷ √ of float32 operands (53 ≥ 2·24 + 2).
    const gr = fr((g[i] as number) * coef);
    const pd = fr((p[i] as number) * decay);
    const mn = fr((m[i] as number) + fr(omb1 * fr(gr - (m[i] as number))));
    const vn = fr(fr((v[i] as number) * b2) + fr(fr(omb2 * gr) * gr));
    const den = fr(fr(fr(Math.sqrt(vn)) / bc2) + eps);
    out.p[i] = fr(pd - fr(step * fr(mn / den)));
    out.m[i] = mn;
    out.v[i] = vn;
  }
  // Each result rounded once to its tensor's dtype (16-bit ones returned widened).
  const round = (x: Float32Array, dtype: string) =>
    dtype === 'float32' ? x : Float32Array.from(floatValues({ dtype, dims: [n], data: typedFrom(dtype as 'bfloat16', x) } as HostTensor));
  const [pdt, mdt] = [(inp['p'] as HostTensor).dtype, (inp['m'] as HostTensor).dtype];
  return { p: round(out.p, pdt), m: round(out.m, mdt), v: round(out.v, mdt) };
}

/** SumSquares over tensors of the given dtypes and sizes. */
export function sumSquaresCase(
  specs: ReadonlyArray<{ dtype: DType; dims: number[] }>,
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('sumsq_case');
  const r = Rng.fromSeed(seed);
  const inputs: Record<string, HostTensor> = {};
  const ts = specs.map((s, i) => {
    const n = s.dims.reduce((a, b) => a * b, 1);
    inputs[`x${i}`] = {
      dtype: s.dtype,
      dims: s.dims,
      data: typedFrom(
        s.dtype,
        draws(n, (_, z) => (i + 1) * z, r),
      ) as TypedData,
    } as HostTensor;
    return g.input(`x${i}`, s.dtype, s.dims);
  });
  g.output(g.op1('SumSquares', ts), 'y');
  return { model: serialize(g).model, inputs };
}

/** Σ x² of the inputs in float64, rounded once to float32. */
export function sumSquaresReference(inputs: Record<string, HostTensor>): number {
  let s = 0;
  for (const t of Object.values(inputs)) for (const x of floatValues(t)) s += x * x;
  return fr(s);
}

/** Runs a model once on `device`: uploads the inputs, every output to device memory ORT allocates, downloads. */
export async function runOnce(model: Uint8Array, inputs: Record<string, HostTensor>, device: Device): Promise<Record<string, HostTensor>> {
  const session = DeviceSession.create(model, { device, deterministic: true });
  const binding = session.createBinding();
  const held = Object.entries(inputs).map(([k, t]) => {
    const d = session.upload(t);
    binding.bindInput(k, d);
    return d;
  });
  try {
    const outs = session
      .handle()
      .outputs()
      .map((o) => o.name);
    for (const name of outs) binding.bindOutputToDevice(name);
    await session.runAsync(binding);
    const res: Record<string, HostTensor> = {};
    for (const name of outs) {
      const t = binding.output(name);
      res[name] = t.toHost();
      t.release();
    }
    return res;
  } finally {
    for (const t of held) t.release();
    binding.release();
    session.release();
  }
}

/** runOnce for graphs whose outputs are all float32: their data. */
export async function runFloat32(model: Uint8Array, inputs: Record<string, HostTensor>, device: Device): Promise<Record<string, Float32Array>> {
  const out = await runOnce(model, inputs, device);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

/** ‖a − b‖ / ‖b‖. */
export function normwise(a: Float32Array, b: Float32Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * MaskedSoftmax and MaskedSoftmaxGrad on one graph: inputs x [dims] (dtype), mask [maskDims] float32,
 * dy [dims] (dtype); outputs y, stats (forward) and dx (the grad op on dy, x, mask, stats).
 */
export function maskedSoftmaxCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  dims: number[],
  maskDims: number[],
  scale: number,
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('msoftmax_case');
  const r = Rng.fromSeed(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const nm = maskDims.reduce((a, b) => a * b, 1);
  const [S, T] = [dims.at(-1) as number, dims.at(-2) ?? 1];
  const x = g.input('x', dtype, dims);
  const m = g.input('mask', 'float32', maskDims);
  const dy = g.input('dy', dtype, dims);
  const [y, stats] = g.op('MaskedSoftmax', [x, m], { scale });
  g.output(y as Tensor, 'y');
  g.output(stats as Tensor, 'stats');
  g.output(g.op1('MaskedSoftmaxGrad', [dy, x, m, stats as Tensor], { scale }), 'dx');
  // Causal mask over the last two dims (query t sees keys ≤ t + S − T); the first mask row of every
  // leading block also blocks all keys (a fully masked row).
  const mask = Float32Array.from({ length: nm }, (_, i) => {
    const mS = maskDims.at(-1) as number,
      mT = maskDims.at(-2) ?? 1;
    const s = i % mS,
      t = Math.floor(i / mS) % mT;
    return s > t + S - T || (mT > 1 && t === 0) ? -3.4028234663852886e38 : 0;
  });
  const normal = (k: number) => draws(n, (_, z) => k * z, r);
  return {
    model: serialize(g).model,
    inputs: {
      x: { dtype, dims, data: typedFrom(dtype, normal(4)) as TypedData } as HostTensor,
      mask: { dtype: 'float32', dims: maskDims, data: mask },
      dy: { dtype, dims, data: typedFrom(dtype, normal(1)) as TypedData } as HostTensor,
    },
  };
}

/**
 * RMSNorm and RMSNormGrad on one graph: inputs x [dims] and dy [dims] (dtype), w [D] (dtype); outputs
 * y, r (forward), dx and dw (the grad op on dy, x, w, r; dw = Σ of its float32 partials over axis 0).
 */
export function rmsNormCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  dims: number[],
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('rmsnorm_case');
  const r = Rng.fromSeed(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const D = dims.at(-1) as number;
  const x = g.input('x', dtype, dims);
  const w = g.input('w', dtype, [D]);
  const dy = g.input('dy', dtype, dims);
  const [y, rs] = g.op('RMSNorm', [x, w], { epsilon: 1e-5 }) as [Tensor, Tensor];
  g.output(y, 'y');
  g.output(rs, 'r');
  const [dx, parts] = g.op('RMSNormGrad', [dy, x, w, rs]) as [Tensor, Tensor];
  g.output(dx, 'dx');
  g.output(g.reduceSum(parts, [0], false), 'dw');
  // Rows of scales 1..5 (the normalization matters), weights around 1.
  const xs = draws(n, (i, z) => (1 + (Math.floor(i / D) % 5)) * z, r);
  return {
    model: serialize(g).model,
    inputs: {
      x: { dtype, dims, data: typedFrom(dtype, xs) as TypedData } as HostTensor,
      w: {
        dtype,
        dims: [D],
        data: typedFrom(
          dtype,
          Array.from({ length: D }, () => 1 + 0.3 * r.normal()),
        ) as TypedData,
      } as HostTensor,
      dy: {
        dtype,
        dims,
        data: typedFrom(
          dtype,
          draws(n, (_, z) => z, r),
        ) as TypedData,
      } as HostTensor,
    },
  };
}

/**
 * SwiGLU and SwiGLUGrad on one graph: inputs gate, up, dy [dims] (dtype); outputs y (forward), y_packed
 * (SwiGLUPacked of [gate, up] concatenated along the last axis: must be y, bit for bit), dgate and dup (the
 * grad op on dy, gate, up). Gates span the SiLU's whole shape, including |g| > 88 (e^−g
 * overflows float32) and the zero of its derivative near g = −1.28.
 */
export function swigluCase(dtype: 'float32' | 'bfloat16' | 'float16', dims: number[], seed: number): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('swiglu_case');
  const r = Rng.fromSeed(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const [gate, up, dy] = ['gate', 'up', 'dy'].map((k) => g.input(k, dtype, dims)) as [Tensor, Tensor, Tensor];
  g.output(g.op1('SwiGLU', [gate, up]), 'y');
  g.output(g.op1('SwiGLUPacked', [g.concat([gate, up], -1)]), 'y_packed');
  const [dg, du] = g.op('SwiGLUGrad', [dy, gate, up]) as [Tensor, Tensor];
  g.output(dg, 'dgate');
  g.output(du, 'dup');
  const extremes = [-100, -90, -30, -1.28, 0, 1e-3, 30, 90, 100];
  const gates = draws(n, (i, z) => (i < extremes.length ? (extremes[i] as number) : 3 * z), r);
  const t = (v: ArrayLike<number>) => ({ dtype, dims, data: typedFrom(dtype, v) as TypedData }) as HostTensor;
  return { model: serialize(g).model, inputs: { gate: t(gates), up: t(draws(n, (_, z) => z, r)), dy: t(draws(n, (_, z) => z, r)) } };
}

/**
 * SeededDropout on one graph: x [N, I] (dtype, with signed zeros, ±∞ and NaN), random int32 tables a, c
 * [N, 1] and b, d [1, I] (sums and products that wrap), keep rate 0.9, scale 1/0.9 rounded to the dtype →
 * `y`; and `y_tables`, the same dropout read in place from tables shaped like lora-graph.ts's DropoutSource
 * (`rows` [N, 6], `cols` [6, I + 5], random words elsewhere) at stream 1 (a, c in columns 2, 3 of rows; b,
 * d in rows 2, 3 of cols, columns [0, I)): `y_tables` must be `y` bit for bit. `y_split` reads the four from
 * four different tables (`rows` and `rows2` [N, 9]: a in column 2, c in column 7; `cols` and `cols2` [4, I + 11]:
 * b in row 2, d in row 1), so a mix-up of A's and C's (or B's and D's) widths or indices cannot pass either.
 */
export function seededDropoutCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  N: number,
  I: number,
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('seeded_dropout_case');
  const r = Rng.fromSeed(seed);
  const x = g.input('x', dtype, [N, I]);
  const tables = (['a', 'b', 'c', 'd'] as const).map((k, i) => g.input(k, 'int32', i % 2 === 0 ? [N, 1] : [1, I]));
  const [W, K] = [6, I + 5];
  const rows = g.input('rows', 'int32', [N, W]);
  const cols = g.input('cols', 'int32', [W, K]);
  const scale = Number(typedFrom('float32', [1 / 0.9])[0]);
  const threshold = Math.round(0.9 * 2 ** 32) - 2 ** 31;
  g.output(g.op1('SeededDropout', [x, ...tables], { threshold, scale, a_col: 0, b_row: 0, c_col: 0, d_row: 0 }), 'y');
  g.output(g.op1('SeededDropout', [x, rows, cols, rows, cols], { threshold, scale, a_col: 2, b_row: 2, c_col: 3, d_row: 3 }), 'y_tables');
  const [W2, K2] = [9, I + 11];
  const rows2 = g.input('rows2', 'int32', [N, W2]);
  const cols2 = g.input('cols2', 'int32', [4, K2]);
  g.output(g.op1('SeededDropout', [x, rows, cols, rows2, cols2], { threshold, scale, a_col: 2, b_row: 2, c_col: 7, d_row: 1 }), 'y_split');
  const specials = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];
  const xs = draws(N * I, (i, z) => (i < specials.length ? (specials[i] as number) : 4 * z), r);
  const words = (n: number) => Int32Array.from({ length: n }, () => Math.floor(r.uniform() * 2 ** 32) - 2 ** 31);
  const [a, b, c, d] = [words(N), words(I), words(N), words(I)];
  const rowData = words(N * W);
  const colData = words(W * K);
  for (let n = 0; n < N; n++) [rowData[n * W + 2], rowData[n * W + 3]] = [a[n] as number, c[n] as number];
  for (let i = 0; i < I; i++) [colData[2 * K + i], colData[3 * K + i]] = [b[i] as number, d[i] as number];
  const rowData2 = words(N * W2);
  const colData2 = words(4 * K2);
  for (let n = 0; n < N; n++) rowData2[n * W2 + 7] = c[n] as number;
  for (let i = 0; i < I; i++) colData2[K2 + i] = d[i] as number;
  return {
    model: serialize(g).model,
    inputs: {
      x: { dtype, dims: [N, I], data: typedFrom(dtype, xs) as TypedData } as HostTensor,
      a: { dtype: 'int32', dims: [N, 1], data: a },
      b: { dtype: 'int32', dims: [1, I], data: b },
      c: { dtype: 'int32', dims: [N, 1], data: c },
      d: { dtype: 'int32', dims: [1, I], data: d },
      rows: { dtype: 'int32', dims: [N, W], data: rowData },
      cols: { dtype: 'int32', dims: [W, K], data: colData },
      rows2: { dtype: 'int32', dims: [N, W2], data: rowData2 },
      cols2: { dtype: 'int32', dims: [4, K2], data: colData2 },
    },
  };
}

/**
 * HashWords on one graph: the dropout tables' words (int32 [count / width, width]) of the int64 scalar input
 * `seed`, as graph's hashWords writes them with standard ops (`want`) and as latent_sft.HashWords (`got`);
 * `outputs` picks which (both by default; one of them for a timing).
 */
export function hashWordsCase(
  count: number,
  width: number,
  seed: bigint,
  offLo: number,
  offHi: number,
  outputs: ReadonlyArray<'want' | 'got'> = ['want', 'got'],
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('hash_words_case');
  const s = g.input('seed', 'int64', []);
  if (outputs.includes('want')) g.output(hashWords(g, g.scalar(count, 'int64'), width, s, offLo, offHi), 'want');
  if (outputs.includes('got')) g.output(g.op1('HashWords', [s], { count, width, offset_lo: offLo, offset_hi: offHi }), 'got');
  return { model: serialize(g).model, inputs: { seed: { dtype: 'int64', dims: [], data: BigInt64Array.of(seed) } as HostTensor } };
}

/** The float32 reference of swigluCase's outputs (ops/swiglu.cc's formulas, each operation rounded to float32, then to the dtype). */
export function swigluReference(inp: Record<string, HostTensor>): { y: Float64Array; dgate: Float64Array; dup: Float64Array } {
  const dtype = (inp['gate'] as HostTensor).dtype as 'float32' | 'bfloat16' | 'float16';
  const round = (v: number) => floatValues({ dtype, dims: [1], data: typedFrom(dtype, [v]) } as HostTensor)[0] as number;
  const [g, u, d] = ['gate', 'up', 'dy'].map((k) => floatValues(inp[k] as HostTensor)) as [Float64Array, Float64Array, Float64Array];
  const n = g.length;
  const out = { y: new Float64Array(n), dgate: new Float64Array(n), dup: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const [gi, ui, di] = [g[i] as number, u[i] as number, d[i] as number];
    const s = fr(1 / fr(1 + fr(Math.exp(-gi))));
    const silu = round(fr(gi * s));
    out.y[i] = round(fr(silu * ui));
    out.dup[i] = round(fr(di * silu));
    out.dgate[i] = round(fr(fr(di * ui) * fr(s * fr(1 + fr(gi * fr(1 - s))))));
  }
  return out;
}

/**
 * Rope forward and backward on one graph: inputs x, dy [B, T, n, hd] and cos, sin [B, T, 1, hd] (dtype); outputs
 * y = Rope(x, cos, sin) and dx = Rope(dy, cos, sin){transpose 1}. cos and sin are independent draws in [−1, 1],
 * not the cos / ±sin of one angle (whose halves repeat: cos[j] = cos[j + hd/2]), so that a kernel reading the
 * wrong half of either, or the forward's sin where the backward needs sin[swap(j)], shows.
 */
export function ropeCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  dims: readonly [number, number, number, number],
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('rope_case');
  const r = Rng.fromSeed(seed);
  const [B, T, , hd] = dims;
  const fdims = [B, T, 1, hd];
  const [x, dy] = ['x', 'dy'].map((k) => g.input(k, dtype, [...dims])) as [Tensor, Tensor];
  const [cos, sin] = ['cos', 'sin'].map((k) => g.input(k, dtype, fdims)) as [Tensor, Tensor];
  g.output(g.op1('Rope', [x, cos, sin]), 'y');
  g.output(g.op1('Rope', [dy, cos, sin], { transpose: 1 }), 'dx');
  const n = dims.reduce((a, b) => a * b, 1);
  const m = fdims.reduce((a, b) => a * b, 1);
  const t = (d: number[], v: ArrayLike<number>) => ({ dtype, dims: d, data: typedFrom(dtype, v) as TypedData }) as HostTensor;
  return {
    model: serialize(g).model,
    inputs: {
      x: t(
        [...dims],
        draws(n, (_, z) => 2 * z, r),
      ),
      dy: t(
        [...dims],
        draws(n, (_, z) => z, r),
      ),
      cos: t(
        fdims,
        draws(m, (_, z) => Math.sin(3 * z), r),
      ),
      sin: t(
        fdims,
        draws(m, (_, z) => Math.cos(3 * z) * Math.sign(z), r),
      ),
    },
  };
}

/**
 * ropeCase's outputs from its (rounded) inputs, y[j] = x[j]·cos[j] + x[swap(j)]·sin[j] and
 * dx[j] = dy[j]·cos[j] + dy[swap(j)]·sin[swap(j)]: in float64, unrounded (y, dx); in the kernels' float32
 * arithmetic, each product and the sum rounded to float32, before the final rounding to the dtype (y32, dx32);
 * and the scale of each, |x[j]·cos[j]| + |x[swap(j)]·sin[j]| (dx's likewise), that float32 errors are relative to.
 */
export function ropeReference(inp: Record<string, HostTensor>): {
  y: Float64Array;
  dx: Float64Array;
  y32: Float64Array;
  dx32: Float64Array;
  yScale: Float64Array;
  dxScale: Float64Array;
} {
  const [B, T, H, hd] = (inp['x'] as HostTensor).dims as [number, number, number, number];
  const [x, dy, c, s] = ['x', 'dy', 'cos', 'sin'].map((k) => floatValues(inp[k] as HostTensor)) as [Float64Array, Float64Array, Float64Array, Float64Array];
  const half = hd / 2;
  const n = B * T * H * hd;
  const out = {
    y: new Float64Array(n),
    dx: new Float64Array(n),
    y32: new Float64Array(n),
    dx32: new Float64Array(n),
    yScale: new Float64Array(n),
    dxScale: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const j = i % hd;
    const sw = j < half ? i + half : i - half; // x[swap(j)] of the same row
    const f = Math.floor(i / (H * hd)) * hd; // the token's row of cos / sin
    const [cj, sj, ssw] = [c[f + j] as number, s[f + j] as number, s[f + (j < half ? j + half : j - half)] as number];
    out.y[i] = (x[i] as number) * cj + (x[sw] as number) * sj;
    out.yScale[i] = Math.abs((x[i] as number) * cj) + Math.abs((x[sw] as number) * sj);
    out.dx[i] = (dy[i] as number) * cj + (dy[sw] as number) * ssw;
    out.dxScale[i] = Math.abs((dy[i] as number) * cj) + Math.abs((dy[sw] as number) * ssw);
    // float32 operands: each product is exact in float64, so fr() rounds it once; the sum of two float32 values
    // likewise (unless their exponents are > 29 apart, not in these draws).
    out.y32[i] = fr(fr((x[i] as number) * cj) + fr((x[sw] as number) * sj));
    out.dx32[i] = fr(fr((dy[i] as number) * cj) + fr((dy[sw] as number) * ssw));
  }
  return out;
}

/** Largest |a − b| relative to |b| elementwise (y, dup), or to the largest |b| (dgate: its factor crosses 0). */
export function worstRel(a: Float64Array, b: Float64Array, byMax: boolean): number {
  const max = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs((a[i] as number) - (b[i] as number)) / (byMax ? max : Math.abs(b[i] as number) || 1));
  return w;
}

/**
 * AdamWCopy next to AdamW on one case (gradient and copy of dtype `to`): outputs pc, mc, vc, copy (AdamWCopy),
 * pa, ma, va (AdamW) and cast = Cast(pa → to). p holds values where the rounding matters: f16 overflow
 * (→ inf), subnormals, exact ties of both dtypes.
 */
export function adamwCopyCase(n: number, to: 'bfloat16' | 'float16', seed: number): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const inputs = adamwInputs(n, to, seed);
  (inputs['p']!.data as Float32Array).set([7e4, -7e4, 3e-6, -1e-7, 1 + 2 ** -8, 1 + 2 ** -11, 0, 65504]);
  const g = new Graph('adamw_copy_case');
  const c = ADAMW_CASE;
  const ins = ['p', 'g', 'm', 'v'].map((k) => g.input(k, k === 'g' ? to : 'float32', [n]));
  const sc = ['step', 'decay', 'bc2', 'coef'].map((k) => g.input(k, 'float32', []));
  const attrs = { beta2: c.beta2, one_minus_beta1: 1 - c.beta1, one_minus_beta2: 1 - c.beta2, eps: c.eps };
  const [pc, mc, vc, copy] = g.op('AdamWCopy', [...ins, ...sc], { ...attrs, to }) as Tensor[];
  const [pa, ma, va] = g.op('AdamW', [...ins, ...sc], attrs) as Tensor[];
  for (const [name, t] of Object.entries({ pc, mc, vc, copy, pa, ma, va })) g.output(g.identity(t as Tensor), name);
  g.output(g.cast(pa as Tensor, to), 'cast');
  return { model: serialize(g).model, inputs };
}

/**
 * CEChunkStats and CEChunkGrad on one graph (a chunk of `C` vocabulary columns at `offset` of a vocabulary of
 * `vocab`, `R` rows): inputs z [R, C] and zT [C, R] (dtype; zT is z transposed), target [R, 1] int64, lse and
 * dlogp [R, 1] float32; outputs stats [R, 3] and dzT [C, R]. Targets: rows 0–2 in the chunk (first, last
 * column, and one inside), row 3 before it, row 4 past it, row 5 outside the vocabulary (−1), the rest random
 * over the vocabulary. Logits span ±12 (e^z over a wide range), lse the rows' own log-sum-exp ± 0.5.
 */
export function ceChunkCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  R: number,
  C: number,
  offset: number,
  vocab: number,
  seed: number,
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  if (R < 6 || offset < 1 || offset + C >= vocab) throw new Error('ceChunkCase: needs R >= 6 and the chunk strictly inside the vocabulary');
  const g = new Graph('ce_chunk_case');
  const r = Rng.fromSeed(seed);
  const z = g.input('z', dtype, [R, C]);
  const zT = g.input('zT', dtype, [C, R]);
  const t = g.input('target', 'int64', [R, 1]);
  const lse = g.input('lse', 'float32', [R, 1]);
  const dlogp = g.input('dlogp', 'float32', [R, 1]);
  g.output(g.op1('CEChunkStats', [z, t], { offset, vocab }), 'stats');
  g.output(g.op1('CEChunkGrad', [zT, t, lse, dlogp], { offset }), 'dzT');
  const zs = typedFrom(
    dtype,
    draws(R * C, (_, v) => 4 * v, r),
  );
  const zv = floatValues({ dtype, dims: [R, C], data: zs } as HostTensor);
  const zts = typedFrom(
    dtype,
    Array.from({ length: R * C }, () => 0),
  );
  for (let i = 0; i < R; i++)
    for (let c = 0; c < C; c++) (zts as Uint16Array | Float32Array)[c * R + i] = (zs as Uint16Array | Float32Array)[i * C + c] as number;
  const fixed = [offset, offset + C - 1, offset + Math.floor(C / 2), offset - 1, offset + C, -1];
  const targets = BigInt64Array.from({ length: R }, (_, i) => BigInt(i < fixed.length ? (fixed[i] as number) : Math.floor(r.uniform() * vocab)));
  const lses = Float32Array.from({ length: R }, (_, i) => {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, zv[i * C + c] as number);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp((zv[i * C + c] as number) - m);
    return m + Math.log(s) + (r.uniform() - 0.5);
  });
  return {
    model: serialize(g).model,
    inputs: {
      z: { dtype, dims: [R, C], data: zs } as HostTensor,
      zT: { dtype, dims: [C, R], data: zts } as HostTensor,
      target: { dtype: 'int64', dims: [R, 1], data: targets },
      lse: { dtype: 'float32', dims: [R, 1], data: lses },
      dlogp: { dtype: 'float32', dims: [R, 1], data: Float32Array.from({ length: R }, () => r.normal()) },
    },
  };
}

/**
 * The reference of ceChunkCase's outputs in float64 from the stored (rounded) inputs: stats (max, Σ e^(z −
 * max), z[target] / 0 / NaN) and dzT = dlogp·(onehot − e^(z − lse)) (not rounded to the dtype).
 */
export function ceChunkReference(inp: Record<string, HostTensor>, offset: number, vocab: number): { stats: Float64Array; dzT: Float64Array } {
  const zT = floatValues(inp['zT'] as HostTensor);
  const [C, R] = (inp['zT'] as HostTensor).dims as [number, number];
  const t = Array.from(inp['target']!.data as BigInt64Array, Number);
  const lse = inp['lse']!.data as Float32Array;
  const dlogp = inp['dlogp']!.data as Float32Array;
  const stats = new Float64Array(3 * R);
  const dzT = new Float64Array(C * R);
  for (let i = 0; i < R; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, zT[c * R + i] as number);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp((zT[c * R + i] as number) - m);
    const ti = t[i] as number;
    stats.set([m, s, ti < 0 || ti >= vocab ? Number.NaN : ti >= offset && ti < offset + C ? (zT[(ti - offset) * R + i] as number) : 0], 3 * i);
    for (let c = 0; c < C; c++)
      dzT[c * R + i] = (dlogp[i] as number) * ((c + offset === ti ? 1 : 0) - Math.exp((zT[c * R + i] as number) - (lse[i] as number)));
  }
  return { stats, dzT };
}

/** The dtypes afterCase covers: every one a step graph can route through latent_sft.After. */
export const AFTER_DTYPES = ['float32', 'bfloat16', 'float16', 'float64', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const;

/**
 * latent_sft.After on one graph: input x [dims] of `dtype` (seeded bits: every value, NaN patterns
 * included, must come through unchanged; bool as 0/1) and two deps of other dtypes (float32 [3],
 * int64 [2]); output y = After(x, dep, dep2), a copy of x.
 */
export function afterCase(dtype: (typeof AFTER_DTYPES)[number], dims: number[], seed: number): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('after_case');
  g.output(g.op1('After', [g.input('x', dtype, dims), g.input('dep', 'float32', [3]), g.input('dep2', 'int64', [2])]), 'y');
  const n = dims.reduce((a, b) => a * b, 1);
  const r = Rng.fromSeed(seed);
  const bytes = Uint8Array.from({ length: n * dtypeBytes[dtype] }, () => Math.floor(r.uniform() * (dtype === 'bool' ? 2 : 256)));
  const Ctor = {
    float32: Float32Array,
    float64: Float64Array,
    bfloat16: Uint16Array,
    float16: Uint16Array,
    int64: BigInt64Array,
    int32: Int32Array,
    int8: Int8Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  }[dtype];
  return {
    model: serialize(g).model,
    inputs: {
      x: { dtype, dims, data: new Ctor(bytes.buffer) } as HostTensor,
      dep: { dtype: 'float32', dims: [3], data: Float32Array.of(1, 2, 3) },
      dep2: { dtype: 'int64', dims: [2], data: BigInt64Array.of(4n, 5n) },
    },
  };
}

/**
 * One decode step of grouped-query attention on a static cache (generation's decode step), as
 * latent_sft.DecodeAttention (`op` 'fused') or ORT's GroupQueryAttention ('gqa', do_rotary, total length C),
 * on the same seeded inputs: q [B, 1, H·hd], k / v [B, 1, kvH·hd], caches [B, kvH, C, hd] holding earlier
 * keys, seqlens_k = `positions` (row b's new token sits there), RoPE tables of theta 10000 for C positions.
 * Outputs: out, present_key, present_value.
 */
export function decodeAttentionCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  dims: { H: number; kvH: number; hd: number; C: number; positions: readonly number[] },
  seed: number,
  op: 'fused' | 'gqa',
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const { H, kvH, hd, C, positions } = dims;
  const B = positions.length;
  const g = new Graph(`decode_attention_${op}`);
  const r = Rng.fromSeed(seed);
  const q = g.input('q', dtype, [B, 1, H * hd]);
  const k = g.input('k', dtype, [B, 1, kvH * hd]);
  const v = g.input('v', dtype, [B, 1, kvH * hd]);
  const pk = g.input('past_key', dtype, [B, kvH, C, hd]);
  const pv = g.input('past_value', dtype, [B, kvH, C, hd]);
  const sk = g.input('seqlens_k', 'int32', [B]);
  const cos = g.input('cos', dtype, [C, hd / 2]);
  const sin = g.input('sin', dtype, [C, hd / 2]);
  const scale = 1 / Math.sqrt(hd);
  const outs =
    op === 'fused'
      ? g.op('DecodeAttention', [q, k, v, pk, pv, sk, cos, sin], { num_heads: H, kv_num_heads: kvH, scale })
      : g.op('GroupQueryAttention', [q, k, v, pk, pv, sk, g.input('total_sequence_length', 'int32', []), cos, sin], {
          num_heads: H,
          kv_num_heads: kvH,
          do_rotary: 1,
          scale,
        });
  ['out', 'present_key', 'present_value'].forEach((name, i) => g.output(outs[i] as Tensor, name));
  const t = (shape: number[], n: number, scaleBy: number): HostTensor =>
    ({
      dtype,
      dims: shape,
      data: typedFrom(
        dtype,
        draws(n, (_, z) => scaleBy * z, r),
      ) as TypedData,
    }) as HostTensor;
  const angles = (fn: (x: number) => number) =>
    Array.from({ length: C * (hd / 2) }, (_, i) => fn(Math.floor(i / (hd / 2)) * 10000 ** (-(2 * (i % (hd / 2))) / hd)));
  const inputs: Record<string, HostTensor> = {
    q: t([B, 1, H * hd], B * H * hd, 1),
    k: t([B, 1, kvH * hd], B * kvH * hd, 1),
    v: t([B, 1, kvH * hd], B * kvH * hd, 1),
    past_key: t([B, kvH, C, hd], B * kvH * C * hd, 1),
    past_value: t([B, kvH, C, hd], B * kvH * C * hd, 1),
    seqlens_k: { dtype: 'int32', dims: [B], data: Int32Array.from(positions) },
    cos: { dtype, dims: [C, hd / 2], data: typedFrom(dtype, angles(Math.cos)) as TypedData } as HostTensor,
    sin: { dtype, dims: [C, hd / 2], data: typedFrom(dtype, angles(Math.sin)) as TypedData } as HostTensor,
  };
  if (op === 'gqa') inputs['total_sequence_length'] = { dtype: 'int32', dims: [], data: Int32Array.from([C]) };
  return { model: serialize(g).model, inputs };
}

/** FlashAttention's dims: Q [B, G, rep·T, D], K / V [B, G, S, D]. */
export interface FlashAttentionDims {
  B: number;
  G: number;
  rep: number;
  T: number;
  S: number;
  D: number;
}

/**
 * FlashAttention and FlashAttentionGrad on one graph: inputs q [B, G, rep·T, D], k, v [B, G, S, D], dO (dtype)
 * and mask float32 `maskDims` (rank 5, each dim 1 or [B, G, rep, T, S]'s); outputs o, stats (forward) and
 * dq, dk, dv, dsum (the grad op on dO and the forward's o, stats). The mask, in its own index space: keys
 * past t + S − T blocked (causal with S − T earlier keys), the query row t = 1 blocked entirely (or, with T
 * broadcast, the last batch row's), where the mask varies over B, G or rep a per-block pattern of blocked
 * keys, and finite additive values in [−0.5, 0.5] elsewhere; blocked = float32 min (models' MASK_MIN).
 */
export function flashAttentionCase(
  dtype: 'float32' | 'bfloat16' | 'float16',
  dims: FlashAttentionDims,
  maskDims: readonly number[],
  scale: number,
  seed: number,
  opts: { zeros?: boolean } = {},
): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const { B, G, rep, T, S, D } = dims;
  const N = rep * T;
  const g = new Graph('flash_attention_case');
  const r = Rng.fromSeed(seed);
  const q = g.input('q', dtype, [B, G, N, D]);
  const k = g.input('k', dtype, [B, G, S, D]);
  const v = g.input('v', dtype, [B, G, S, D]);
  const m = g.input('mask', 'float32', [...maskDims]);
  const dO = g.input('dO', dtype, [B, G, N, D]);
  const [o, stats] = g.op('FlashAttention', [q, k, v, m], { scale, rep }) as [Tensor, Tensor];
  g.output(o, 'o');
  g.output(stats, 'stats');
  const grads = g.op('FlashAttentionGrad', [dO, q, k, v, m, o, stats], { scale, rep });
  ['dq', 'dk', 'dv', 'dsum'].forEach((name, i) => g.output(grads[i] as Tensor, name));
  const [mB, mG, mR, mT, mS] = maskDims as [number, number, number, number, number];
  const mask = new Float32Array(mB * mG * mR * mT * mS);
  for (let i = 0; i < mask.length; i++) {
    const s = i % mS,
      t = Math.floor(i / mS) % mT,
      rr = Math.floor(i / (mS * mT)) % mR,
      gg = Math.floor(i / (mS * mT * mR)) % mG,
      b = Math.floor(i / (mS * mT * mR * mG));
    const blockedRow = mT > 1 ? t === 1 : mB > 1 && b === mB - 1;
    // zeros: the models' mask (0 where a key is seen; per batch row the last 7·b keys padded) instead of the pattern.
    const pattern = opts.zeros ? mB > 1 && s >= S - 7 * b : (mB > 1 || mG > 1 || mR > 1) && (s + b + 2 * gg + 3 * rr) % 7 === 0;
    const seen = opts.zeros ? 0 : 0.25 * ((3 * s + t + b + gg + rr) % 5) - 0.5;
    mask[i] = blockedRow || (mS > 1 && s > t + S - T) || pattern ? -3.4028234663852886e38 : seen;
  }
  const t = (shape: number[], scaleBy: number): HostTensor =>
    ({
      dtype,
      dims: shape,
      data: typedFrom(
        dtype,
        draws(
          shape.reduce((a, b) => a * b, 1),
          (_, z) => scaleBy * z,
          r,
        ),
      ) as TypedData,
    }) as HostTensor;
  return {
    model: serialize(g).model,
    inputs: {
      q: t([B, G, N, D], 1.5),
      k: t([B, G, S, D], 1.5),
      v: t([B, G, S, D], 1),
      dO: t([B, G, N, D], 1),
      mask: { dtype: 'float32', dims: [...maskDims], data: mask },
    },
  };
}

/**
 * The exact (float64) FlashAttention and FlashAttentionGrad of flashAttentionCase's inputs: o, stats, and
 * dq, dk, dv, dsum with Dsum = Σ dO·O of `o` (the O the grad op reads: the kernel's, rounded to the dtype).
 * The mask's float32 min swamps scale·q·k in float64 as in float32, so a fully blocked row is uniform, as
 * the standard ops' softmax makes it.
 */
export function flashAttentionReference(
  inp: Record<string, HostTensor>,
  dims: FlashAttentionDims,
  scale: number,
  o: HostTensor,
): { o: Float64Array; stats: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array; dsum: Float64Array } {
  const { B, G, rep, T, S, D } = dims;
  const N = rep * T;
  const [q, k, v, dO, oIn] = [inp['q'], inp['k'], inp['v'], inp['dO'], o].map((x) => floatValues(x as HostTensor)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const m = inp['mask'] as HostTensor;
  const md = m.dims as number[];
  const mv = m.data as Float32Array;
  const strides = md.map((_, i) => md.slice(i + 1).reduce((a, b) => a * b, 1));
  const mAt = (idx: number[]) => mv[idx.reduce((a, x, i) => a + (md[i] === 1 ? 0 : x * (strides[i] as number)), 0)] as number;
  const out = {
    o: new Float64Array(B * G * N * D),
    stats: new Float64Array(B * G * N * 2),
    dq: new Float64Array(B * G * N * D),
    dk: new Float64Array(B * G * S * D),
    dv: new Float64Array(B * G * S * D),
    dsum: new Float64Array(B * G * N),
  };
  const z = new Float64Array(S);
  const p = new Float64Array(S);
  for (let bg = 0; bg < B * G; bg++) {
    const [b, gg] = [Math.floor(bg / G), bg % G];
    const kb = bg * S * D;
    for (let i = 0; i < N; i++) {
      const row = bg * N + i;
      const qr = row * D;
      let mx = -Infinity;
      for (let s = 0; s < S; s++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += (q[qr + c] as number) * (k[kb + s * D + c] as number);
        z[s] = scale * dot + mAt([b, gg, Math.floor(i / T), i % T, s]);
        mx = Math.max(mx, z[s] as number);
      }
      let l = 0;
      for (let s = 0; s < S; s++) l += Math.exp((z[s] as number) - mx);
      out.stats[2 * row] = mx;
      out.stats[2 * row + 1] = l;
      let dsum = 0;
      for (let c = 0; c < D; c++) dsum += (dO[qr + c] as number) * (oIn[qr + c] as number);
      out.dsum[row] = dsum;
      for (let s = 0; s < S; s++) {
        p[s] = Math.exp((z[s] as number) - mx) / l;
        let dp = 0;
        for (let c = 0; c < D; c++) {
          out.o[qr + c] = (out.o[qr + c] as number) + (p[s] as number) * (v[kb + s * D + c] as number);
          dp += (dO[qr + c] as number) * (v[kb + s * D + c] as number);
        }
        const ds = (p[s] as number) * (dp - dsum);
        for (let c = 0; c < D; c++) {
          out.dv[kb + s * D + c] = (out.dv[kb + s * D + c] as number) + (p[s] as number) * (dO[qr + c] as number);
          out.dk[kb + s * D + c] = (out.dk[kb + s * D + c] as number) + scale * ds * (q[qr + c] as number);
          out.dq[qr + c] = (out.dq[qr + c] as number) + scale * ds * (k[kb + s * D + c] as number);
        }
      }
    }
  }
  return out;
}

/**
 * latent_sft.VocabTopK beside ONNX TopK on one graph: x [B, V] float32 logits (`levels` > 0: rounded to a grid
 * of that many steps per unit, so equal values recur; row 0 also holds −∞ and one +∞-free run of equal
 * maxima), inv_temperature [1] = 1/0.7. Outputs values, indices, lse, cand, part (VocabTopK) and
 * ref_values, ref_indices (TopK, k).
 */
export function vocabTopKCase(B: number, V: number, k: number, levels: number, seed: number): { model: Uint8Array; inputs: Record<string, HostTensor> } {
  const g = new Graph('vocab_topk_case');
  const x = g.input('x', 'float32', [B, V]);
  const t = g.input('inv_temperature', 'float32', [1]);
  const names = ['values', 'indices', 'lse', 'cand', 'part'];
  (g.op('VocabTopK', [x, t], { k }) as Tensor[]).forEach((o, i) => g.output(o, names[i] as string));
  const [rv, ri] = g.op('TopK', [x, g.ints([k])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
  g.output(rv, 'ref_values');
  g.output(ri, 'ref_indices');
  const r = Rng.fromSeed(seed);
  const xs = Float32Array.from(draws(B * V, (_, z) => (levels > 0 ? Math.round(3 * z * levels) / levels : 3 * z), r));
  // Row 0: a few −∞ and the row's maximum repeated at indices spread over chunks (ties across chunks).
  for (let i = 0; i < Math.min(V, 5); i++) xs[i * 7] = Number.NEGATIVE_INFINITY;
  for (const i of [V - 1, 3, Math.floor(V / 2), 8191 % V]) xs[i] = 20;
  return {
    model: serialize(g).model,
    inputs: { x: { dtype: 'float32', dims: [B, V], data: xs }, inv_temperature: { dtype: 'float32', dims: [1], data: Float32Array.of(1 / 0.7) } },
  };
}

/** The float64 log Σ_v e^(x_v·invT) of each row of vocabTopKCase's x (invT rounded to float32 as the kernel reads it). */
export function vocabLseReference(inp: Record<string, HostTensor>): Float64Array {
  const x = inp['x'] as HostTensor;
  const [B, V] = x.dims as [number, number];
  const t = Math.fround(1 / 0.7);
  const xs = x.data as Float32Array;
  return Float64Array.from({ length: B }, (_, b) => {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < V; i++) m = Math.max(m, Math.fround((xs[b * V + i] as number) * t));
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(Math.fround((xs[b * V + i] as number) * t) - m);
    return m + Math.log(s);
  });
}
