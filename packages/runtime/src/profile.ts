// ORT profile traces (DeviceSessionOptions.profilePrefix → endProfiling()) summarized per op type and per node.
import { readFileSync } from 'node:fs';

/**
 * Per op type and per node: total time of the "_kernel_time" events after each node's first run (top `top`
 * of each, with shares of that total; `runs` = how many runs a node's total covers). A node's first run
 * carries one-time costs — cuBLAS/cuDNN handles and library loading, autotuning, first allocations — that
 * once made a 1 µs op look like 10 ms per step when summed over a short profile; they are reported apart
 * (`firstRunsMs`). With `CUDA_LAUNCH_BLOCKING=1` these are the GPU times of the CUDA kernels (plus a launch
 * each); without it, the host times of asynchronous launches.
 */
export interface ProfileSummary {
  file: string;
  /**
   * What `totalMs`, `top` and `nodes` sum: every node's runs after its first, or — in a trace where no node
   * ran twice (a session run once) — the first runs themselves.
   */
  basis: 'after-first' | 'first-runs';
  /** Every node's runs summed on `basis`. */
  totalMs: number;
  /** Every node's first run. */
  firstRunsMs: number;
  top: Array<{ op: string; ms: number; share: number }>;
  nodes: Array<{ node: string; op: string; ms: number; share: number; runs: number; firstMs: number }>;
}

/** Kernel time per ONNX op type and per node from an ORT profile trace, first runs apart (top 15 by default). */
export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const events = JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; ts?: number; args?: { op_name?: string } }>;
  const byNode = new Map<string, { op: string; us: number; runs: number; firstUs: number }>();
  // Events in time order, so that a node's first event is its first run.
  const kernel = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && e.dur !== undefined).sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
  for (const e of kernel) {
    const node = (e.name as string).slice(0, -'_kernel_time'.length);
    const n = byNode.get(node);
    if (n === undefined) byNode.set(node, { op: e.args?.op_name ?? '?', us: 0, runs: 0, firstUs: e.dur as number });
    else {
      n.us += e.dur as number;
      n.runs += 1;
    }
  }
  const basis = [...byNode.values()].some((n) => n.runs > 0) ? 'after-first' : 'first-runs';
  if (basis === 'first-runs') for (const n of byNode.values()) n.us = n.firstUs;
  const byOp = new Map<string, number>();
  let total = 0;
  let first = 0;
  for (const n of byNode.values()) {
    byOp.set(n.op, (byOp.get(n.op) ?? 0) + n.us);
    total += n.us;
    first += n.firstUs;
  }
  const share = (us: number) => (total > 0 ? Number((us / total).toFixed(3)) : 0);
  const ms = (us: number) => Number((us / 1000).toFixed(1));
  const rows = [...byOp.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([op, us]) => ({ op, ms: ms(us), share: share(us) }));
  const nodes = [...byNode.entries()]
    .sort((a, b) => b[1].us - a[1].us)
    .slice(0, 2 * top)
    .map(([node, n]) => ({ node, op: n.op, ms: ms(n.us), share: share(n.us), runs: n.runs, firstMs: ms(n.firstUs) }));
  return { file, basis, totalMs: ms(total), firstRunsMs: ms(first), top: rows, nodes };
}
