import { describe, expect, it } from 'vitest';
import { categoryOf, parseKprof, profileTable, stepWindows, summarize } from './kernel-profile.js';

// Timestamps as CUPTI gives them: ns since the epoch, beyond 2^53, so exact only as BigInt.
const BASE = 1764900000000000000n;
// The case's times are in µs (U ns each): a step's optimizer kernels within the 100 µs merge gap, steps further apart.
const U = 1000;
const rec = (s: number, e: number, name: number, stream = 7) => `K ${BASE + BigInt(s * U)} ${BASE + BigInt(e * U)} ${stream} ${name}`;
const NAMES = ['sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n', 'adamw_f32_to_bf16', 'flash_bf16_fwd_d64', '[memcpy HtoD]'];
const RECORDS = [
  rec(0, 1000, 0), // before the first optimizer run: not a whole step
  rec(1000, 1100, 1),
  rec(1100, 1200, 1), // step boundary: the end of the run of two
  rec(1300, 2300, 0),
  rec(2000, 2500, 2, 9), // overlaps the Gemm by 300 ns on another stream
  rec(2600, 2700, 3),
  rec(2800, 2900, 1),
  rec(3000, 3500, 0),
  rec(3600, 3800, 1),
];
const header = (records: number, names = NAMES.length) =>
  `# kprof 1 pid 42 records ${records} names ${names} buffers_lost 0 invalid 3 incomplete 0 out_of_memory 0`;
const file = (records = RECORDS, head = header(records.length)) => [head, ...NAMES.map((n, i) => `N ${i} ${n}`), ...[...records].reverse()].join('\n');

describe('kernel profiles from kprof records', () => {
  it('parses records exactly, relative to the first start, sorted by start', () => {
    const f = parseKprof(file());
    expect(f.pid).toBe(42);
    expect(f.lost).toEqual({ buffers: 0, invalid: 3, incomplete: 0, outOfMemory: false });
    expect(f.names).toEqual(NAMES);
    expect(f.records.map((r) => [r.start, r.end, r.name])).toEqual(
      RECORDS.map((_, i) => {
        const [s, e, n] = (RECORDS[i] as string)
          .split(' ')
          .slice(1, 5)
          .filter((_, j) => j !== 2);
        return [Number(BigInt(s as string) - BASE), Number(BigInt(e as string) - BASE), Number(n)];
      }),
    );
    expect(f.records[4]).toEqual({ start: 2000 * U, end: 2500 * U, stream: 9, name: 2 });
    expect(f.records[0]?.start).toBe(0); // exact ns offsets from the first start, below 2^53 once relative
  });

  it('splits steps at the end of each run of optimizer kernels', () => {
    expect(stepWindows(parseKprof(file()), /adam/i)).toEqual([
      [1200 * U, 2900 * U],
      [2900 * U, 3800 * U],
    ]);
    // A record between two of a run's optimizer kernels (a memset, another stream) does not split the run ...
    const split = [...RECORDS.slice(0, 2), rec(1100, 1150, 3, 9), ...RECORDS.slice(2)];
    expect(stepWindows(parseKprof(file(split)), /adam/i)).toEqual([
      [1200 * U, 2900 * U],
      [2900 * U, 3800 * U],
    ]);
    // ... but optimizer kernels further apart than the merge gap are two steps.
    expect(stepWindows(parseKprof(file()), /adam/i, 50 * U)).toEqual([
      [1200 * U, 2900 * U],
      [2900 * U, 3800 * U],
    ]);
    expect(stepWindows(parseKprof(file([...RECORDS.slice(0, 2), rec(1300, 1400, 1), ...RECORDS.slice(2)])), /adam/i, 50 * U)).toEqual([
      [1200 * U, 1400 * U],
      [1400 * U, 2900 * U],
      [2900 * U, 3800 * U],
    ]);
  });

  it('sums time per step: wall, GPU busy as the union of intervals, idle, per kernel and category', () => {
    const f = parseKprof(file());
    const s = summarize(f, stepWindows(f, /adam/i), { label: 'ours', skip: 0 });
    const NS = 1e-6 * U; // ms per µs of the case
    expect(s.steps).toBe(2);
    expect(s.stepMs).toBeCloseTo(((1700 + 900) / 2) * NS, 12);
    // Window 1: Gemm 1,000 + the flash kernel's 200 not under it + memcpy 100 + AdamW 100; window 2: 500 + 200.
    expect(s.busyMs).toBeCloseTo(((1400 + 700) / 2) * NS, 12);
    expect(s.idleMs).toBeCloseTo(((300 + 200) / 2) * NS, 12);
    expect(s.kernelsPerStep).toBe(3);
    expect(s.top.map((r) => [r.name, Math.round(r.msPerStep / NS), r.countPerStep])).toEqual([
      [NAMES[0], 750, 1],
      [NAMES[2], 250, 0.5],
      [NAMES[1], 150, 1],
      [NAMES[3], 50, 0.5],
    ]);
    expect(Object.fromEntries(Object.entries(s.categories).map(([c, v]) => [c, Math.round(v / NS)]))).toEqual({
      matmul: 750,
      'attention: flash': 250,
      'optimizer + clip': 150,
      'copies / transposes': 50,
    });
    const late = summarize(f, stepWindows(f, /adam/i), { label: 'ours', skip: 1 });
    expect([late.steps, Math.round(late.busyMs / NS), Math.round(late.idleMs / NS)]).toEqual([1, 700, 200]);
    // A record of the first window running on into the second (another stream) counts as busy there too.
    const long = parseKprof(file([...RECORDS.slice(0, 6), rec(2850, 3100, 0, 9), ...RECORDS.slice(6)]));
    const carried = summarize(long, stepWindows(long, /adam/i), { label: 'ours', skip: 1 });
    expect(Math.round(carried.busyMs / NS)).toBe(700 + 100); // 2,900–3,000, before the second window's Gemm
    expect(profileTable([s, late])).toContain('| GPU idle | 0.3 | 0.2 |');
  });

  it('cuts the idle time into its gaps, by size, with the records either side of the longest', () => {
    // Gaps of window 1 (1,200–2,900): 100 before the Gemm, 100 flash → memcpy, 100 memcpy → AdamW; window 2:
    // 100 before the Gemm, 100 Gemm → AdamW. With a 5 µs gap added (Gemm 3,000–3,500, then a memcpy at 3,505).
    const f = parseKprof(file([...RECORDS.slice(0, 8), rec(3505, 3550, 3), ...RECORDS.slice(8)]));
    const s = summarize(f, stepWindows(f, /adam/i), { label: 'ours', skip: 0 });
    const NS = 1e-6 * U;
    const sum = s.gaps.buckets.reduce((a, b) => a + b.msPerStep, 0);
    expect(sum).toBeCloseTo(s.idleMs, 12); // the gaps are the idle time, all of it
    expect(s.gaps.buckets.map((b) => [b.label, Math.round(b.msPerStep / NS), b.countPerStep])).toEqual([
      ['< 10 µs', 3, 0.5],
      ['10–100 µs', 25, 0.5],
      ['100 µs–1 ms', 200, 2],
      ['≥ 1 ms', 0, 0],
    ]);
    // Window 2 now: 100 before the Gemm, 5 Gemm → memcpy, 50 memcpy → AdamW (10–100 µs).
    expect(s.gaps.largest.map((g) => [Math.round(g.ms / NS), g.step, Math.round(g.atMs / NS), g.prev, g.next])).toEqual([
      [100, 0, 0, '(step start)', NAMES[0]],
      [100, 0, 1300, NAMES[2], NAMES[3]],
      [100, 0, 1500, NAMES[3], NAMES[1]],
      [100, 1, 0, '(step start)', NAMES[0]],
      [50, 1, 650, NAMES[3], NAMES[1]],
      [5, 1, 600, NAMES[0], NAMES[3]],
    ]);
    // A record (another stream) from before the first window to inside the second: the first window has no gap,
    // and the second's first gap comes after that record, by name, though it started before the first window.
    const spanning = parseKprof(file([...RECORDS.slice(0, 2), rec(1150, 2950, 2, 9), ...RECORDS.slice(2)]));
    const sp = summarize(spanning, stepWindows(spanning, /adam/i), { label: 'ours', skip: 0 });
    expect(sp.gaps.largest.map((g) => [Math.round(g.ms / NS), g.step, g.prev, g.next])).toEqual([
      [100, 1, NAMES[0], NAMES[1]],
      [50, 1, NAMES[2], NAMES[0]],
    ]);
    const table = profileTable([s]);
    expect(table).toContain('| idle in gaps 100 µs–1 ms (gaps) | 0.2 (2) |');
    expect(table).toContain(`| 0.050 | 1 | 0.65 | \`${NAMES[3]}\` | \`${NAMES[1]}\` |`);
  });

  it('names the kernels of ours, cuBLAS and PyTorch by category', () => {
    expect(categoryOf('nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NTN')).toBe('matmul');
    expect(categoryOf('flash_bf16_dkdv_d128')).toBe('attention: flash');
    expect(categoryOf('msoftmax_bf16_grad')).toBe('attention: softmax');
    expect(
      categoryOf(
        'void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::(anonymous namespace)::LogSoftMaxForwardEpilogue>',
      ),
    ).toBe('cross-entropy');
    expect(categoryOf('void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, SoftMaxForwardEpilogue>')).toBe(
      'attention: softmax',
    );
    expect(categoryOf('void onnxruntime::cuda::_ExpandKernel2D<broadcast>')).not.toBe('casts');
    expect(categoryOf('ce_bf16_grad')).toBe('cross-entropy');
    expect(categoryOf('void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>')).toBe('optimizer + clip');
    expect(categoryOf('seeded_dropout_bf16')).toBe('dropout');
    expect(categoryOf('cast_f32_to_bf16')).toBe('casts');
    expect(categoryOf('void onnxruntime::cuda::_BinaryElementWiseSimple<true, true, __nv_bfloat16>')).toBe('other');
  });

  it('refuses a file cut short or malformed, naming the file and line', () => {
    expect(() => parseKprof(`${file()}\nK 0 2 3 1`, 'kp.1')).toThrow('kp.1:15: not a timed record (start 0 or end before start)');
    expect(() => parseKprof(file(RECORDS.slice(0, 3), header(9)), 'kp.1')).toThrow(
      'kp.1: the header says 9 records and 4 names, the file has 3 and 4 (cut short?)',
    );
    expect(() => parseKprof(`${file()}\nK 1 2 3`, 'kp.1')).toThrow("kp.1:15: expected 'K <start> <end> <stream> <name id>'");
    expect(() => parseKprof(`${file()}\nK 1 2 3 9`, 'kp.1')).toThrow('kp.1:15: name id 9 is not among the 4 names');
    expect(() => parseKprof('hello', 'kp.1')).toThrow('kp.1:1: not a kprof records file');
    const f = parseKprof(file());
    expect(() => summarize(f, stepWindows(f, /adam/i), { label: 'x', skip: 2 })).toThrow('x: 2 step windows, none left after skipping 2');
  });
});
