// The CUDA 13 execution provider of ONNX Runtime 1.29 for onnxruntime-node 1.29.0: where it comes from
// (npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, Plugins/Linux/x64/), where it goes
// (beside onnxruntime-node's libonnxruntime.so.1, where ORT looks for provider libraries), and which
// CUDA libraries it needs at run time (ldd for linked ones, the loader's search for dlopened ones).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inputError } from '@latent-sft/core';

/** The registry package holding the Linux x64 CUDA 13 provider built for ORT 1.29. */
export const GPU_PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
/** Where the provider libraries sit inside that package's tarball. */
export const PROVIDER_DIR_IN_TARBALL = 'package/Plugins/Linux/x64';
/** The two files ORT loads for the CUDA EP (the shared bridge first). */
export const PROVIDER_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;
/** Libraries the CUDA provider opens with dlopen when an op needs them (not in its NEEDED list). */
export const DLOPENED_LIBS: ReadonlyArray<{ name: string; why: string }> = [
  { name: 'libcudnn.so.9', why: 'cuDNN 9: convolutions, some normalizations and RNNs' },
  { name: 'libnvrtc.so.13', why: 'NVRTC: runtime-compiled kernels of a few ops' },
];

export const USAGE = `usage: pnpm cuda:install [--from DIR|FILE.tgz] [--target DIR] [--skip-check]
       pnpm cuda:install --check [--target DIR] [--device N]

Installs the CUDA 13 execution provider for onnxruntime-node 1.29.0: copies
${PROVIDER_LIBS.join(' and ')} from the npm package ${GPU_PACKAGE}
(fetched with npm pack; ~180 MB) next to onnxruntime-node's libonnxruntime.so.1, then checks it.

  --from DIR|FILE.tgz  take the libraries from a folder (the files themselves, an unpacked package or
                       its package/ parent) or from the package tarball, instead of the registry
  --target DIR         install into DIR instead of onnxruntime-node's binary folder
  --check              install nothing: report the CUDA libraries found or missing and run a tiny
                       graph on CUDA
  --device N           CUDA device of the check (default 0)
  --skip-check         install without the check (machines without a GPU)
  --help               this text`;

export interface CliOptions {
  mode: 'install' | 'check' | 'help';
  from?: string;
  target?: string;
  deviceId: number;
  skipCheck: boolean;
}

/** Parses the command line (without node and the script). */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { mode: 'install', deviceId: 0, skipCheck: false };
  const value = (flag: string, i: number): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw inputError({ field: flag }, 'needs a value');
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const take = (): string => {
      if (inline !== undefined) return inline;
      const v = value(flag, i);
      i += 1;
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        o.mode = 'help';
        break;
      case '--check':
        o.mode = 'check';
        break;
      case '--from':
        o.from = take();
        break;
      case '--target':
        o.target = take();
        break;
      case '--skip-check':
        o.skipCheck = true;
        break;
      case '--device': {
        const v = take();
        const n = Number(v);
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw inputError({ field: '--device' }, `must be a non-negative integer, got '${v}'`);
        o.deviceId = n;
        break;
      }
      default:
        throw inputError({ field: a }, 'unknown argument (see --help)');
    }
  }
  if (o.mode === 'check' && o.from !== undefined) throw inputError({ field: '--from' }, 'cannot be combined with --check');
  if (o.mode === 'check' && o.skipCheck) throw inputError({ field: '--skip-check' }, 'cannot be combined with --check');
  return o;
}

/** The folder holding both provider libraries under `from`; throws naming the places it looked. */
export function findProviderDir(from: string): string {
  const candidates = [from, join(from, 'Plugins', 'Linux', 'x64'), join(from, PROVIDER_DIR_IN_TARBALL)];
  for (const dir of candidates) {
    if (PROVIDER_LIBS.every((l) => existsSync(join(dir, l)))) return dir;
  }
  throw inputError({ field: '--from' }, `no ${PROVIDER_LIBS.join(' and ')} in ${candidates.join(', ')}`);
}

/** Extracts only the provider libraries of a package tarball into workDir; returns their folder. */
export function extractProviders(tgz: string, workDir: string): string {
  const members = PROVIDER_LIBS.map((l) => `${PROVIDER_DIR_IN_TARBALL}/${l}`);
  try {
    execFileSync('tar', ['xzf', tgz, '-C', workDir, ...members], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const why = String((e as { stderr?: unknown }).stderr ?? e)
      .trim()
      .split('\n')[0];
    throw inputError({ file: tgz }, `cannot extract ${members.join(', ')}: ${why}`);
  }
  return join(workDir, PROVIDER_DIR_IN_TARBALL);
}

/** Downloads the GPU package with `npm pack` (a private npm cache, removed with workDir). */
export function fetchProviderPackage(workDir: string): string {
  let out: string;
  try {
    out = execFileSync('npm', ['pack', GPU_PACKAGE, '--pack-destination', workDir, '--cache', join(workDir, 'npm-cache'), '--silent'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const why = String((e as { stderr?: unknown }).stderr ?? e)
      .trim()
      .split('\n')
      .pop();
    throw inputError({ field: GPU_PACKAGE }, `npm pack failed (${why}); without registry access use --from DIR`);
  }
  const tgz = join(workDir, out.trim().split('\n').pop() ?? '');
  return extractProviders(tgz, workDir);
}

export interface PlacedFile {
  name: string;
  path: string;
  bytes: number;
}

/** Copies both provider libraries from srcDir into targetDir, each through a temp file and rename. */
export function placeProviders(srcDir: string, targetDir: string): PlacedFile[] {
  if (!existsSync(targetDir) || !statSync(targetDir).isDirectory()) {
    throw inputError({ field: '--target' }, `${targetDir} is not a folder`);
  }
  return PROVIDER_LIBS.map((name) => {
    const src = join(srcDir, name);
    const dst = join(targetDir, name);
    const tmp = join(targetDir, `.${name}.tmp-${process.pid}`);
    try {
      copyFileSync(src, tmp);
      renameSync(tmp, dst);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw inputError({ file: dst }, `cannot write: ${(e as Error).message}`);
    }
    return { name, path: dst, bytes: statSync(dst).size };
  });
}

/** Resolves the provider source (registry, folder or tarball) and places it; cleans up temp files. */
export function installProviders(from: string | undefined, targetDir: string): PlacedFile[] {
  const work = mkdtempSync(join(tmpdir(), 'latent-sft-cuda-install-'));
  try {
    let src: string;
    if (from === undefined) src = fetchProviderPackage(work);
    else if (existsSync(from) && statSync(from).isFile()) src = extractProviders(from, work);
    else if (existsSync(from)) src = findProviderDir(from);
    else throw inputError({ field: '--from' }, `${from} does not exist`);
    return placeProviders(src, targetDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One line of `ldd` output: a library and where it resolved (null: not found). */
export interface LddEntry {
  name: string;
  path: string | null;
}

/** Parses `ldd` output ("name => path (addr)", "name => not found", "/abs/path (addr)"). */
export function parseLdd(text: string): LddEntry[] {
  const out: LddEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('linux-vdso') || line.startsWith('statically linked')) continue;
    const arrow = /^(\S+)\s+=>\s+(.*)$/.exec(line);
    if (arrow) {
      const rest = (arrow[2] as string).trim();
      const name = arrow[1] as string;
      if (rest === 'not found') out.push({ name, path: null });
      else out.push({ name, path: rest.replace(/\s*\(0x[0-9a-f]+\)$/i, '') });
      continue;
    }
    const bare = /^(\/\S+)\s*(\(0x[0-9a-f]+\))?$/i.exec(line);
    if (bare) out.push({ name: basename(bare[1] as string), path: bare[1] as string });
  }
  return out;
}

/** Parses `ldconfig -p` into soname -> path (the first entry for x86-64 wins). */
export function parseLdconfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/.exec(line);
    if (!r) continue;
    const [, name, flags, path] = r as unknown as [string, string, string, string];
    if (!flags.includes('x86-64')) continue;
    if (!m.has(name)) m.set(name, path);
  }
  return m;
}

/** Where dlopen(name) would find a library: LD_LIBRARY_PATH folders first, then the ldconfig cache. */
export function locateLibrary(name: string, ldLibraryPath: readonly string[], ldconfig: ReadonlyMap<string, string>): string | null {
  for (const dir of ldLibraryPath) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return ldconfig.get(name) ?? null;
}

export interface LibraryStatus {
  name: string;
  path: string | null;
  /** true: linked (NEEDED), the provider cannot load without it; false: opened when an op needs it. */
  required: boolean;
  why?: string;
}

/** The run-time libraries of a CUDA provider file: its ldd list plus the dlopened ones. */
export function libraryStatus(lddText: string, ldLibraryPath: readonly string[], ldconfigText: string): LibraryStatus[] {
  const ldconfig = parseLdconfig(ldconfigText);
  const linked: LibraryStatus[] = parseLdd(lddText)
    .filter((e) => !/^(ld-linux[^.]*|libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+)\.so/.test(e.name))
    .map((e) => ({ name: e.name, path: e.path, required: true }));
  const opened = DLOPENED_LIBS.map(({ name, why }) => ({ name, path: locateLibrary(name, ldLibraryPath, ldconfig), required: false, why }));
  return [...linked, ...opened];
}

/** Runs ldd on the provider and ldconfig -p, then libraryStatus. */
export function checkLibraries(providerSo: string, ldLibraryPath: readonly string[]): LibraryStatus[] {
  const run = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      // ldd exits non-zero for some "not found" cases but still prints the list.
      const out = (e as { stdout?: unknown }).stdout;
      if (typeof out === 'string' && out !== '') return out;
      throw inputError({ file: providerSo }, `${cmd} failed: ${String((e as Error).message).split('\n')[0]}`);
    }
  };
  return libraryStatus(run('ldd', [providerSo]), ldLibraryPath, run('ldconfig', ['-p']));
}

/** The report lines of a library check. */
export function formatLibraryReport(libs: readonly LibraryStatus[]): string[] {
  const width = Math.max(...libs.map((l) => l.name.length));
  return libs.map((l) => {
    const state = l.path !== null ? 'found  ' : l.required ? 'MISSING' : 'absent ';
    const where = l.path ?? (l.required ? '(the CUDA provider will not load)' : `(optional: ${l.why ?? ''})`);
    return `  ${state} ${l.name.padEnd(width)}  ${where}`;
  });
}
