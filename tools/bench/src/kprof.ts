// CLI of kernel-profile.ts: GPU kernel time per training step from kprof records files (tools/bench/kprof).
// Usage: tsx src/kprof.ts FILE=LABEL [FILE=LABEL ...] [--marker REGEX] [--skip N] [--top N] [--steps N]
//   --marker: the kernels that end a step (default 'adam': our adamw_* kernels and PyTorch's fused AdamW);
//             '' sums the whole file as one window (e.g. fused-check's timings).
//   --skip:   step windows left out first (warm-up; default 1).
//   --steps:  the step windows each file must have after --skip (an error otherwise: a mis-split profile).
// Prints one `BENCH {"bench":"kprof",…}` line per file, then the side-by-side table.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ProfileSummary, parseKprof, profileTable, stepWindows, summarize } from './kernel-profile.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    marker: { type: 'string', default: 'adam' },
    skip: { type: 'string', default: '1' },
    top: { type: 'string', default: '25' },
    steps: { type: 'string' },
  },
});
const fail = (m: string): never => {
  console.error(`kprof: ${m}`);
  process.exit(2);
};
if (positionals.length === 0) fail('no records file given (FILE=LABEL ...)');
const skip = Number(values.skip);
const top = Number(values.top);
if (!Number.isInteger(skip) || skip < 0) fail(`--skip: expected a count, got '${values.skip}'`);
if (!Number.isInteger(top) || top < 1) fail(`--top: expected a positive count, got '${values.top}'`);
const steps = values.steps === undefined ? undefined : Number(values.steps);
if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) fail(`--steps: expected a positive count, got '${values.steps}'`);
const summaries: ProfileSummary[] = [];
for (const arg of positionals) {
  const eq = arg.lastIndexOf('=');
  const [file, label] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, arg];
  const f = (() => {
    try {
      return parseKprof(readFileSync(file, 'utf8'), file);
    } catch (e) {
      return fail((e as Error).message);
    }
  })();
  const last = f.records.reduce((m, r) => Math.max(m, r.end), 0);
  const windows: [number, number][] = values.marker === '' ? [[0, last]] : stepWindows(f, new RegExp(values.marker, 'i'));
  const skipped = values.marker === '' ? 0 : skip;
  if (steps !== undefined && windows.length - skipped !== steps)
    fail(`${file}: ${windows.length} step windows at /${values.marker}/, ${windows.length - skipped} after --skip ${skipped}, not the ${steps} of --steps`);
  try {
    const s = summarize(f, windows, { label, skip: skipped, top });
    summaries.push(s);
    process.stdout.write(`BENCH ${JSON.stringify({ bench: 'kprof', file, pid: f.pid, lost: f.lost, windows: windows.length, ...s })}\n`);
  } catch (e) {
    fail(`${file}: ${(e as Error).message}`);
  }
}
process.stdout.write(`\n${profileTable(summaries)}\n`);
