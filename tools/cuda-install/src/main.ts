// `pnpm cuda:install` (run with tsx): installs the CUDA 13 execution provider next to
// onnxruntime-node's libonnxruntime.so.1 and checks it; `--check` only checks. See USAGE.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inputError, runMain } from '@latent-sft/core';
import { deviceSelfTest, ortBinaryDir } from '@latent-sft/runtime';
import { PROVIDER_LIBS, USAGE, checkLibraries, formatLibraryReport, installProviders, parseArgs } from './install.js';

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/** Reports the libraries and runs a tiny graph on CUDA; throws a one-line summary on failure. */
function check(target: string, deviceId: number): void {
  const missingProviders = PROVIDER_LIBS.filter((l) => !existsSync(join(target, l)));
  if (missingProviders.length > 0) {
    throw inputError({ file: target }, `missing ${missingProviders.join(' and ')}; run \`pnpm cuda:install\` first`);
  }
  const ldPath = (process.env.LD_LIBRARY_PATH ?? '').split(':');
  const libs = checkLibraries(join(target, 'libonnxruntime_providers_cuda.so'), ldPath);
  out('libraries of libonnxruntime_providers_cuda.so:');
  for (const line of formatLibraryReport(libs)) out(line);
  const missing = libs.filter((l) => l.required && l.path === null).map((l) => l.name);
  if (missing.length > 0) {
    throw inputError({}, `CUDA libraries missing: ${missing.join(', ')} (install the CUDA 13 runtime, or add its lib folder to LD_LIBRARY_PATH)`);
  }
  const r = deviceSelfTest({ kind: 'cuda', deviceId });
  out(`CUDA self-test on device ${deviceId}: ok (session ${r.createMs.toFixed(0)} ms, ${r.steps} steps ${r.runMs.toFixed(1)} ms, max error ${r.maxAbsError})`);
}

runMain(() => {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.mode === 'help') {
    out(USAGE);
    return;
  }
  const target = opts.target ?? ortBinaryDir();
  if (opts.mode === 'install') {
    const t0 = Date.now();
    const placed = installProviders(opts.from, target);
    for (const f of placed) out(`placed ${f.name} (${size(f.bytes)}) in ${target}`);
    out(`installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (opts.skipCheck) return;
  }
  check(target, opts.deviceId);
});
