// ORT profile traces (DeviceSessionOptions.profilePrefix → endProfiling()) summarized per op type.
import { readFileSync } from 'node:fs';

/** Per op type: total time of its nodes' "_kernel_time" events (top `top`, with shares of the total). */
export interface ProfileSummary {
  file: string;
  totalMs: number;
  top: Array<{ op: string; ms: number; share: number }>;
}

/** Total kernel time per ONNX op type from an ORT profile trace (top 15 by default, with shares). */
export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const events = JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; args?: { op_name?: string } }>;
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || e.dur === undefined) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    total += e.dur;
  }
  const rows = [...byOp.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([op, us]) => ({ op, ms: Number((us / 1000).toFixed(1)), share: Number((us / total).toFixed(3)) }));
  return { file, totalMs: Number((total / 1000).toFixed(1)), top: rows };
}
