// `tsx tools/pipeline/src/report.ts <run dir>`: the results table of a pipeline run (per phase: steps,
// first/last loss and KL, wall time; the sum of the wall times) from each phase's summary.json, then
// the eval table (<run dir>/eval/summary.md) when the eval target wrote one.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, runMain } from '@latent-sft/core';
import { formatResultsTable, readSummary } from '@latent-sft/pipeline';

/** The phase folders of a run dir, in pipeline order. */
export const PHASES: ReadonlyArray<readonly [string, string]> = [
  ['cot-sft (M0)', 'm0'],
  ['phase1 encoder', 'phase1-encoder'],
  ['phase1 decoder', 'phase1-decoder'],
  ['phase1 union', 'phase1-union'],
  ['merge-lora (M1)', 'm1'],
  ['cache-latents', 'latents'],
  ['phase2 (M2)', 'phase2'],
];

runMain(() => {
  const dir = process.argv[2];
  if (dir === undefined || !existsSync(dir)) throw new UserError(`usage: report.ts <run dir> (got ${String(dir)}: not found)`);
  const rows = PHASES.map(([phase, sub]) => ({ phase, summary: readSummary(join(dir, sub)) }));
  const total = rows.reduce((s, r) => s + (r.summary?.wallSeconds ?? 0), 0);
  process.stdout.write(
    `\nLatent-SFT pipeline: ${dir}\n\n${formatResultsTable(rows)}\n\nloss/kl first and last: means over the first and last 5 steps of each phase\ntotal wall time of the phases: ${total.toFixed(1)} s\n`,
  );
  const evalMd = join(dir, 'eval', 'summary.md');
  if (existsSync(evalMd)) process.stdout.write(`\neval (${evalMd}):\n\n${readFileSync(evalMd, 'utf8')}\n`);
  else process.stdout.write('\neval: no summary (the eval target did not produce runs/tiny/eval/summary.md)\n');
});
