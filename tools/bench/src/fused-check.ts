// GPU check of the fused kernels (domain latent_sft, compiled with NVRTC at run time):
// every case of @latent-sft/train/testing (packages/train/src/testing.ts) on CUDA against the CPU kernels (which the unit
// tests hold to the exact float32 reference) and the reference itself — DecodeAttention also against ORT's CUDA
// GroupQueryAttention — AdamW bit for bit, SumSquares
// within 1e-6 relative (float64 block sums in another order), AdamW in place and its non-finite-coef skip,
// AdamWMulti bit for bit AdamW per tensor, SeededDropout reading its tables in place, HashWords bit for bit, AdamW
// of 16-bit parameters (bit for bit), Rope both ways (bit for bit), MaskedSoftmax, RMSNorm and SwiGLU (+ Grad) and the chunked cross-entropy's
// CEChunkStats / CEChunkGrad within a few ulps of their dtype, After bit for bit — then timings: AdamW over 2^28
// elements, MaskedSoftmax, RMSNorm, SwiGLU and the LM-head cross-entropy (chunked vs standard ops) at the
// benchmark's shapes (the bytes each moves over the time, against the GPU's bandwidth).
// Prints "CHECK {...}" lines; exits 1 on any mismatch.
// Usage: node fused-check.mjs [--device-id 0] [--dry] [--timing-only] [--only NAME,...]
import { parseArgs } from 'node:util';
import { Graph, type Tensor, crossEntropy, fuseLinearCrossEntropy, grad, lowerLinearLogProb, serialize, typedFrom } from '@latent-sft/graph';
import { DeviceSession, type HostTensor, fusedKernelsStatus } from '@latent-sft/runtime';
import {
  AFTER_DTYPES,
  adamwCopyCase,
  ceChunkCase,
  ceChunkReference,
  decodeAttentionCase,
  afterCase,
  flashAttentionCase,
  adamwGraph,
  adamwInputs,
  adamwMultiCase,
  castMultiCase,
  ADAMW_MULTI_TENSORS,
  adamwReference,
  floatValues,
  maskedSoftmaxCase,
  rmsNormCase,
  ropeCase,
  ropeReference,
  runAdamWInPlace,
  runOnce,
  sumSquaresCase,
  sumSquaresReference,
  seededDropoutCase,
  hashWordsCase,
  swigluCase,
  swigluReference,
  vocabLseReference,
  vocabTopKCase,
  withCoef,
  worstRel,
} from '@latent-sft/train/testing';

const { values } = parseArgs({
  options: {
    'device-id': { type: 'string', default: '0' },
    dry: { type: 'boolean', default: false },
    'timing-only': { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
  },
});
// --only a,b: just these comparisons and timings (names: CHECKS and TIMINGS below), e.g. a short lease's
// --only decode-attention,dropout,ce-chunk,kernel-time.
const CHECKS = [
  'adamw',
  'adamw16',
  'adamw-copy',
  'adamw-inplace',
  'adamw-multi',
  'sumsq',
  'softmax',
  'rmsnorm',
  'swiglu',
  'rope',
  'dropout',
  'ce-chunk',
  'after',
  'decode-attention',
  'vocab-topk',
  'flash-attention',
];
const TIMINGS = ['kernel-time', 'ce-time', 'adamw-time', 'flash-time'];
const only = values.only === '' ? [] : values.only.split(',');
for (const o of only)
  if (![...CHECKS, ...TIMINGS].includes(o)) {
    console.error(`fused-check: --only: unknown name '${o}' (known: ${[...CHECKS, ...TIMINGS].join(', ')})`);
    process.exit(2);
  }
const picked = (name: string) => only.length === 0 || only.includes(name);
const check = (name: string) => !values['timing-only'] && picked(name);
const timing = (name: string) => !values.dry && picked(name);
// --dry: every comparison with the CPU standing in for CUDA and no timings (checks this script itself).
const cuda = values.dry ? ({ kind: 'cpu' } as const) : ({ kind: 'cuda', deviceId: Number(values['device-id']) } as const);
const cpu = { kind: 'cpu' } as const;
const emit = (o: Record<string, unknown>) => process.stdout.write(`CHECK ${JSON.stringify(o)}\n`);
let failed = 0;

const status = fusedKernelsStatus(cuda);
emit({ check: 'kernels', ok: status === '', status });
if (status !== '') process.exit(1);

/**
 * Elements of two same-dtype tensors whose bits differ, NaN against NaN counted as equal (`nanBoth`), with the
 * first difference as hex words.
 */
function sameBitsOrNaN(a: HostTensor, b: HostTensor): { differ: number; nanBoth: number; first: string | null } {
  const bits = (t: HostTensor) =>
    t.dtype === 'float32' ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length) : new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length);
  const [ba, bb] = [bits(a), bits(b)];
  const [va, vb] = [floatValues(a), floatValues(b)];
  let differ = 0;
  let nanBoth = 0;
  let first: string | null = null;
  for (let i = 0; i < ba.length; i++) {
    if (ba[i] === bb[i]) continue;
    if (Number.isNaN(va[i]) && Number.isNaN(vb[i])) {
      nanBoth++;
      continue;
    }
    differ++;
    first ??= `${i}: ${(ba[i] as number).toString(16)} vs ${(bb[i] as number).toString(16)}`;
  }
  return { differ, nanBoth, first };
}

/** The dtypes the kernel checks cover, each with its bound unit: one ulp for the 16-bit ones, `f32` for float32. */
const dtypeGrid = (f32: number) =>
  [
    ['float32', f32],
    ['bfloat16', 2 ** -7],
    ['float16', 2 ** -10],
  ] as const;

/** Outputs of one case on the CUDA kernels and on their CPU twins. */
async function onBoth(c: { model: Uint8Array; inputs: Record<string, HostTensor> }): Promise<[Record<string, HostTensor>, Record<string, HostTensor>]> {
  return [await runOnce(c.model, c.inputs, cuda), await runOnce(c.model, c.inputs, cpu)];
}

/**
 * Worst CUDA-vs-CPU relative difference of each output: elementwise (|a − b| / (|b| + 1e-30), so a
 * nonzero where the CPU kernel has an exact zero fails) for `elementwise`, and relative to the case's
 * largest |CPU value| for `byMax` (outputs whose terms cancel).
 */
function worstRelPerOutput(
  gpu: Record<string, HostTensor>,
  host: Record<string, HostTensor>,
  elementwise: readonly string[],
  byMax: readonly string[],
): Record<string, number> {
  const worst: Record<string, number> = {};
  for (const k of [...elementwise, ...byMax]) {
    const [a, b] = [floatValues(gpu[k] as HostTensor), floatValues(host[k] as HostTensor)];
    const norm = byMax.includes(k) ? b.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0) : 0;
    let w = 0;
    for (let i = 0; i < a.length; i++)
      w = Math.max(w, Math.abs((a[i] as number) - (b[i] as number)) / (byMax.includes(k) ? norm : Math.abs(b[i] as number) + 1e-30));
    worst[k] = w;
  }
  return worst;
}

/** Elements that differ by Object.is (−0 ≠ 0, NaN = NaN; int64 by value); a length mismatch counts as every element. */
function mismatches(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  return a.length === b.length ? bad : Math.max(a.length, b.length);
}

if (check('adamw'))
  for (const gdt of ['float32', 'bfloat16', 'float16'] as const) {
    for (const n of [1003, (1 << 20) + 5]) {
      const inp = adamwInputs(n, gdt, 11);
      const model = adamwGraph(n, gdt);
      const [gpu, host] = [await runOnce(model, inp, cuda), await runOnce(model, inp, cpu)];
      const ref = adamwReference(inp);
      const bad = ['p', 'm', 'v'].map((k) => mismatches(gpu[`${k}_new`]!.data as Float32Array, host[`${k}_new`]!.data as Float32Array));
      const badRef = mismatches(gpu['p_new']!.data as Float32Array, ref.p);
      const ok = bad.every((x) => x === 0) && badRef === 0;
      if (!ok) failed++;
      emit({ check: 'adamw', grad: gdt, n, ok, mismatches_vs_cpu: { p: bad[0], m: bad[1], v: bad[2] }, mismatches_vs_reference: badRef });
    }
  }

// AdamW of 16-bit parameters (precision.params: bf16 p with bf16 moments, f16 p with f32 moments): CUDA bit for
// bit the CPU kernel and the reference (float32 math, each result rounded once), separate outputs and in place,
// on the vector path with a tail and on the scalar path.
if (check('adamw16'))
  for (const pdt of ['bfloat16', 'float16'] as const) {
    for (const gdt of ['float32', pdt] as const) {
      for (const n of [1003, (1 << 20) + 5]) {
        const inp = adamwInputs(n, gdt, 14, pdt);
        const model = adamwGraph(n, gdt, pdt);
        const [gpu, host] = [await runOnce(model, inp, cuda), await runOnce(model, inp, cpu)];
        const ref = adamwReference(inp);
        const wide = (t: HostTensor) => Float32Array.from(floatValues(t));
        const bad = ['p', 'm', 'v'].map((k) => mismatches(wide(gpu[`${k}_new`]!), wide(host[`${k}_new`]!)));
        const badRef = ['p', 'm', 'v'].map((k) => mismatches(wide(gpu[`${k}_new`]!), ref[k as 'p' | 'm' | 'v']));
        const inPlace = await runAdamWInPlace(inp, gdt, cuda);
        const badInPlace = ['p', 'm', 'v'].map((k) => mismatches(inPlace[k as 'p' | 'm' | 'v'], ref[k as 'p' | 'm' | 'v']));
        const ok = [...bad, ...badRef, ...badInPlace].every((x) => x === 0);
        if (!ok) failed++;
        emit({
          check: 'adamw-params16',
          params: pdt,
          grad: gdt,
          n,
          ok,
          mismatches_vs_cpu: bad,
          mismatches_vs_reference: badRef,
          in_place_vs_reference: badInPlace,
        });
      }
    }
  }

// AdamWCopy: p', m', v' bit for bit AdamW's, and the 16-bit copy bit for bit CUDA's Cast(p') and the CPU kernel's.
if (check('adamw-copy'))
  for (const to of ['bfloat16', 'float16'] as const) {
    for (const n of [1003, (1 << 20) + 5]) {
      const c = adamwCopyCase(n, to, 12);
      const [gpu, host] = await onBoth(c);
      const bits = (t: HostTensor) => t.data as ArrayLike<number>;
      const bad = {
        vs_adamw: ['p', 'm', 'v'].reduce((acc, k) => acc + mismatches(bits(gpu[`${k}c`]!), bits(gpu[`${k}a`]!)), 0),
        copy_vs_cast: mismatches(bits(gpu['copy']!), bits(gpu['cast']!)),
        copy_vs_cpu: mismatches(bits(gpu['copy']!), bits(host['copy']!)),
        p_vs_cpu: mismatches(bits(gpu['pc']!), bits(host['pc']!)),
      };
      const ok = Object.values(bad).every((x) => x === 0);
      if (!ok) failed++;
      emit({ check: 'adamw-copy', to, n, ok, mismatches: bad });
    }
  }

// AdamWMulti (the Trainer's default with the fused optimizer): each tensor's p', m', v' bit for bit the single
// AdamW's on the same device, and CUDA's bit for bit the CPU's; mixed sizes (vector path, tails, 7 elements)
// and dtypes (bf16 / f32 / f16 gradients, f32 masters and bf16 parameters); coef finite and NaN (the skip).
if (check('adamw-multi'))
  for (const coef of [0.7, Number.NaN]) {
    const [gpu, host] = await onBoth(adamwMultiCase(21, coef));
    const bits = (t: HostTensor) => t.data as ArrayLike<number>;
    let [vsSingle, vsCpu] = [0, 0];
    ADAMW_MULTI_TENSORS.forEach((_, i) => {
      for (const k of ['p', 'm', 'v']) {
        vsSingle += mismatches(bits(gpu[`multi_${k}_${i}`]!), bits(gpu[`single_${k}_${i}`]!));
        vsCpu += mismatches(bits(gpu[`multi_${k}_${i}`]!), bits(host[`multi_${k}_${i}`]!));
      }
    });
    const ok = vsSingle === 0 && vsCpu === 0;
    if (!ok) failed++;
    emit({ check: 'adamw-multi', tensors: ADAMW_MULTI_TENSORS.length, coef: String(coef), ok, mismatches: { vs_single: vsSingle, vs_cpu: vsCpu } });
  }

// CastMulti (the masters' casts on CUDA with FusedParts.multiTensor): bit for bit CUDA's Cast and the CPU kernel
// (NaN: NaN on both sides).
if (check('adamw-multi'))
  for (const to of ['bfloat16', 'float16'] as const) {
    const [gpu, host] = await onBoth(castMultiCase(to, 22));
    let [vsCast, vsCpu] = [0, 0];
    for (let i = 0; i < 3; i++) {
      vsCast += sameBitsOrNaN(gpu[`multi_${i}`] as HostTensor, gpu[`cast_${i}`] as HostTensor).differ;
      vsCpu += sameBitsOrNaN(gpu[`multi_${i}`] as HostTensor, host[`multi_${i}`] as HostTensor).differ;
    }
    const ok = vsCast === 0 && vsCpu === 0;
    if (!ok) failed++;
    emit({ check: 'cast-multi', to, ok, mismatches: { vs_cast: vsCast, vs_cpu: vsCpu } });
  }

// AdamW in place (p', m', v' bound to the tensors p, m, v are read from, as the Trainer's in-place state):
// CUDA bit for bit the CPU kernel and the reference, on the vector path with a tail (n % 4 = 1) and on the
// scalar path; a non-finite coef (the step graph's skip signal) leaves p, m, v bit for bit as they were,
// in place (AdamW) and into separate outputs (AdamWCopy, whose copy is then Cast(p)).
if (check('adamw-inplace'))
  for (const gdt of ['float32', 'bfloat16'] as const) {
    for (const n of [1003, (1 << 20) + 5]) {
      const inp = adamwInputs(n, gdt, 13);
      const [gpu, host] = [await runAdamWInPlace(inp, gdt, cuda), await runAdamWInPlace(inp, gdt, cpu)];
      const ref = adamwReference(inp);
      const bad = Object.fromEntries((['p', 'm', 'v'] as const).map((k) => [k, mismatches(gpu[k], host[k]) + mismatches(gpu[k], ref[k])]));
      const ok = Object.values(bad).every((x) => x === 0);
      if (!ok) failed++;
      emit({ check: 'adamw-in-place', grad: gdt, n, ok, mismatches_vs_cpu_and_reference: bad });
      for (const coef of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const skipIn = withCoef(inp, coef);
        const kept = await runAdamWInPlace(skipIn, gdt, cuda);
        const changed = (['p', 'm', 'v'] as const).reduce((acc, k) => acc + mismatches(kept[k], skipIn[k]!.data as Float32Array), 0);
        const c = adamwCopyCase(n, gdt === 'float32' ? 'bfloat16' : gdt, 14);
        const copyIn = withCoef(c.inputs, coef);
        const out = (await runOnce(c.model, copyIn, cuda)) as Record<string, HostTensor>;
        const copyChanged = (['p', 'm', 'v'] as const).reduce(
          (acc, k) => acc + mismatches(out[`${k}c`]!.data as Float32Array, copyIn[k]!.data as Float32Array),
          0,
        );
        const copyVsCast = mismatches(out['copy']!.data as ArrayLike<number>, out['cast']!.data as ArrayLike<number>);
        const skipOk = changed === 0 && copyChanged === 0 && copyVsCast === 0;
        if (!skipOk) failed++;
        emit({
          check: 'adamw-skip',
          grad: gdt,
          n,
          coef: String(coef),
          ok: skipOk,
          changed_in_place: changed,
          changed_adamw_copy: copyChanged,
          copy_vs_cast: copyVsCast,
        });
      }
    }
  }

if (check('sumsq'))
  for (const specs of [
    [
      { dtype: 'float32' as const, dims: [37] },
      { dtype: 'bfloat16' as const, dims: [64, 5] },
      { dtype: 'float16' as const, dims: [3] },
    ],
    [
      { dtype: 'bfloat16' as const, dims: [4096, 2048] },
      { dtype: 'float32' as const, dims: [2048] },
      { dtype: 'bfloat16' as const, dims: [1001] },
    ],
  ]) {
    const c = sumSquaresCase(specs, 3);
    const gpu = (await runOnce(c.model, c.inputs, cuda))['y']!.data[0] as number;
    const host = (await runOnce(c.model, c.inputs, cpu))['y']!.data[0] as number;
    const ref = sumSquaresReference(c.inputs);
    const rel = Math.abs(gpu - ref) / ref;
    const ok = rel <= 1e-6;
    if (!ok) failed++;
    emit({ check: 'sumsquares', inputs: specs.map((s) => `${s.dtype}[${s.dims.join(',')}]`), ok, gpu, cpu: host, reference: ref, rel_err: rel });
  }

// MaskedSoftmax (+ Grad): CUDA vs CPU kernels. Both compute in float32 (expf vs std::exp, sums in another
// order), so values agree to ~1e-6 relative before the final rounding; a 16-bit result near a rounding
// boundary may differ by one ulp of its dtype.
if (check('softmax'))
  for (const [dtype, ulp] of dtypeGrid(1e-5)) {
    for (const [dims, maskDims, scale] of [
      [[2, 3, 5, 7], [2, 1, 5, 7], 1],
      [[2, 2, 4, 64, 512], [2, 1, 1, 64, 512], 0.125],
    ] as const) {
      const c = maskedSoftmaxCase(dtype, [...dims], [...maskDims], scale, 9);
      const [gpu, host] = await onBoth(c);
      // y, stats: elementwise relative; dx (y·(dy − t) cancels): relative to the largest |dx| of the case.
      const worst = worstRelPerOutput(gpu, host, ['y', 'stats'], ['dx']);
      const ok = worst['y']! <= 2 * ulp && worst['stats']! <= 1e-5 && worst['dx']! <= 4 * ulp;
      if (!ok) failed++;
      emit({ check: 'masked-softmax', dtype, dims, scale, ok, worst_rel: worst });
    }
  }

// RMSNorm (+ Grad): CUDA vs CPU kernels, both float32 inside (sums in another order). y: one ulp of its
// dtype elementwise; r: 1e-5 relative; dx and dw (dw summed over row blocks of another size): relative
// to the largest entry of the case.
if (check('rmsnorm'))
  for (const [dtype, ulp] of dtypeGrid(1e-5)) {
    for (const dims of [
      [3, 15, 13],
      [8, 512, 2048],
    ]) {
      const c = rmsNormCase(dtype, dims, 5);
      const [gpu, host] = await onBoth(c);
      const worst = worstRelPerOutput(gpu, host, ['y', 'r'], ['dx', 'dw']);
      const ok = worst['y']! <= 2 * ulp && worst['r']! <= 1e-5 && worst['dx']! <= 4 * ulp && worst['dw']! <= 4 * ulp;
      if (!ok) failed++;
      emit({ check: 'rmsnorm', dtype, dims, ok, worst_rel: worst });
    }
  }

// SwiGLU (+ Grad): CUDA vs CPU kernels and vs the float32 reference. Both sides run the same float32
// formula (fused_shared.h) but CUDA's expf (≤ 2 ulps) and glibc's (≤ 1) may differ by a few float32 ulps,
// which can move the rounded SiLU and then the 16-bit result across a rounding boundary: y and dUp within
// two ulps of the dtype elementwise (the MaskedSoftmax/RMSNorm bounds), dGate (its factor crosses 0 near
// g = −1.28) within four, relative to the case's largest |dGate|. The larger shape is one row of the benchmark's
// MLP [1, 512, 8192] (its full 8 rows only cost the lease minutes in the CPU's side and the comparison); the odd
// one has a tail that is not a multiple of 4 (the scalar path).
if (check('swiglu'))
  for (const [dtype, ulp] of dtypeGrid(1e-6)) {
    for (const dims of [
      [3, 7, 4099],
      [1, 512, 8192],
    ]) {
      const c = swigluCase(dtype, dims, 6);
      const [gpu, host] = await onBoth(c);
      const ref = dims[0] === 3 ? swigluReference(c.inputs) : null;
      const worst: Record<string, number> = {};
      for (const k of ['y', 'dgate', 'dup'] as const) {
        const a = floatValues(gpu[k] as HostTensor);
        worst[k] = worstRel(a, floatValues(host[k] as HostTensor), k === 'dgate');
        if (ref !== null) worst[`${k}_vs_reference`] = worstRel(a, ref[k], k === 'dgate');
      }
      // SwiGLUPacked on the concatenated [gate, up] (the generation step's form): bit for bit SwiGLU's y.
      const packedDiffer = sameBitsOrNaN(gpu['y_packed'] as HostTensor, gpu['y'] as HostTensor).differ;
      const ok = packedDiffer === 0 && Object.entries(worst).every(([k, w]) => w <= (k.startsWith('dgate') ? 4 : 2) * ulp);
      if (!ok) failed++;
      emit({ check: 'swiglu', dtype, dims, ok, worst_rel: worst, packed_differ: packedDiffer });
    }
  }

// Rope, forward (transpose 0) and backward (transpose 1): CUDA bit for bit the CPU kernel. Both run ropePair
// (fused_shared.h): two float32 products and their float32 sum, no FMA contraction on either side (the addon's
// -ffp-contract=off, NVRTC's --fmad=false), then the same round to nearest even into the dtype (f2bf / cvt.rn.f16.f32
// as floatToBf16 / floatToF16), so not one ulp may differ (the CPU kernel is held to the float64 reference by
// fused-rope.test.ts); and each within one ulp of its dtype (1e-6 for float32) of that reference, relative to the
// case's largest value. Shapes: the 7B phase-2 q and k [8, 166, 28 | 4, 128] (4 pairs per step), odd ones on the
// scalar path (hd/2 = 3, 5, 18) and on the vector one (hd/2 = 12), and the smallest head.
if (check('rope'))
  for (const [dtype, ulp] of dtypeGrid(1e-6)) {
    for (const dims of [
      [8, 166, 28, 128],
      [8, 166, 4, 128],
      [3, 5, 7, 6],
      [2, 9, 3, 10],
      [1, 13, 5, 36],
      [3, 7, 5, 24],
      [1, 1, 1, 2],
    ] as const) {
      const c = ropeCase(dtype, dims, 9);
      const [gpu, host] = await onBoth(c);
      const ref = ropeReference(c.inputs);
      const differ: Record<string, number> = {};
      const worst: Record<string, number> = {};
      let first: string | null = null;
      for (const k of ['y', 'dx'] as const) {
        const cmp = sameBitsOrNaN(gpu[k] as HostTensor, host[k] as HostTensor);
        differ[k] = cmp.differ + cmp.nanBoth;
        first ??= cmp.first === null ? null : `${k} ${cmp.first}`;
        worst[`${k}_vs_reference`] = worstRel(floatValues(gpu[k] as HostTensor), ref[k], true);
      }
      const ok = Object.values(differ).every((d) => d === 0) && Object.values(worst).every((w) => w <= ulp);
      if (!ok) failed++;
      emit({ check: 'rope', dtype, dims, ok, differ, first, worst_rel: worst });
    }
  }

// SeededDropout: CUDA vs CPU kernels, bit for bit (the same int32 test and one float32 product rounded to the
// dtype on both) except NaNs, which only have to be NaN on both: a GPU writes the canonical NaN (0x7fffffff)
// for x·0 with x = ±∞ or NaN, where x86 writes its default NaN (0xffc00000) or keeps the input's payload
// (session 8's lease failed every case on exactly that). Shapes: an odd one and 512 rows of a LoRA input of
// the benchmark [·, 8192].
if (check('dropout'))
  for (const [dtype] of dtypeGrid(0)) {
    for (const [N, I] of [
      [37, 1001],
      [512, 8192],
    ] as const) {
      const [gpu, host] = await onBoth(seededDropoutCase(dtype, N, I, 8));
      const cmp = sameBitsOrNaN(gpu['y'] as HostTensor, host['y'] as HostTensor);
      // The tables read in place (strided rows, a row offset into the wider column table): on each side
      // bit for bit its own y.
      const tab = sameBitsOrNaN(gpu['y_tables'] as HostTensor, gpu['y'] as HostTensor);
      const tabHost = sameBitsOrNaN(host['y_tables'] as HostTensor, host['y'] as HostTensor);
      // A, B, C, D from four different tables (other widths, row lengths and indices).
      const split = sameBitsOrNaN(gpu['y_split'] as HostTensor, gpu['y'] as HostTensor);
      const splitHost = sameBitsOrNaN(host['y_split'] as HostTensor, host['y'] as HostTensor);
      const ok = cmp.differ === 0 && tab.differ === 0 && tabHost.differ === 0 && split.differ === 0 && splitHost.differ === 0;
      if (!ok) failed++;
      emit({
        check: 'seeded-dropout',
        dtype,
        dims: [N, I],
        ok,
        differ: cmp.differ,
        nan_both: cmp.nanBoth,
        first: cmp.first,
        tables_differ_cuda: tab.differ,
        tables_differ_cpu: tabHost.differ,
        split_differ_cuda: split.differ,
        split_differ_cpu: splitHost.differ,
      });
    }
  }

// HashWords (the dropout tables' words): CUDA vs CPU kernels bit for bit, and each against the standard
// int64 ops (hashWords) on its own device. Shapes: an odd one with seeds 0, 2³¹ − 1 and 2⁶², and the 7B column
// table [2·196, 18,944] with 2⁶².
if (check('dropout'))
  for (const [rows, width, seeds] of [
    [3, 1001, [0n, 2147483647n, 2n ** 62n]],
    [392, 18944, [2n ** 62n]],
  ] as const)
    for (const seed of seeds) {
      const [gpu, host] = await onBoth(hashWordsCase(rows * width, width, seed, 1401181151, 1908133265));
      const differ = (a: HostTensor, b: HostTensor) => (a.data as Int32Array).reduce((n, v, i) => n + (v === (b.data as Int32Array)[i] ? 0 : 1), 0);
      const [d, dg, dc] = [
        differ(gpu['got'] as HostTensor, host['got'] as HostTensor),
        differ(gpu['got'] as HostTensor, gpu['want'] as HostTensor),
        differ(host['got'] as HostTensor, host['want'] as HostTensor),
      ];
      const ok = d === 0 && dg === 0 && dc === 0;
      if (!ok) failed++;
      emit({ check: 'hash-words', dims: [rows, width], seed: seed.toString(), ok, differ: d, differ_ops_cuda: dg, differ_ops_cpu: dc });
    }

// CEChunkStats / CEChunkGrad: CUDA vs CPU kernels and vs the float64 reference. The row max and the target
// logit are stored values (exact); Σ e^(z − max) is summed in another order (a block per row on CUDA, a
// float64 sum per row on the CPU since session 8 — its float32 sum of 8,192 terms drifted past 1e-5 and failed
// the benchmark chunk in that session's lease): within 1e-5 relative of both; dz = dlogp·(onehot − e^(z − lse)) by the same float32 formula (fused_shared.h) with
// CUDA's and glibc's expf, within two ulps of the dtype (of the largest |dz|). Shapes: an odd chunk (the scalar path)
// and 512 rows of the benchmark's chunk [·, 8192 columns]. In float32 the bound is set by z − lse, rounded to
// float32 before e^x (|z − lse| up to ~30: ~2e-6 relative against the float64 reference).
if (check('ce-chunk'))
  for (const [dtype, ulp] of dtypeGrid(5e-6)) {
    for (const [R, C] of [
      [37, 1001],
      [512, 8192],
    ] as const) {
      const [offset, vocab] = [3000, 3000 + C + 500];
      const c = ceChunkCase(dtype, R, C, offset, vocab, 7);
      const [gpu, host] = await onBoth(c);
      const ref = ceChunkReference(c.inputs, offset, vocab);
      const [sg, sh] = [floatValues(gpu['stats'] as HostTensor), floatValues(host['stats'] as HostTensor)];
      const same = (a: number, b: number) => (Number.isNaN(b) ? Number.isNaN(a) : a === b);
      const rel = (a: number, b: number) => Math.abs(a / b - 1);
      // Per row: the max and the target logit exact against the CPU kernel; Σ e^(z − max) against the CPU
      // kernel and the float64 reference (NaN where either is NaN counts as a miss).
      const stats = { max_differ: 0, target_differ: 0, sum_rel_cpu: 0, sum_rel_reference: 0, cpu_sum_rel_reference: 0 };
      for (let i = 0; i < R; i++) {
        if (!same(sg[3 * i] as number, sh[3 * i] as number)) stats.max_differ++;
        if (!same(sg[3 * i + 2] as number, sh[3 * i + 2] as number)) stats.target_differ++;
        const [g1, h1, r1] = [sg[3 * i + 1] as number, sh[3 * i + 1] as number, ref.stats[3 * i + 1] as number];
        stats.sum_rel_cpu = Math.max(stats.sum_rel_cpu, Number.isNaN(rel(g1, h1)) ? Number.POSITIVE_INFINITY : rel(g1, h1));
        stats.sum_rel_reference = Math.max(stats.sum_rel_reference, Number.isNaN(rel(g1, r1)) ? Number.POSITIVE_INFINITY : rel(g1, r1));
        stats.cpu_sum_rel_reference = Math.max(stats.cpu_sum_rel_reference, Number.isNaN(rel(h1, r1)) ? Number.POSITIVE_INFINITY : rel(h1, r1));
      }
      const statsOk = stats.max_differ === 0 && stats.target_differ === 0 && stats.sum_rel_cpu <= 1e-5 && stats.sum_rel_reference <= 1e-5;
      const dz = floatValues(gpu['dzT'] as HostTensor);
      // Relative to the largest |dz|: e^(z − lse) underflows the 16-bit dtypes for the far tail of a row.
      const worst: Record<string, number> = {
        dz: worstRel(dz, floatValues(host['dzT'] as HostTensor), true),
        dz_vs_reference: worstRel(dz, ref.dzT, true),
      };
      const ok = statsOk && Object.values(worst).every((w) => w <= 2 * ulp);
      if (!ok) failed++;
      emit({ check: 'ce-chunk', dtype, dims: [R, C], ok, stats_ok: statsOk, stats, worst_rel: worst });
    }
  }

// After (the recomputation's ordering copy, cuMemcpyDtoDAsync on CUDA): y is x bit for bit on CUDA, for
// every dtype, an odd size, an empty and a scalar x.
if (check('after'))
  for (const dtype of AFTER_DTYPES) {
    for (const dims of [[3, 5, 7], [0, 4], [], [8, 512, 2048]]) {
      const c = afterCase(dtype, dims, 12);
      const [gpu, host] = await onBoth(c);
      const bytes = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      const x = c.inputs['x'] as HostTensor;
      const ok = bytes(gpu['y'] as HostTensor).equals(bytes(x)) && bytes(host['y'] as HostTensor).equals(bytes(x));
      if (!ok) failed++;
      emit({ check: 'after', dtype, dims, ok });
    }
  }

// VocabTopK: CUDA vs CPU, values / indices / each chunk's keys bit for bit (the keys are distinct, so the
// selection is exact), the values also against ORT's CUDA TopK and the indices against ORT's CPU TopK; lse and each chunk's (max, sum) within float32 rounding of
// a differently ordered sum, lse also against float64. Shapes: the decode step's [64, 128256] at k 64 and 16,
// Qwen2's vocabulary, and a short row with ties.
if (check('vocab-topk'))
  for (const [B, V, k, levels] of [
    [64, 128256, 64, 0],
    [64, 128256, 16, 4],
    [4, 152064, 10, 0],
    [3, 5000, 33, 1],
  ] as const) {
    const c = vocabTopKCase(B, V, k, levels, V + k);
    const [gpu, host] = await onBoth(c);
    const exact = (a: string, b: string, dg = gpu, dh = host) =>
      mismatches((dg[a] as HostTensor).data as ArrayLike<number | bigint>, (dh[b] as HostTensor).data as ArrayLike<number | bigint>);
    const bad = {
      values: exact('values', 'values'),
      indices: exact('indices', 'indices'),
      cand: exact('cand', 'cand'),
      values_vs_ort_cuda_topk: exact('values', 'ref_values', gpu, gpu),
      indices_vs_ort_cpu_topk: exact('indices', 'ref_indices', gpu, host),
    };
    // Not a failure: ORT's CUDA TopK (radix select) orders equal values its own way, not lower index first as
    // the ONNX spec and ORT's CPU TopK do (session 9: 605 of 1,024 indices at k 16 with many ties).
    const ortCudaTieOrder = exact('ref_indices', 'ref_indices', gpu, host);
    const [lg, lh] = [floatValues(gpu['lse'] as HostTensor), floatValues(host['lse'] as HostTensor)];
    const ref = vocabLseReference(c.inputs);
    let lseVsCpu = 0;
    let lseVsRef = 0;
    for (let i = 0; i < B; i++) {
      lseVsCpu = Math.max(lseVsCpu, Math.abs((lg[i] as number) - (lh[i] as number)));
      lseVsRef = Math.max(lseVsRef, Math.abs((lg[i] as number) - (ref[i] as number)));
    }
    const [pg, ph] = [floatValues(gpu['part'] as HostTensor), floatValues(host['part'] as HostTensor)];
    let maxDiffer = 0;
    let sumRel = 0;
    for (let i = 0; i < pg.length; i += 2) {
      if (pg[i] !== ph[i]) maxDiffer++; // (=== : a chunk max of 0 may be −0 on one side)
      sumRel = Math.max(sumRel, Math.abs((pg[i + 1] as number) - (ph[i + 1] as number)) / Math.abs(ph[i + 1] as number));
    }
    const ok = Object.values(bad).every((n) => n === 0) && maxDiffer === 0 && sumRel <= 1e-5 && lseVsCpu <= 1e-5 && lseVsRef <= 1e-5;
    if (!ok) failed++;
    emit({
      check: 'vocab-topk',
      dims: [B, V],
      k,
      ok,
      mismatches: bad,
      ort_cuda_topk_vs_cpu_indices: ortCudaTieOrder,
      chunk_max_differ: maxDiffer,
      chunk_sum_rel: sumRel,
      lse_vs_cpu: lseVsCpu,
      lse_vs_float64: lseVsRef,
    });
  }

/**
 * Mean ms of `reps` runs of a case on CUDA after one warm-up (inputs uploaded once; everything released).
 * `inPlace` binds outputs to inputs' device buffers (output name → input name), as the generation engine binds
 * the KV-cache presents to the pasts.
 */
async function timeCase(c: { model: Uint8Array; inputs: Record<string, HostTensor> }, reps: number, inPlace: Record<string, string> = {}): Promise<number> {
  const session = DeviceSession.create(c.model, { device: cuda, deterministic: true });
  const b = session.createBinding();
  const uploaded = new Map(Object.entries(c.inputs).map(([k, t]) => [k, session.upload(t)] as const));
  for (const [k, d] of uploaded) b.bindInput(k, d);
  for (const o of session.outputs) {
    const into = inPlace[o.name] === undefined ? undefined : uploaded.get(inPlace[o.name] as string);
    if (into !== undefined) b.bindOutput(o.name, into);
    else b.bindOutputToDevice(o.name);
  }
  try {
    await session.runAsync(b);
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await session.runAsync(b);
    return (performance.now() - t0) / reps;
  } finally {
    b.release();
    for (const t of uploaded.values()) t.release();
    session.release();
  }
}

// DecodeAttention (generation's decode step): CUDA vs the CPU kernel (f32, bf16, f16) and vs ORT's CUDA
// GroupQueryAttention on the same inputs (bf16, f16: the op it replaces). The CPU kernel is a two-pass
// softmax, CUDA an online one over 8 warps, GQA its own: the output within two ulps of the dtype relative to
// the case's largest |out| (float32: 1e-5), the caches' keys 0..pos within one ulp (the rotated key's
// rounding; beyond pos GQA's present holds zeros). Shapes: Llama-3.2-1B's (32 / 8 heads, hd 64) and
// Qwen2-7B's (28 / 4, hd 128), positions 0, inside and C − 1.
if (check('decode-attention'))
  for (const [dtype, ulp] of dtypeGrid(1e-5)) {
    for (const dims of [
      { H: 32, kvH: 8, hd: 64, C: 160, positions: [0, 77, 159, 5] },
      { H: 28, kvH: 4, hd: 128, C: 96, positions: [95, 0, 40] },
    ]) {
      const c = decodeAttentionCase(dtype, dims, 11, 'fused');
      const [gpu, host] = await onBoth(c);
      const refs: Array<[string, Record<string, HostTensor>]> = [['cpu', host]];
      // (ORT's CPU GroupQueryAttention has no bfloat16: --dry skips that pair.)
      if (dtype !== 'float32' && !(values.dry && dtype === 'bfloat16')) {
        const gq = decodeAttentionCase(dtype, dims, 11, 'gqa'); // the same seeded inputs, plus total_sequence_length
        refs.push(['gqa', await runOnce(gq.model, gq.inputs, cuda)]);
      }
      const rowOf = (i: number) => Math.floor(i / (dims.kvH * dims.C * dims.hd));
      const valid = (i: number) => Math.floor(i / dims.hd) % dims.C <= (dims.positions[rowOf(i)] as number);
      const worst: Record<string, number> = {};
      for (const [name, ref] of refs) {
        worst[`out_vs_${name}`] = worstRel(floatValues(gpu['out'] as HostTensor), floatValues(ref['out'] as HostTensor), true);
        for (const k of ['present_key', 'present_value']) {
          const [a, b] = [floatValues(gpu[k] as HostTensor), floatValues(ref[k] as HostTensor)];
          const idx = Array.from(a.keys()).filter(valid);
          worst[`${k}_vs_${name}`] = worstRel(
            Float64Array.from(idx, (i) => a[i] as number),
            Float64Array.from(idx, (i) => b[i] as number),
            true,
          );
        }
      }
      const ok = Object.entries(worst).every(([k, w]) => w <= (k.startsWith('out') ? 2 : 1) * ulp);
      if (!ok) failed++;
      emit({ check: 'decode-attention', dtype, dims: [dims.H, dims.kvH, dims.hd, dims.C], ok, worst_rel: worst });
    }
  }

// FlashAttention + Grad (the tensor-core kernels, bf16 and f16; head dims 64 and 128): CUDA vs the CPU kernel on
// one graph of both ops. Both round P and dS to the dtype before their products, CUDA against a running max
// (online softmax) and the CPU against the row's final one, and their float32 sums run in other orders: O, dQ,
// dK, dV within 4 ulps of the dtype relative to each tensor's largest |value|. Each side's backward reads its own
// forward's O, which may differ by an ulp, so Dsum is checked against Σ dO·O of that side's own O (float64,
// within 1e-5 of the row's Σ |dO·O|). The stats row by row: the max within 1e-5·max(1, |m|) and the sum within
// 1e-5 relative of the CPU's. Shapes: Llama-3.2-1B's heads (8 KV heads of 4 queries, hd 64) and Qwen2-7B's (4 of
// 7, hd 128), with query and key tails (T, S not multiples of 64), causal masks with S − T earlier keys, a fully
// blocked query row, and a mask per batch row; finite mask values, and the models' 0 / MASK_MIN (whose tiles of 0
// the kernels run without loading the mask, and whose blocked tiles they skip: the tile map). The CUDA kernels
// take 16-bit only (no float32 case).
if (check('flash-attention'))
  for (const [dtype, ulp] of dtypeGrid(0).filter(([d]) => d !== 'float32')) {
    for (const [dims, maskDims, zeros] of [
      [{ B: 2, G: 8, rep: 4, T: 100, S: 100, D: 64 }, [2, 1, 1, 100, 100], false],
      [{ B: 1, G: 4, rep: 7, T: 70, S: 150, D: 128 }, [1, 1, 1, 70, 150], false],
      // The models' mask (0 / MASK_MIN, key padding per batch row): tiles of 0 run without loading it, blocked ones
      // are skipped (the tile map).
      [{ B: 2, G: 8, rep: 4, T: 300, S: 300, D: 64 }, [2, 1, 1, 300, 300], true],
      [{ B: 1, G: 4, rep: 7, T: 200, S: 264, D: 128 }, [1, 1, 1, 200, 264], true],
    ] as const) {
      const c = flashAttentionCase(dtype, dims, maskDims, 1 / Math.sqrt(dims.D), 13, { zeros });
      const [gpu, host] = await onBoth(c);
      const worst: Record<string, number> = worstRelPerOutput(gpu, host, [], ['o', 'dq', 'dk', 'dv']);
      const dO = floatValues(c.inputs['dO'] as HostTensor);
      const D = dims.D;
      for (const [side, out] of [
        ['gpu', gpu],
        ['cpu', host],
      ] as const) {
        const o = floatValues(out['o'] as HostTensor);
        const dsum = floatValues(out['dsum'] as HostTensor);
        let w = 0;
        for (let r = 0; r < dsum.length; r++) {
          let [sum, abs] = [0, 0];
          for (let d = 0; d < D; d++) {
            const t = (dO[r * D + d] as number) * (o[r * D + d] as number);
            sum += t;
            abs += Math.abs(t);
          }
          w = Math.max(w, Math.abs((dsum[r] as number) - sum) / Math.max(abs, 1e-30));
        }
        worst[`dsum_${side}`] = w;
      }
      const [sg, sc] = [floatValues(gpu['stats'] as HostTensor), floatValues(host['stats'] as HostTensor)];
      let [wm, wl] = [0, 0];
      for (let r = 0; r < sc.length / 2; r++) {
        const [mg, mc, lg, lc] = [sg[2 * r], sc[2 * r], sg[2 * r + 1], sc[2 * r + 1]] as [number, number, number, number];
        wm = Math.max(wm, Number.isNaN(mg - mc) ? Number.POSITIVE_INFINITY : Math.abs(mg - mc) / Math.max(1, Math.abs(mc)));
        wl = Math.max(wl, Number.isNaN(lg - lc) ? Number.POSITIVE_INFINITY : Math.abs(lg - lc) / Math.abs(lc));
      }
      worst['stats_max'] = wm;
      worst['stats_sum'] = wl;
      const ok = Object.entries(worst).every(([k, w]) => w <= (k.startsWith('dsum') || k.startsWith('stats') ? 1e-5 : 4 * ulp));
      if (!ok) failed++;
      emit({ check: 'flash-attention', dtype, dims: [dims.B, dims.G, dims.rep, dims.T, dims.S, dims.D], zeros, ok, worst_rel: worst });
    }
  }

// Timings of single kernels: each timeCase run also pays one session run (IO binding, launch, the wait and the
// promise), which session 8's lease showed to be of the order of the kernels themselves (a 134 MB dropout
// pass at "240 GB/s"). That overhead is measured on a one-Identity graph and subtracted: `net_ms`, and
// gb_per_s from it (raw `ms` beside).
if (timing('kernel-time')) {
  const tiny = new Graph('run_overhead');
  tiny.output(tiny.op1('Identity', [tiny.input('x', 'float32', [1])]), 'y');
  const overhead = await timeCase({ model: serialize(tiny).model, inputs: { x: { dtype: 'float32', dims: [1], data: new Float32Array(1) } } }, 50);
  emit({ check: 'run-overhead-time', ms: overhead });
  const timed = (check: string, dims: number[], ms: number, bytes: number) =>
    emit({ check, dims, ms, net_ms: ms - overhead, gb_per_s: bytes / (Math.max(ms - overhead, 1e-6) / 1000) / 1e9 });
  // MaskedSoftmax + Grad at the benchmark's attention shape [8, 8, 4, 512, 512] in bfloat16 (x, dy, y, dx: 8 bytes per element, plus the mask).
  const sm = 8 * 8 * 4 * 512 * 512;
  timed('masked-softmax-time', [8, 8, 4, 512, 512], await timeCase(maskedSoftmaxCase('bfloat16', [8, 8, 4, 512, 512], [8, 1, 1, 512, 512], 1, 2), 10), 10 * sm);
  // RMSNorm + Grad at the benchmark's hidden states [8·512, 2048] in bfloat16 (x twice, y, dy, dx: 10 bytes per element).
  timed('rmsnorm-time', [4096, 2048], await timeCase(rmsNormCase('bfloat16', [4096, 2048], 2), 20), 10 * 4096 * 2048);
  // SeededDropout at a LoRA input [8·512, 8192] in bfloat16, three times (the case's y, y_tables and y_split: x
  // read three times, three outputs: 12 bytes per element).
  timed('seeded-dropout-time', [4096, 8192], await timeCase(seededDropoutCase('bfloat16', 4096, 8192, 2), 20), 12 * 4096 * 8192);
  // The 7B dropout column table [392, 18944] (int32 written: 4 bytes per word): HashWords against the
  // standard int64 ops it replaces (bytes: the same words, for comparison).
  const hw = 392 * 18944;
  timed('hash-words-time', [392, 18944], await timeCase(hashWordsCase(hw, 18944, 7n, 1401181151, 1908133265, ['got']), 20), 4 * hw);
  timed('hash-words-ops-time', [392, 18944], await timeCase(hashWordsCase(hw, 18944, 7n, 1401181151, 1908133265, ['want']), 20), 4 * hw);
  // SwiGLU + Grad at the benchmark's MLP [8·512, 8192] in bfloat16 (gate, up, y; dy, gate, up, dgate, dup: 16 bytes per element).
  timed('swiglu-time', [4096, 8192], await timeCase(swigluCase('bfloat16', [4096, 8192], 2), 20), 16 * 4096 * 8192);
  // One decode step's attention of one layer at the engine's 1B shape (batch 64, 32 / 8 heads, hd 64, C 512,
  // every row at 256 keys): DecodeAttention against GroupQueryAttention (K and V read once: 2·64·8·256·64·2 bytes).
  const da = { H: 32, kvH: 8, hd: 64, C: 512, positions: Array.from({ length: 64 }, () => 255) };
  const daBytes = 2 * 64 * 8 * 256 * 64 * 2;
  // The presents bound to the pasts' buffers, as the engine binds them (else each run first copies both caches).
  const shared = { present_key: 'past_key', present_value: 'past_value' };
  timed('decode-attention-time', [64, 32, 8, 64, 512], await timeCase(decodeAttentionCase('bfloat16', da, 5, 'fused'), 50, shared), daBytes);
  timed('gqa-decode-time', [64, 32, 8, 64, 512], await timeCase(decodeAttentionCase('bfloat16', da, 5, 'gqa'), 50, shared), daBytes);
  // A decode step's top k over [64, 128256] float32 logits (read once: 4 bytes per element): VocabTopK against
  // ORT's TopK (the case graph runs both; the TopK-only graph times ORT's alone).
  for (const k of [64, 16]) {
    const vt = vocabTopKCase(64, 128256, k, 0, 7);
    const both = await timeCase(vt, 20);
    const gt = new Graph('topk_only');
    const [tv, ti] = gt.op('TopK', [gt.input('x', 'float32', [64, 128256]), gt.ints([k])], { axis: -1, largest: 1, sorted: 1 }) as [Tensor, Tensor];
    gt.output(tv, 'v');
    gt.output(ti, 'i');
    const ortMs = await timeCase({ model: serialize(gt).model, inputs: { x: vt.inputs['x'] as HostTensor } }, 20);
    timed(`vocab-topk-k${k}-time`, [64, 128256], both - ortMs + overhead, 4 * 64 * 128256);
    timed(`ort-topk-k${k}-time`, [64, 128256], ortMs, 4 * 64 * 128256);
  }
}

// The LM-head cross-entropy at the benchmark's shape (h [8·512, 2048], W [128256, 2048], bfloat16; loss, dh
// and dW): the standard ops (bf16 logits, their float32 copy, LogSoftmax, the scattered gradient) against
// the chunked lowering (graph's linear-cross-entropy.ts, 8192 columns per chunk), each in its own session.
if (timing('ce-time')) {
  const [N, D, V] = [4096, 2048, 128256];
  const model = (fused: boolean) => {
    const g = new Graph(fused ? 'ce_chunked' : 'ce_plain');
    const h = g.input('h', 'bfloat16', [N, D]);
    const w = g.input('w', 'bfloat16', [V, D]);
    const loss = crossEntropy(g, g.cast(g.op1('Gemm', [h, w], { transB: 1 }), 'float32'), g.input('labels', 'int64', [N]));
    if (fused) fuseLinearCrossEntropy(g);
    const [dh, dw] = grad(g, loss, [h, w]);
    lowerLinearLogProb(g);
    g.output(loss, 'loss');
    g.output(dh!, 'dh');
    g.output(dw!, 'dw');
    g.prune();
    return serialize(g).model;
  };
  const tile = Float32Array.from({ length: 1 << 20 }, (_, i) => 0.02 * Math.sin(i * 12.9898) * Math.cos(i * 0.37));
  const fill = (n: number) => {
    const bits = typedFrom('bfloat16', tile) as Uint16Array;
    const out = new Uint16Array(n);
    for (let o = 0; o < n; o += bits.length) out.set(bits.subarray(0, Math.min(bits.length, n - o)), o);
    return out;
  };
  const inputs: Record<string, HostTensor> = {
    h: { dtype: 'bfloat16', dims: [N, D], data: fill(N * D) },
    w: { dtype: 'bfloat16', dims: [V, D], data: fill(V * D) },
    labels: { dtype: 'int64', dims: [N], data: BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7919) % V)) },
  };
  const plainMs = await timeCase({ model: model(false), inputs }, 5);
  const chunkedMs = await timeCase({ model: model(true), inputs }, 5);
  emit({ check: 'ce-time', dims: [N, D, V], ms_plain: plainMs, ms_chunked: chunkedMs, speedup: plainMs / chunkedMs });
}

// Timing: AdamW over 2^28 elements with bf16 gradients (26 bytes per element moved).
if (timing('adamw-time')) {
  const n = 1 << 28;
  const session = DeviceSession.create(adamwGraph(n, 'bfloat16'), { device: cuda, deterministic: true });
  const b = session.createBinding();
  const small = adamwInputs(1, 'bfloat16', 1);
  const held = ['p', 'g', 'm', 'v'].map((k) => {
    const t = session.alloc(k === 'g' ? 'bfloat16' : 'float32', [n]);
    b.bindInput(k, t);
    return t;
  });
  for (const k of ['step', 'decay', 'bc2', 'coef']) {
    const t = session.upload(small[k] as HostTensor);
    b.bindInput(k, t);
    held.push(t);
  }
  for (const k of ['p_new', 'm_new', 'v_new']) {
    const t = session.alloc('float32', [n]);
    b.bindOutput(k, t);
    held.push(t);
  }
  await session.runAsync(b);
  const reps = 10;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await session.runAsync(b);
  const ms = (performance.now() - t0) / reps;
  emit({ check: 'adamw-time', n, ms, gb_per_s: (26 * n) / (ms / 1000) / 1e9 });
  b.release();
  for (const t of held) t.release();
  session.release();
}

// FlashAttention forward + backward at the benchmark's attention (batch 8, 8 KV heads of 4 queries, T = S = 512,
// hd 64, bf16; and Qwen2-7B's 4 of 7 at hd 128), the models' causal mask [8, 1, 1, 512, 512] (0 / MASK_MIN, the last
// 7·b keys of batch row b padded): ms per forward + backward of one
// layer (run overhead not subtracted) and the TFLOP/s of its products (forward 2, backward 7 of 2·B·H·T·S·hd flops
// each, the masked half included: the kernels skip a warp's part of a step only where the mask blocks it all).
if (timing('flash-time'))
  for (const dims of [
    { B: 8, G: 8, rep: 4, T: 512, S: 512, D: 64 },
    { B: 8, G: 4, rep: 7, T: 512, S: 512, D: 128 },
  ]) {
    const c = flashAttentionCase('bfloat16', dims, [dims.B, 1, 1, dims.T, dims.S], 1 / Math.sqrt(dims.D), 3, { zeros: true });
    const ms = await timeCase(c, 20);
    const flops = 9 * 2 * dims.B * dims.G * dims.rep * dims.T * dims.S * dims.D;
    emit({ check: 'flash-time', dims: [dims.B, dims.G, dims.rep, dims.T, dims.S, dims.D], ms, tflops: flops / (ms / 1000) / 1e12 });
  }

emit({ check: 'done', failed });
process.exit(failed === 0 ? 0 : 1);
