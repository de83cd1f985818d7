// Turns the output of run-gpu.sh (lines "BENCH {json}" and "PEAK <MiB> MiB rc=<n> :: <cmd>") into one
// Markdown table: ours vs PyTorch per benchmark, tokens/s, TFLOP/s, peak GPU memory and the ratio.
// A PEAK line belongs to the BENCH lines printed since the previous PEAK (one command each).

type Row = Record<string, unknown> & { bench: string; impl?: string };

/** BENCH records with `peak_gpu_mib` (and `cmd`) attached from the PEAK line of the command that printed them. */
export function parseBenchLog(text: string): Row[] {
  const rows: Row[] = [];
  let pending: Row[] = [];
  for (const line of text.split('\n')) {
    const b = /^BENCH (\{.*\})\s*$/.exec(line);
    if (b) {
      const r = JSON.parse(b[1] as string) as Row;
      if (r.impl !== undefined) pending.push(r);
      continue;
    }
    const p = /^PEAK (\d+) MiB(?:.*? :: (.*))?/.exec(line);
    if (p) {
      for (const r of pending) {
        r['peak_gpu_mib'] = Number(p[1]);
        if (p[2] !== undefined) r['cmd'] = p[2];
      }
      rows.push(...pending);
      pending = [];
    }
  }
  return [...rows, ...pending];
}

const fmt = (v: unknown, digits = 0): string => (typeof v === 'number' ? v.toFixed(digits) : '–');
const rate = (r: Row): number | undefined => (r['tokens_per_s'] ?? r['new_tokens_per_s']) as number | undefined;

/**
 * "bench (mode) (fused: …) (double-buffered state) (bfloat16 params)": a run whose fused kernels are not the
 * defaults (one off: an ablation; an opt-in one on: weightCopies, attention, rope) names the ones it used; a run whose
 * Trainer double-buffered its state says so (in place is the
 * default); a run with 16-bit parameters (train-bench --params) names their dtype (float32 masters are the default).
 */
const OPT_IN = ['weightCopies', 'attention', 'rope'];
function oursLabel(o: Row): string {
  const f = o['fused'];
  const parts = typeof f === 'object' && f !== null ? Object.entries(f as Record<string, boolean>) : [];
  const fusedNote = parts.some(([k, on]) => on === OPT_IN.includes(k))
    ? ` (fused: ${
        parts
          .filter(([, on]) => on)
          .map(([k]) => k)
          .join(', ') || 'none'
      })`
    : '';
  const stateNote = o['state'] === 'double-buffered' ? ' (double-buffered state)' : '';
  const paramsNote = o['params'] !== undefined && o['params'] !== 'float32' ? ` (${String(o['params'])} params)` : '';
  const recomputeNote = o['recompute'] === 'layers' ? ' (recompute layers)' : '';
  const staticNote = o['static_shapes'] === true && o['cuda_graph'] !== true ? ' (static shapes)' : '';
  return `${o.bench}${o['mode'] ? ` (${String(o['mode'])})` : ''}${fusedNote}${stateNote}${paramsNote}${recomputeNote}${staticNote}${genEngineNote(o)}`;
}

/** The settings that make two training runs the same computation (all but how the step is launched). */
const sameRun = (a: Row, b: Row): boolean =>
  ['bench', 'model', 'batch', 'seq', 'params', 'frozen', 'recompute', 'compute'].every((k) => a[k] === b[k]) &&
  JSON.stringify(a['fused']) === JSON.stringify(b['fused']);

/**
 * A CUDA-graph run (session 10's Trainer.cudaGraph, removed since: its losses differed) says whether its
 * losses are those of the same run launched node by node, bit for bit, or that no such run is in the log.
 */
function graphNote(o: Row, ours: readonly Row[]): string {
  if (o['cuda_graph'] !== true) return '';
  const launched = ours.find((x) => x !== o && x['cuda_graph'] === false && x['static_shapes'] !== true && sameRun(x, o));
  if (launched === undefined || !Array.isArray(o['losses']) || !Array.isArray(launched['losses'])) return ' (CUDA graph; no launched run to compare losses)';
  const same = JSON.stringify(o['losses']) === JSON.stringify(launched['losses']);
  return same ? " (CUDA graph; losses bit for bit the launched run's)" : " (CUDA graph; losses DIFFER from the launched run's)";
}

/** A generation run's non-defaults: latent_sft.DecodeAttention, ONNX TopK instead of VocabTopK, the hidden-state feed. */
function genEngineNote(o: Row): string {
  // (Records of session 9's lease B2 lack `topk`: their command line says it.)
  const topkOps = o['topk'] === 'ops' || / --topk ops\b/.test(String(o['cmd'] ?? ''));
  const notes = [o['attention'] === 'fused' ? 'DecodeAttention' : '', topkOps ? 'ONNX TopK' : '', o['feed'] === 'hidden' ? 'hidden-state feed' : ''].filter(
    (n) => n !== '',
  );
  return notes.length === 0 ? '' : ` (${notes.join(', ')})`;
}

/**
 * The comparison table (Markdown): one line per (ours, PyTorch recipe) pair of a benchmark, each with its
 * ratio, so every anchor the bench ran (eager, fused AdamW, torch.compile, ...) is compared, not only one.
 * A PyTorch recipe that failed shows its error; a benchmark with no run of ours still lists PyTorch's.
 */
export function benchTable(rows: readonly Row[]): string {
  const steps = rows.filter((r) => r.bench !== 'gemm');
  const ours = steps.filter((r) => r.impl === 'latent-sft-ort');
  const torch = steps.filter((r) => r.impl?.startsWith('pytorch'));
  const lines = [
    '| benchmark | ours tokens/s | PyTorch recipe | PyTorch tokens/s | ours / PyTorch | ours TFLOP/s | PyTorch TFLOP/s | ours peak GPU MiB | PyTorch peak GPU MiB | PyTorch allocated GiB |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const line = (o: Row | undefined, t: Row | undefined, label: string): string => {
    const ro = o ? rate(o) : undefined;
    const rt = t ? rate(t) : undefined;
    const recipe = t ? String(t['recipe'] ?? t['attn'] ?? t.impl) : '–';
    const tRate = t?.['error'] !== undefined ? `error: ${String(t['error']).split('\n')[0]?.slice(0, 60)}` : fmt(rt);
    const ratio = ro !== undefined && rt !== undefined ? `${(ro / rt).toFixed(2)}×` : '–';
    return `| ${label} | ${fmt(ro)} | ${recipe} | ${tRate} | ${ratio} | ${fmt(o?.['tflops'], 1)} | ${fmt(t?.['tflops'], 1)} | ${fmt(o?.['peak_gpu_mib'])} | ${fmt(t?.['peak_gpu_mib'])} | ${fmt(t?.['peak_gib_torch'] ?? t?.['peak_gib'], 1)} |`;
  };
  for (const o of ours) {
    const ts = torch.filter((x) => x.bench === o.bench);
    const label = oursLabel(o) + graphNote(o, ours);
    if (ts.length === 0) lines.push(line(o, undefined, label));
    for (const t of ts) lines.push(line(o, t, label));
  }
  for (const t of torch) if (!ours.some((o) => o.bench === t.bench)) lines.push(line(undefined, t, t.bench));
  return lines.join('\n');
}

/**
 * The generation table (Markdown): every run of the "gen" benchmarks (ours explicit / latent, each HF
 * recipe) with new tokens/s (prefill included), ms per decode step, and the fraction of the GPU's
 * memory-bandwidth limit for a decode step (weights + the KV cache read once per step, at the spec
 * bandwidth ours records): limit tokens/s = batch / (bytes per step / bandwidth).
 */
export function genTable(rows: readonly Row[]): string {
  const gens = rows.filter((r) => r.bench.startsWith('gen') && r.impl !== undefined);
  const ours = gens.find((r) => r.impl === 'latent-sft-ort' && typeof r['bandwidth_limit_tokens_per_s'] === 'number');
  const limit = ours?.['bandwidth_limit_tokens_per_s'] as number | undefined;
  const lines = [
    `| generation run | new tokens/s | ms / decode step | decode tokens/s | of the bandwidth limit${limit !== undefined ? ` (${limit.toFixed(0)} tokens/s)` : ''} | peak GPU MiB |`,
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of gens) {
    const label =
      r.impl === 'latent-sft-ort'
        ? `ours, ${String(r['mode'] ?? 'explicit')}${r['engine'] ? ` (${String(r['engine'])})` : ''}${genEngineNote(r)}`
        : String(r['recipe'] ?? r.impl);
    const ms = (r['decode_ms_per_step'] ?? r['ms_per_step']) as number | undefined;
    const batch = r['batch'] as number | undefined;
    const decodeRate = ms !== undefined && batch !== undefined ? (1000 * batch) / ms : undefined;
    const frac = decodeRate !== undefined && limit !== undefined ? `${((100 * decodeRate) / limit).toFixed(1)} %` : '–';
    const err = r['error'] !== undefined ? `error: ${String(r['error']).split('\n')[0]?.slice(0, 60)}` : fmt(rate(r));
    lines.push(`| ${label} | ${err} | ${fmt(ms, 2)} | ${fmt(decodeRate)} | ${frac} | ${fmt(r['peak_gpu_mib'])} |`);
  }
  return lines.join('\n');
}

/**
 * The matrix-product table (Markdown) of gemm-probe and bench_torch.py --which gemm: per shape, ORT's Gemm
 * and torch.matmul in us and TFLOP/s, and ORT's time over PyTorch's (above 1: ORT's kernel is slower).
 * The method column says how ORT's us was measured: `slope R1→R2` (gemm-probe now: the extra time of a
 * graph of R2 nodes over one of R1, per extra node; the per-run fixed cost, the intercept, in its own
 * column), or, for a record without `method` (session 10's probe), `run / 16`: one graph's run time over
 * its 16 nodes, so 1/16 of the run's fixed cost is in it.
 */
export function gemmTable(rows: readonly Row[]): string {
  const gemms = rows.filter((r) => r.bench === 'gemm');
  const lines = [
    '| product (M × N × K, trans) | ORT method | ORT us | ORT TFLOP/s | ORT per-run fixed cost us | PyTorch us | PyTorch TFLOP/s | ORT / PyTorch time |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const o of gemms.filter((r) => r.impl === 'latent-sft-ort')) {
    const t = gemms.find((r) => r.impl === 'pytorch' && r['shape'] === o['shape'] && (r['dtype'] ?? 'bfloat16') === (o['dtype'] ?? 'bfloat16'));
    const [uo, ut] = [o['us'] as number | undefined, t?.['us'] as number | undefined];
    const dims = `${String(o['m'])} × ${String(o['n'])} × ${String(o['k'])}, ${o['trans_a'] ? 'T' : 'N'}${o['trans_b'] ? 'T' : 'N'}`;
    const op = o['op'] === 'matmul' ? ', ORT MatMul on untransposed operands' : '';
    const method =
      o['method'] === undefined
        ? 'run / 16 (fixed cost in)'
        : o['method'] === 'slope'
          ? `slope ${String(o['r1'] ?? '?')}→${String(o['r2'] ?? '?')}`
          : String(o['method']);
    const ratio = typeof uo === 'number' && typeof ut === 'number' ? `${(uo / ut).toFixed(2)}×` : '–';
    lines.push(
      `| ${String(o['shape'])} (${dims}${op}) | ${method} | ${fmt(uo, 1)} | ${fmt(o['tflops'], 0)} | ${fmt(o['run_overhead_us'], 1)} | ${fmt(ut, 1)} | ${fmt(t?.['tflops'], 0)} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}
