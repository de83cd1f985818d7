// GPU kernel profiles from kprof's records (tools/bench/kprof/kprof.c: CUPTI's start and end of every kernel,
// memcpy and memset of one process): split into training steps at the optimizer's kernels and summed per step,
// so ours and PyTorch's steps can be set side by side kernel by kernel, with the GPU's idle time beside them.

/** One record: GPU start and end (ns, relative to the file's first start), stream, index into `names`. */
export interface KernelRecord {
  start: number;
  end: number;
  stream: number;
  name: number;
}

export interface KprofFile {
  pid: number;
  names: string[];
  /** Sorted by start. */
  records: KernelRecord[];
  /** What the recorder lost: buffers CUPTI could not get, records it could not time, buffers cut at an unfinished record. */
  lost: { buffers: number; invalid: number; incomplete: number; outOfMemory: boolean };
}

/** Parses a kprof records file; a malformed line is an error naming `file` and the line. */
export function parseKprof(text: string, file = '<kprof>'): KprofFile {
  const lines = text.split('\n');
  const head = /^# kprof 1 pid (\d+) records (\d+) names (\d+) buffers_lost (\d+) invalid (\d+) incomplete (\d+) out_of_memory ([01])$/.exec(lines[0] ?? '');
  if (!head) throw new Error(`${file}:1: not a kprof records file (expected '# kprof 1 pid …')`);
  const names: string[] = [];
  const raw: { start: bigint; end: bigint; stream: number; name: number }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    if (line.startsWith('N ')) {
      const m = /^N (\d+) (.*)$/.exec(line);
      if (!m || Number(m[1]) !== names.length) throw new Error(`${where}: expected name ${names.length} as 'N ${names.length} <name>'`);
      names.push(m[2] as string);
    } else if (line.startsWith('K ')) {
      const m = /^K (\d+) (\d+) (\d+) (\d+)$/.exec(line);
      if (!m) throw new Error(`${where}: expected 'K <start> <end> <stream> <name id>'`);
      const r = { start: BigInt(m[1] as string), end: BigInt(m[2] as string), stream: Number(m[3]), name: Number(m[4]) };
      if (r.name >= names.length) throw new Error(`${where}: name id ${r.name} is not among the ${names.length} names`);
      if (r.end < r.start || r.start === 0n) throw new Error(`${where}: not a timed record (start 0 or end before start)`);
      raw.push(r);
    } else throw new Error(`${where}: unknown line '${line.slice(0, 40)}'`);
  }
  if (raw.length !== Number(head[2]) || names.length !== Number(head[3]))
    throw new Error(`${file}: the header says ${head[2]} records and ${head[3]} names, the file has ${raw.length} and ${names.length} (cut short?)`);
  // Timestamps are ns since the epoch (beyond 2^53): made relative to the first start while still exact.
  const base = raw.reduce((b, r) => (r.start < b ? r.start : b), raw[0]?.start ?? 0n);
  const records = raw
    .map((r) => ({ start: Number(r.start - base), end: Number(r.end - base), stream: r.stream, name: r.name }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  return {
    pid: Number(head[1]),
    names,
    records,
    lost: { buffers: Number(head[4]), invalid: Number(head[5]), incomplete: Number(head[6]), outOfMemory: head[7] === '1' },
  };
}

/**
 * Step windows [from, to) (ns): a step ends with the last of a run of records whose names match `marker` (the
 * optimizer's kernels: the update is a step's last work), a run being marker records each starting within
 * `mergeNs` (default 100 µs) of the previous one's end, whatever else runs between them (a memset, another
 * stream). Steps are milliseconds apart, so two steps' updates never merge. The records before the first run are
 * not a whole step and are left out.
 */
export function stepWindows(f: KprofFile, marker: RegExp, mergeNs = 100_000): [number, number][] {
  const ends: number[] = [];
  const marks = f.records.filter((r) => marker.test(f.names[r.name] as string));
  for (let i = 0; i < marks.length; i++) {
    const r = marks[i] as KernelRecord;
    const next = marks[i + 1];
    if (next === undefined || next.start > r.end + mergeNs) ends.push(r.end);
  }
  const out: [number, number][] = [];
  for (let i = 1; i < ends.length; i++) out.push([ends[i - 1] as number, ends[i] as number]);
  return out;
}

/** Kernel categories, first match wins (names as CUPTI gives them: ours, cuBLAS, ORT's and PyTorch's kernels). */
export const CATEGORIES: readonly [string, RegExp][] = [
  ['attention: flash', /^flash_|flash_fwd|flash_bwd|fmha|sdpa/i],
  ['cross-entropy', /^ce_|cross_entropy|log_?softmax|nll_loss/i],
  ['attention: softmax', /^msoftmax_|softmax/i],
  ['matmul', /gemm|gemv|cutlass|xmma|nvjet|splitKreduce|cublas/i],
  ['optimizer + clip', /^adamw_|adam|^sumsq_|multi_tensor_apply|LpNorm/i],
  ['rmsnorm / swiglu / rope', /^rmsnorm_|^swiglu_|^rope_|rms_norm|silu|rotary/i],
  ['dropout', /^seeded_dropout_|^hash_words|dropout/i],
  ['casts', /^cast_|(?<!broad)cast/i],
  ['copies / transposes', /^\[memcpy|^\[memset|transpose|copy|concat|gather|scatter|slice/i],
];
export const categoryOf = (name: string) => CATEGORIES.find(([, re]) => re.test(name))?.[0] ?? 'other';

export interface KernelRow {
  name: string;
  category: string;
  msPerStep: number;
  countPerStep: number;
}

export interface ProfileSummary {
  label: string;
  /** Steps summed (after `skip`). */
  steps: number;
  /** Mean wall time of a step window on the GPU clock (ms). */
  stepMs: number;
  /** Mean time per step with at least one record running (ms): the union of their intervals. */
  busyMs: number;
  /** stepMs − busyMs: the GPU idle, waiting for the host. */
  idleMs: number;
  kernelsPerStep: number;
  /** Summed record time per step by category (ms; overlapping records count each). */
  categories: Record<string, number>;
  top: KernelRow[];
  /** The idle time cut into its gaps (where no record runs), by size: what kind of wait it is. */
  gaps: GapSummary;
}

/**
 * The GPU's idle gaps in the step windows. Many gaps of a few µs each are the host launching kernels more slowly
 * than the GPU runs them; few long ones are the host blocked (a synchronizing copy, an allocation, work between
 * session runs). `buckets` sum the gaps by size (per step); `largest` are the longest, with the records either side
 * (`step`: the window's index after the skipped ones; `atMs`: where in it the gap starts).
 */
export interface GapSummary {
  buckets: { label: string; msPerStep: number; countPerStep: number }[];
  largest: { ms: number; step: number; atMs: number; prev: string; next: string }[];
}

/** Gap size classes (µs, lower bound inclusive). */
export const GAP_BUCKETS: readonly [string, number][] = [
  ['< 10 µs', 0],
  ['10–100 µs', 10],
  ['100 µs–1 ms', 100],
  ['≥ 1 ms', 1000],
];

/** Sums the records of the step windows after the first `skip` (warm-up) ones. */
export function summarize(f: KprofFile, windows: [number, number][], opts: { label: string; skip?: number; top?: number }): ProfileSummary {
  const skip = opts.skip ?? 1;
  const used = windows.slice(skip);
  if (used.length === 0) throw new Error(`${opts.label}: ${windows.length} step windows, none left after skipping ${skip}`);
  let wall = 0;
  let busy = 0;
  let count = 0;
  const perName = new Map<number, { ms: number; n: number }>();
  const bucketNs = GAP_BUCKETS.map(() => 0);
  const bucketN = GAP_BUCKETS.map(() => 0);
  const gaps: { ns: number; step: number; at: number; prev: string; next: string }[] = [];
  const addGap = (from: number, s: number, e: number, step: number, prev: string, next: string) => {
    const ns = e - s;
    if (ns <= 0) return;
    let b = GAP_BUCKETS.length - 1;
    while (b > 0 && ns < (GAP_BUCKETS[b] as [string, number])[1] * 1000) b--;
    bucketNs[b] = (bucketNs[b] as number) + ns;
    bucketN[b] = (bucketN[b] as number) + 1;
    gaps.push({ ns, step, at: s - from, prev, next });
  };
  let ri = 0;
  let reach = 0; // the latest end of the records before the window (one may run on into it, on another stream)
  const rs = f.records;
  let reachName = '(step start)'; // the record `reach` is the end of (kept across windows, as `reach` is)
  for (const [wi, [from, to]] of used.entries()) {
    wall += to - from;
    while (ri < rs.length && (rs[ri] as KernelRecord).start < from) {
      const r = rs[ri++] as KernelRecord;
      if (r.end > reach) [reach, reachName] = [r.end, f.names[r.name] as string];
    }
    let covered = Math.max(from, Math.min(reach, to)); // union of intervals: records sorted by start
    let coveredBy = reach > from ? reachName : '(step start)';
    busy += covered - from;
    for (let j = ri; j < rs.length && (rs[j] as KernelRecord).start < to; j++) {
      const r = rs[j] as KernelRecord;
      const s = Math.max(r.start, covered);
      const e = Math.min(r.end, to);
      if (e > s) busy += e - s;
      addGap(from, covered, Math.min(r.start, to), wi, coveredBy, f.names[r.name] as string);
      if (Math.min(r.end, to) > covered) [covered, coveredBy] = [Math.min(r.end, to), f.names[r.name] as string];
      count++;
      const p = perName.get(r.name) ?? { ms: 0, n: 0 };
      p.ms += (r.end - r.start) / 1e6;
      p.n++;
      perName.set(r.name, p);
    }
    addGap(from, covered, to, wi, coveredBy, '(step end)');
  }
  const n = used.length;
  const rows: KernelRow[] = [...perName].map(([id, p]) => {
    const name = f.names[id] as string;
    return { name, category: categoryOf(name), msPerStep: p.ms / n, countPerStep: p.n / n };
  });
  rows.sort((a, b) => b.msPerStep - a.msPerStep);
  const categories: Record<string, number> = {};
  for (const r of rows) categories[r.category] = (categories[r.category] ?? 0) + r.msPerStep;
  return {
    label: opts.label,
    steps: n,
    stepMs: wall / n / 1e6,
    busyMs: busy / n / 1e6,
    idleMs: (wall - busy) / n / 1e6,
    kernelsPerStep: count / n,
    categories,
    top: rows.slice(0, opts.top ?? 25),
    gaps: {
      buckets: GAP_BUCKETS.map(([label], b) => ({ label, msPerStep: (bucketNs[b] as number) / n / 1e6, countPerStep: (bucketN[b] as number) / n })),
      largest: gaps
        .sort((a, b) => b.ns - a.ns)
        .slice(0, 10)
        .map((g) => ({ ms: g.ns / 1e6, step: g.step, atMs: g.at / 1e6, prev: g.prev, next: g.next })),
    },
  };
}

const f1 = (x: number) => x.toFixed(1);

/** Markdown: the profiles side by side by category, then each one's top kernels. */
export function profileTable(ps: readonly ProfileSummary[]): string {
  const cats = [...CATEGORIES.map(([c]) => c), 'other'].filter((c) => ps.some((p) => (p.categories[c] ?? 0) > 0));
  const out = [
    `| ms per step | ${ps.map((p) => p.label).join(' | ')} |`,
    `|---|${ps.map(() => '---:').join('|')}|`,
    `| step (GPU clock) | ${ps.map((p) => f1(p.stepMs)).join(' | ')} |`,
    `| GPU busy | ${ps.map((p) => f1(p.busyMs)).join(' | ')} |`,
    `| GPU idle | ${ps.map((p) => f1(p.idleMs)).join(' | ')} |`,
    `| kernels per step | ${ps.map((p) => Math.round(p.kernelsPerStep)).join(' | ')} |`,
    ...cats.map((c) => `| ${c} | ${ps.map((p) => f1(p.categories[c] ?? 0)).join(' | ')} |`),
    ...GAP_BUCKETS.map(
      ([label], b) =>
        `| idle in gaps ${label} (gaps) | ${ps.map((p) => `${f1(p.gaps.buckets[b]?.msPerStep ?? 0)} (${Math.round(p.gaps.buckets[b]?.countPerStep ?? 0)})`).join(' | ')} |`,
    ),
  ];
  for (const p of ps) {
    out.push('', `${p.label}: top kernels (${p.steps} steps)`, '', '| kernel | category | ms per step | per step |', '|---|---|---:|---:|');
    for (const r of p.top) out.push(`| \`${r.name.slice(0, 100)}\` | ${r.category} | ${r.msPerStep.toFixed(2)} | ${Math.round(r.countPerStep)} |`);
    out.push('', `${p.label}: longest idle gaps`, '', '| ms | step | at ms | previous record | next record |', '|---:|---:|---:|---|---|');
    for (const g of p.gaps.largest)
      out.push(`| ${g.ms.toFixed(3)} | ${g.step} | ${g.atMs.toFixed(2)} | \`${g.prev.slice(0, 60)}\` | \`${g.next.slice(0, 60)}\` |`);
  }
  return out.join('\n');
}
