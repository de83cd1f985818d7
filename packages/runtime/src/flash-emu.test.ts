// The FlashAttention CUDA kernels (native/src/kernels/flash_attention.cu) run on the CPU: g++ compiles the
// kernel file itself into native/emu/flash_emu.cc, which runs every CUDA thread as a fiber and emulates
// mma.sync per lane from the fragment layout the kernel file states (see its header). The forward, Dsum,
// dK/dV and dQ kernels are compared here with attention in float64 on the same 16-bit inputs: query tiles
// and key steps with tails, grouped queries (rep > 1), the mask broadcast over B, G or rep, blocked keys
// (MASK_MIN) and a fully blocked query row, head dims 64 and 128, bf16 and f16 — per tensor (TOL) and per element
// (ELEMENT_TOL); in every case, that skipping the steps the mask blocks changes no bit of the outputs (--no-skip),
// and that every shared-memory access lies in the dynamic shared memory the launch requests (the emulator checks
// each load, store and ldmatrix row, and reports the bytes the kernels spanned). Negative controls: the emulator's
// mma reading B's halves swapped must fail the comparison; a window one 16-bit element smaller than the request,
// and ldmatrix rows off 16-byte alignment, must end the run with the check's message. What this cannot check is
// the hardware: that the layout is the one the GPU uses, and the launch (tools/bench fused-check does, on the GPU).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Rng } from '@latent-sft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeDir } from '../native/embed-kernels.mjs';

const MASK_MIN = -3.4028234663852886e38;
/**
 * |got − want| ≤ tol · max|want| per tensor. The kernels round P and dS to the 16-bit dtype before their products
 * (as FlashAttention-2 does) and O, dQ, dK, dV once at the end: a few ulps of the dtype relative to the tensor's
 * scale (bf16 ulp 2⁻⁸, f16 2⁻¹¹). Stats and Dsum are float32 sums in another order.
 */
const TOL = { bfloat16: 2 ** -6, float16: 2 ** -9, stats: 1e-5 } as const;
/**
 * Each element: |got − want| ≤ tol · (|want| + Σ|terms|), the sum of the absolute values of the terms its sum adds
 * (Σ_s p·|v| for O, Σ|dO·O| for Dsum, Σ|dS·q| for dK, ...): a sum of products each rounded to the dtype (P, dS: relative
 * error ≤ u, the unit roundoff, bf16 2⁻⁸, f16 2⁻¹¹), rounded once (≤ u·|result|), is within u of that; measured
 * ≤ 0.86 u; 2u leaves room for the float32 scores and exps. Stats: l ≥ 1 (its largest term is e⁰), relative per row,
 * and Dsum, float32 sums (measured ≤ 6 float32 roundoffs of 2⁻²⁴; 2⁻¹⁸ is 64). So no single element can hide
 * in TOL's max-norm, which lets an element far below the tensor's largest be wrong by all of itself.
 */
const ELEMENT_TOL = { bfloat16: 2 * 2 ** -8, float16: 2 * 2 ** -11, stats: 2 ** -18 } as const;

type Half = 'bfloat16' | 'float16';
interface Case {
  dtype: Half;
  B: number;
  G: number;
  rep: number;
  T: number;
  S: number;
  D: number;
  /** The mask's dims, each 1 or [B, G, rep, T, S]'s. */
  mask: [number, number, number, number, number];
  /** The models' mask: 0 where a key is seen (tiles of 0 run without loading the mask), not the finite pattern. */
  zeros?: boolean;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** x rounded to the 16-bit dtype: the value and its bits. bf16: nearest even; f16: x is a multiple of 2⁻⁶ below 16 (exact). */
function toHalf(dtype: Half, x: number): [number, number] {
  f32[0] = x;
  const u = u32[0] as number;
  if (dtype === 'bfloat16') {
    const b = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
    u32[0] = b << 16;
    return [f32[0] as number, b];
  }
  if (x === 0) return [0, 0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  return [x, sign | (exp << 10) | ((u >>> 13) & 0x3ff)];
}
function fromHalf(dtype: Half, b: number): number {
  if (dtype === 'bfloat16') {
    u32[0] = b << 16;
    return f32[0] as number;
  }
  const e = (b >>> 10) & 0x1f;
  const m = b & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? Number.NaN : Number.POSITIVE_INFINITY) : (1 + m / 1024) * 2 ** (e - 15);
  return b & 0x8000 ? -v : v;
}

/**
 * Runs the emulator on one case; returns its outputs, the float64 reference of each, the warp steps the kernels
 * skipped (blocked by the mask) and, with compareNoSkip, whether the outputs are byte for byte those of a run
 * that skips none.
 */
// The emulator and g++ run as child processes awaited (not execFileSync): the test worker's event loop stays free
// for vitest's RPC on a busy machine (a blocked worker timed out calling onTaskUpdate).
const run = promisify(execFile);

async function runCase(bin: string, dir: string, c: Case, seed: number, compareNoSkip: boolean, flags: readonly string[] = []) {
  const { B, G, rep, T, S, D, dtype } = c;
  const N = rep * T;
  const r = Rng.fromSeed(seed);
  const draw = (n: number): [Float64Array, Uint16Array] => {
    const v = new Float64Array(n);
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const x = dtype === 'float16' ? Math.max(-15, Math.min(15, Math.round(r.normal() * 64) / 64)) : r.normal();
      [v[i], bits[i]] = toHalf(dtype, x) as [number, number];
    }
    return [v, bits];
  };
  const [q, qb] = draw(B * G * N * D);
  const [k, kb] = draw(B * G * S * D);
  const [v, vb] = draw(B * G * S * D);
  const [dO, dOb] = draw(B * G * N * D);
  // The mask in its own index space: causal with S − T earlier keys (T broadcast: key padding), query row t = 1
  // fully blocked, a pattern
  // of blocked keys where the mask varies over B, G or rep, finite values in [−0.5, 0.5] elsewhere.
  const [mB, mG, mR, mT, mS] = c.mask;
  const mask = new Float32Array(mB * mG * mR * mT * mS);
  for (let i = 0; i < mask.length; i++) {
    const s = i % mS;
    const t = Math.floor(i / mS) % mT;
    const rr = Math.floor(i / (mS * mT)) % mR;
    const gg = Math.floor(i / (mS * mT * mR)) % mG;
    const b = Math.floor(i / (mS * mT * mR * mG));
    // (With T broadcast, key padding instead of causality: the last 3 + 5·b keys of batch row b.)
    const future = mT > 1 ? s > t + S - T : s >= S - 3 - 5 * b;
    const blocked = (mT > 1 && t === 1) || (mS > 1 && future) || ((mB > 1 || mG > 1 || mR > 1) && (s + b + 2 * gg + 3 * rr) % 7 === 0);
    mask[i] = blocked ? MASK_MIN : c.zeros ? 0 : 0.25 * ((3 * s + t + b + gg + rr) % 5) - 0.5;
  }
  const strides: number[] = [];
  for (let i = 4, st = 1; i >= 0; i--) {
    strides.unshift(c.mask[i] === 1 ? 0 : st);
    st *= c.mask[i] as number;
  }
  const scale = 1 / Math.sqrt(D);
  const header = new BigInt64Array([dtype === 'float16' ? 1 : 0, B, G, N, T, S, D, rep, ...strides].map(BigInt));
  const parts: Buffer[] = [
    Buffer.from(header.buffer),
    Buffer.from(new Float32Array([scale]).buffer),
    Buffer.from(new BigInt64Array([BigInt(mask.length)]).buffer),
  ];
  for (const a of [qb, kb, vb, dOb, mask]) parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  const inFile = join(dir, `in-${seed}.bin`);
  const outFile = join(dir, `out-${seed}.bin`);
  writeFileSync(inFile, Buffer.concat(parts));
  const log = (await run(bin, [inFile, outFile, ...flags], { encoding: 'utf8' })).stdout;
  const skipped = Number(/warp steps skipped: (\d+)/.exec(log)?.[1] ?? Number.NaN);
  const tileSteps = /tile steps skipped: (\d+), unmasked: (\d+)/.exec(log);
  const tiles = { skipped: Number(tileSteps?.[1] ?? Number.NaN), unmasked: Number(tileSteps?.[2] ?? Number.NaN) };
  const raw = readFileSync(outFile);
  let sameAsNoSkip: boolean | undefined;
  if (compareNoSkip) {
    await run(bin, [inFile, `${outFile}.noskip`, '--no-skip'], { encoding: 'utf8' });
    sameAsNoSkip = raw.equals(readFileSync(`${outFile}.noskip`));
  }
  let off = 0;
  const halves = (n: number) => {
    const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset + off, raw.byteOffset + off + 2 * n));
    off += 2 * n;
    return Float64Array.from(bits, (b) => fromHalf(dtype, b));
  };
  const floats = (n: number) => {
    const f = new Float32Array(raw.buffer.slice(raw.byteOffset + off, raw.byteOffset + off + 4 * n));
    off += 4 * n;
    return Float64Array.from(f);
  };
  const rows = B * G * N;
  const got = { o: halves(rows * D), stats: floats(2 * rows), dsum: floats(rows), dq: halves(rows * D), dk: halves(B * G * S * D), dv: halves(B * G * S * D) };
  expect(off).toBe(raw.length);

  // float64 attention on the same values.
  const want = { o: new Float64Array(rows * D), m: new Float64Array(rows), l: new Float64Array(rows), dsum: new Float64Array(rows) };
  const dq = new Float64Array(rows * D);
  const dk = new Float64Array(B * G * S * D);
  const dv = new Float64Array(B * G * S * D);
  // Each element's sum of |terms| (Σ|p·v|, Σ|dS·q|, ...): the scale of its rounding errors (elementwise check).
  const abs = {
    o: new Float64Array(rows * D),
    dsum: new Float64Array(rows),
    dq: new Float64Array(rows * D),
    dk: new Float64Array(B * G * S * D),
    dv: new Float64Array(B * G * S * D),
  };
  for (let bg = 0; bg < B * G; bg++) {
    const b = Math.floor(bg / G);
    const gg = bg % G;
    for (let i = 0; i < N; i++) {
      const row = bg * N + i;
      const [rr, t] = [Math.floor(i / T), i % T];
      const mo = b * (strides[0] as number) + gg * (strides[1] as number) + rr * (strides[2] as number) + t * (strides[3] as number);
      const z = new Float64Array(S);
      let mx = Number.NEGATIVE_INFINITY;
      for (let s = 0; s < S; s++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += (q[row * D + d] as number) * (k[(bg * S + s) * D + d] as number);
        z[s] = scale * dot + (mask[mo + s * (strides[4] as number)] as number);
        mx = Math.max(mx, z[s] as number);
      }
      let l = 0;
      for (let s = 0; s < S; s++) l += Math.exp((z[s] as number) - mx);
      want.m[row] = mx;
      want.l[row] = l;
      const p = Float64Array.from(z, (x) => Math.exp(x - mx) / l);
      for (let d = 0; d < D; d++) {
        let o = 0;
        let oa = 0;
        for (let s = 0; s < S; s++) {
          o += (p[s] as number) * (v[(bg * S + s) * D + d] as number);
          oa += (p[s] as number) * Math.abs(v[(bg * S + s) * D + d] as number);
        }
        want.o[row * D + d] = o;
        abs.o[row * D + d] = oa;
      }
      // The backward from the kernel's own O (as FlashAttention-2's Dsum is).
      let ds = 0;
      for (let d = 0; d < D; d++) {
        ds += (dO[row * D + d] as number) * (got.o[row * D + d] as number);
        abs.dsum[row] = (abs.dsum[row] as number) + Math.abs((dO[row * D + d] as number) * (got.o[row * D + d] as number));
      }
      want.dsum[row] = ds;
      for (let s = 0; s < S; s++) {
        let dp = 0;
        for (let d = 0; d < D; d++) dp += (dO[row * D + d] as number) * (v[(bg * S + s) * D + d] as number);
        const dS = (p[s] as number) * (dp - ds);
        for (let d = 0; d < D; d++) {
          const [kv, qd] = [(bg * S + s) * D + d, row * D + d];
          dv[kv] = (dv[kv] as number) + (p[s] as number) * (dO[qd] as number);
          dk[kv] = (dk[kv] as number) + scale * dS * (q[qd] as number);
          dq[qd] = (dq[qd] as number) + scale * dS * (k[kv] as number);
          abs.dv[kv] = (abs.dv[kv] as number) + Math.abs((p[s] as number) * (dO[qd] as number));
          abs.dk[kv] = (abs.dk[kv] as number) + Math.abs(scale * dS * (q[qd] as number));
          abs.dq[qd] = (abs.dq[qd] as number) + Math.abs(scale * dS * (k[kv] as number));
        }
      }
    }
  }
  return { got, want: { ...want, dq, dk, dv }, abs, skipped, tiles, sameAsNoSkip, smem: smemUse(log) };
}

/** max |got − want| / max |want|. */
function relErr(got: Float64Array, want: Float64Array): number {
  let e = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs((got[i] as number) - (want[i] as number)));
    scale = Math.max(scale, Math.abs(want[i] as number));
  }
  return e / scale;
}

/** The worst element by |got − want| / (|want| + abs): its ratio and index. */
function elementErr(got: Float64Array, want: Float64Array, abs: Float64Array): { ratio: number; at: number } {
  let worst = { ratio: 0, at: -1 };
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const diff = Math.abs((got[i] as number) - w);
    const ratio = diff === 0 ? 0 : diff / (Math.abs(w) + (abs[i] as number)); // 0 of 0 (a key no query sees): exact
    if (Number.isNaN(ratio)) return { ratio, at: i }; // a NaN is the worst
    if (ratio > worst.ratio) worst = { ratio, at: i };
  }
  return worst;
}

/** The emulator's shared-memory lines: per kernel the accesses checked, the bytes [lo, hi) they spanned, the bytes requested. */
function smemUse(log: string): Record<string, { accesses: number; lo: number; hi: number; request: number }> {
  const out: Record<string, { accesses: number; lo: number; hi: number; request: number }> = {};
  for (const m of log.matchAll(/shared memory (\w+): (\d+) accesses checked, bytes \[(\d+), (\d+)\) of (\d+)/g))
    out[m[1] as string] = { accesses: Number(m[2]), lo: Number(m[3]), hi: Number(m[4]), request: Number(m[5]) };
  return out;
}

/** Runs the emulator on `c` with `flags` that must make it fail; returns its exit status and stderr. */
async function runFailing(bin: string, dir: string, c: Case, flags: readonly string[]): Promise<{ status: number | null; stderr: string }> {
  try {
    await runCase(bin, dir, c, 98, false, flags);
  } catch (e) {
    const err = e as { code?: number | string | null; stderr?: string | Buffer };
    return { status: typeof err.code === 'number' ? err.code : null, stderr: String(err.stderr ?? '') };
  }
  throw new Error(`flash_emu ${flags.join(' ')} succeeded`);
}

const CASES: Case[] = [
  { dtype: 'bfloat16', B: 1, G: 1, rep: 1, T: 64, S: 64, D: 64, mask: [1, 1, 1, 64, 64] },
  { dtype: 'bfloat16', B: 2, G: 2, rep: 2, T: 37, S: 45, D: 64, mask: [2, 1, 1, 37, 45] },
  { dtype: 'bfloat16', B: 1, G: 2, rep: 4, T: 20, S: 130, D: 128, mask: [1, 2, 4, 20, 130] },
  { dtype: 'float16', B: 1, G: 2, rep: 2, T: 50, S: 70, D: 128, mask: [1, 1, 2, 50, 70] },
  { dtype: 'float16', B: 2, G: 1, rep: 1, T: 70, S: 70, D: 64, mask: [2, 1, 1, 1, 70] },
  // Causal over three key steps: the steps above the diagonal are skipped (but for the warp of the blocked row).
  { dtype: 'bfloat16', B: 1, G: 1, rep: 2, T: 150, S: 150, D: 64, mask: [1, 1, 1, 150, 150] },
  // The models' causal mask (0 / MASK_MIN): tiles of 0 run unmasked; the 64-row tiles of N = rep·T straddle two
  // query heads (T = 200), and the first tile of T holds the fully blocked row (its steps are never skipped).
  { dtype: 'bfloat16', B: 1, G: 2, rep: 2, T: 200, S: 200, D: 64, mask: [1, 1, 1, 200, 200], zeros: true },
  // The same at head dim 128 (dK/dV's 32-query steps), with 64 earlier keys.
  { dtype: 'float16', B: 1, G: 1, rep: 2, T: 192, S: 256, D: 128, mask: [1, 1, 1, 192, 256], zeros: true },
];

describe('FlashAttention CUDA kernels, emulated on the CPU, = float64 attention', () => {
  let dir = '';
  let bin = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latent-sft-flash-emu-'));
    bin = join(dir, 'flash_emu');
    await run(
      'g++',
      [
        '-std=c++17',
        '-O2',
        '-ffp-contract=off',
        '-Wall',
        '-Wextra',
        '-Wno-unused-parameter',
        '-Wno-unknown-pragmas',
        '-Werror',
        '-U_FORTIFY_SOURCE',
        // Every load and store a call to the emulator's shared-memory check (flash_emu.cc's header).
        '-fsanitize=kernel-address',
        '--param=asan-instrumentation-with-call-threshold=0',
        '--param=asan-stack=0',
        '--param=asan-globals=0',
        '-o',
        bin,
        join(nativeDir, 'emu', 'flash_emu.cc'),
      ],
      { encoding: 'utf8' },
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails with a wrong fragment layout (negative control: mma reading B with its 16-bit halves swapped)', async () => {
    const c = CASES[0] as Case;
    const { got, want, abs } = await runCase(bin, dir, c, 99, false, ['--wrong-layout']);
    expect(relErr(got.o, want.o)).toBeGreaterThan(10 * TOL[c.dtype]);
    expect(elementErr(got.o, want.o, abs.o).ratio).toBeGreaterThan(10 * ELEMENT_TOL[c.dtype]);
  });

  it('fails when a cp.async copy is read before its group is waited for (negative control: every wait one group short)', async () => {
    // cp.async lands at the issuing thread's wait (NaN bits in the tile until then): with each wait leaving one group
    // more in flight, every kernel reads tiles whose copies have not landed.
    const c = CASES[5] as Case;
    const { got, want } = await runCase(bin, dir, c, 95, false, ['--cp-wait-lag']);
    for (const name of ['o', 'dq', 'dk', 'dv'] as const) expect(relErr(got[name], want[name]) < TOL[c.dtype], name).toBe(false);
  });

  it('fails with one small element wrong by half the per-tensor tolerance (which passes it; negative control)', async () => {
    const c = CASES[0] as Case;
    const { got, want, abs } = await runCase(bin, dir, c, 96, false);
    for (const name of ['o', 'dq', 'dk', 'dv'] as const) {
      // The element of the smallest scale |want| + Σ|terms|, moved by half of what TOL allows any element.
      let i = 0;
      for (let j = 1; j < want[name].length; j++)
        if (Math.abs(want[name][j] as number) + (abs[name][j] as number) < Math.abs(want[name][i] as number) + (abs[name][i] as number)) i = j;
      const bad = Float64Array.from(got[name]);
      const max = want[name].reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      bad[i] = (want[name][i] as number) + 0.5 * TOL[c.dtype] * max;
      expect(relErr(bad, want[name]), name).toBeLessThan(TOL[c.dtype]);
      expect(elementErr(got[name], want[name], abs[name]).ratio, name).toBeLessThanOrEqual(ELEMENT_TOL[c.dtype]);
      expect(elementErr(bad, want[name], abs[name]), name).toEqual({ ratio: expect.any(Number), at: i });
      expect(elementErr(bad, want[name], abs[name]).ratio, name).toBeGreaterThan(ELEMENT_TOL[c.dtype]);
    }
  });

  it('fails on a shared-memory access past the launch (negative control: the window one 16-bit element short)', async () => {
    const c = CASES[0] as Case;
    const ok = (await runCase(bin, dir, c, 97, false)).smem;
    const request = ok['flashFwd']?.request as number;
    // The forward is the first kernel with shared memory (the tile map has none); its layout ends with the 8-byte
    // mask row offsets of the warps' rows, the last one stored past the window.
    const { status, stderr } = await runFailing(bin, dir, c, ['--smem-shrink', '2']);
    expect(status).toBe(3);
    expect(stderr).toMatch(
      new RegExp(
        `^flash_emu: shared memory store of 8 bytes at byte ${request - 8} outside the ${request - 2} bytes of dynamic shared memory of the flashFwd launch \\(requested ${request}, --smem-shrink 2\\)`,
      ),
    );
  });

  it('fails on an ldmatrix row address not 16-byte aligned (negative control: every row address 2 bytes on)', async () => {
    const c = CASES[0] as Case;
    const { status, stderr } = await runFailing(bin, dir, c, ['--ldmatrix-skew', '2']);
    expect(status).toBe(3);
    const m =
      /^flash_emu: shared memory ldmatrix row of 16 bytes at byte (\d+) not 16-byte aligned in the \d+ bytes of dynamic shared memory of the flashFwd launch/.exec(
        stderr,
      );
    expect(m, stderr).not.toBeNull();
    expect(Number(m?.[1]) % 16).toBe(2);
  });

  CASES.forEach((c, n) => {
    it(`${c.dtype}, B ${c.B} G ${c.G} rep ${c.rep} T ${c.T} S ${c.S} D ${c.D}, mask [${c.mask.join(', ')}]`, async () => {
      const causal = c.mask[3] > 1 && c.T >= 128;
      const { got, want, abs, skipped, tiles, sameAsNoSkip, smem } = await runCase(bin, dir, c, 100 + n, true);
      // Skipping the steps the mask blocks, and running the tiles of 0 without the mask, change no bit (every case;
      // the causal ones have such steps).
      expect(sameAsNoSkip, 'outputs byte for byte those of --no-skip').toBe(true);
      if (causal) expect(skipped + tiles.skipped).toBeGreaterThan(0);
      if (causal) expect(tiles.skipped, 'steps the tile map skipped').toBeGreaterThan(0);
      expect(tiles.unmasked > 0, 'steps run without the mask').toBe(c.zeros === true);
      // Every shared-memory access was checked against the launch's request (a violation ends the run): the
      // tiled kernels span all of it but at most the last row's padding (dK/dV's float mask tile: 8 floats, 32 bytes);
      // Dsum and the tile map use none.
      for (const k of ['flashFwd', 'flashDkDv', 'flashDq']) {
        const u = smem[k];
        expect(u?.accesses, k).toBeGreaterThan(0);
        expect(u?.lo, k).toBe(0);
        expect((u?.request as number) - (u?.hi as number), k).toBeGreaterThanOrEqual(0);
        expect((u?.request as number) - (u?.hi as number), k).toBeLessThanOrEqual(k === 'flashDkDv' ? 32 : 16);
      }
      expect(smem['flashDot'], 'flashDot').toEqual({ accesses: 0, lo: 0, hi: 0, request: 0 });
      expect(smem['flashTiles'], 'flashTiles').toEqual({ accesses: 0, lo: 0, hi: 0, request: 0 });
      const rows = want.m.length;
      const tol = TOL[c.dtype];
      for (const name of ['o', 'dq', 'dk', 'dv'] as const) {
        expect(relErr(got[name], want[name]), name).toBeLessThan(tol);
        const e = elementErr(got[name], want[name], abs[name]);
        expect(e.ratio, `${name}[${e.at}]: ${got[name][e.at]} vs ${want[name][e.at]}`).toBeLessThanOrEqual(ELEMENT_TOL[c.dtype]);
      }
      expect(relErr(got.dsum, want.dsum), 'dsum').toBeLessThan(TOL.stats);
      const ed = elementErr(got.dsum, want.dsum, abs.dsum);
      expect(ed.ratio, `dsum[${ed.at}]`).toBeLessThanOrEqual(ELEMENT_TOL.stats);
      const m = Float64Array.from({ length: rows }, (_, i) => got.stats[2 * i] as number);
      const l = Float64Array.from({ length: rows }, (_, i) => got.stats[2 * i + 1] as number);
      // The row max is exact but for float32 rounding of the scores; blocked rows' max is MASK_MIN plus a score.
      for (let i = 0; i < rows; i++)
        expect(Math.abs((m[i] as number) - (want.m[i] as number)), `m[${i}]`).toBeLessThanOrEqual(TOL.stats * Math.max(1, Math.abs(want.m[i] as number)));
      expect(relErr(l, want.l), 'l').toBeLessThan(TOL.stats);
      // l ≥ 1: each row's sum within ELEMENT_TOL.stats of itself.
      const el = elementErr(l, want.l, new Float64Array(rows));
      expect(el.ratio, `l[${el.at}]`).toBeLessThanOrEqual(ELEMENT_TOL.stats);
    });
  });
});
