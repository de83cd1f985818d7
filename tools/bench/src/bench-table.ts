// Turns the output of run-gpu.sh (lines "BENCH {json}" and "PEAK <MiB> MiB rc=<n> :: <cmd>") into one
// Markdown table: ours vs PyTorch per benchmark, tokens/s, TFLOP/s, peak GPU memory and the ratio.
// A PEAK line belongs to the BENCH lines printed since the previous PEAK (one command each).

type Row = Record<string, unknown> & { bench: string; impl?: string };

/** BENCH records with `peak_gpu_mib` attached from the PEAK line of the command that printed them. */
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
    const p = /^PEAK (\d+) MiB/.exec(line);
    if (p) {
      for (const r of pending) r['peak_gpu_mib'] = Number(p[1]);
      rows.push(...pending);
      pending = [];
    }
  }
  return [...rows, ...pending];
}

const fmt = (v: unknown, digits = 0): string => (typeof v === 'number' ? v.toFixed(digits) : '–');
const rate = (r: Row): number | undefined => (r['tokens_per_s'] ?? r['new_tokens_per_s']) as number | undefined;

/** The comparison table (Markdown). */
export function benchTable(rows: readonly Row[]): string {
  const ours = rows.filter((r) => r.impl === 'latent-sft-ort');
  const torch = rows.filter((r) => r.impl?.startsWith('pytorch'));
  const lines = ['| benchmark | ours tokens/s | PyTorch tokens/s | ours / PyTorch | ours TFLOP/s | PyTorch TFLOP/s | ours peak GPU MiB | PyTorch peak GPU MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const o of ours) {
    const t = torch.find((x) => x.bench === o.bench);
    const ro = rate(o);
    const rt = t ? rate(t) : undefined;
    // A run with some fused kernels off (an ablation) names the ones it used.
    const f = o['fused'];
    const parts = typeof f === 'object' && f !== null ? Object.entries(f as Record<string, boolean>) : [];
    const fusedNote = parts.some(([, on]) => !on) ? ` (fused: ${parts.filter(([, on]) => on).map(([k]) => k).join(', ') || 'none'})` : '';
    lines.push(`| ${o.bench}${o['mode'] ? ` (${String(o['mode'])})` : ''}${fusedNote} | ${fmt(ro)} | ${fmt(rt)} | ${ro !== undefined && rt !== undefined ? `${(ro / rt).toFixed(2)}×` : '–'} | ${fmt(o['tflops'], 1)} | ${fmt(t?.['tflops'], 1)} | ${fmt(o['peak_gpu_mib'])} | ${fmt(t?.['peak_gpu_mib'])} |`);
  }
  return lines.join('\n');
}

