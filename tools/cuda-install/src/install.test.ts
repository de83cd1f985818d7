// The parts of `pnpm cuda:install` that need no GPU: arguments, placing files from a fake provider
// folder or tarball into a temp folder, and reading ldd / ldconfig output.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { ortBinaryDir } from '@latent-sft/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PROVIDER_DIR_IN_TARBALL,
  checkLibraries,
  findProviderDir,
  formatLibraryReport,
  installProviders,
  libraryStatus,
  locateLibrary,
  parseArgs,
  parseLdconfig,
  parseLdd,
} from './install.js';

// `ldd libonnxruntime_providers_cuda.so` from the 0.4.9 package on a machine with only libcudart.
const LDD_CUDA_PROVIDER = `	linux-vdso.so.1 (0x00007f2c5262e000)
	libcublasLt.so.13 => not found
	libcublas.so.13 => not found
	libcurand.so.10 => not found
	libcudart.so.13 => /usr/local/cuda-13.0/lib/libcudart.so.13 (0x00007f2c44400000)
	libcuda.so.1 => not found
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f2c52616000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f2c44000000)
	libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f2c44720000)
	libgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f2c525ec000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c4421e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f2c52630000)
`;

const LDCONFIG = `1234 libs found in cache \`/etc/ld.so.cache'
	libcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9
	libcudnn.so.9 (libc6) => /usr/lib/i386-linux-gnu/libcudnn.so.9
	libcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13
	libz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1
`;

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cuda-install-test-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** A fake provider folder: each library holds its own name, so copies can be told apart. */
function fakeProviders(dir: string, tag = 'v1'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'libonnxruntime_providers_shared.so'), `shared ${tag}`);
  writeFileSync(join(dir, 'libonnxruntime_providers_cuda.so'), `cuda ${tag} ${'x'.repeat(1000)}`);
  writeFileSync(join(dir, 'libonnxruntime_providers_tensorrt.so'), 'not copied');
}

describe('parseArgs', () => {
  it('reads flags with separate or inline values', () => {
    expect(parseArgs([])).toEqual({ mode: 'install', deviceId: 0, skipCheck: false });
    expect(parseArgs(['--from', '/x', '--target=/y', '--skip-check'])).toEqual({ mode: 'install', from: '/x', target: '/y', deviceId: 0, skipCheck: true });
    expect(parseArgs(['--check', '--device', '3'])).toEqual({ mode: 'check', deviceId: 3, skipCheck: false });
    expect(parseArgs(['--help']).mode).toBe('help');
  });

  it('rejects unknown, valueless and conflicting arguments with one-line errors', () => {
    expect(() => parseArgs(['--frm', 'x'])).toThrow("field '--frm': unknown argument (see --help)");
    expect(() => parseArgs(['--from'])).toThrow("field '--from': needs a value");
    expect(() => parseArgs(['--from', '--check'])).toThrow("field '--from': needs a value");
    expect(() => parseArgs(['--device', '-1'])).toThrow("field '--device': must be a non-negative integer, got '-1'");
    expect(() => parseArgs(['--device=1.5'])).toThrow("field '--device': must be a non-negative integer, got '1.5'");
    expect(() => parseArgs(['--check', '--from', '/x'])).toThrow("field '--from': cannot be combined with --check");
    expect(() => parseArgs(['--check', '--skip-check'])).toThrow(UserError);
  });
});

describe('placing the provider libraries', () => {
  it('finds them in a folder, an unpacked package or its parent, and copies only the two', () => {
    const pkg = join(tmp, 'unpacked');
    fakeProviders(join(pkg, PROVIDER_DIR_IN_TARBALL));
    expect(findProviderDir(pkg)).toBe(join(pkg, PROVIDER_DIR_IN_TARBALL));
    expect(findProviderDir(join(pkg, 'package'))).toBe(join(pkg, PROVIDER_DIR_IN_TARBALL));
    const target = join(tmp, 'ort-bin');
    mkdirSync(target);
    writeFileSync(join(target, 'libonnxruntime_providers_shared.so'), 'old');
    const placed = installProviders(join(pkg, PROVIDER_DIR_IN_TARBALL), target);
    expect(placed.map((p) => [p.name, p.bytes])).toEqual([
      ['libonnxruntime_providers_shared.so', 9],
      ['libonnxruntime_providers_cuda.so', 1008],
    ]);
    expect(readdirSync(target).sort()).toEqual(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    expect(readFileSync(join(target, 'libonnxruntime_providers_shared.so'), 'utf8')).toBe('shared v1');
  });

  it('extracts them from a package tarball', () => {
    const pkg = join(tmp, 'src');
    fakeProviders(join(pkg, PROVIDER_DIR_IN_TARBALL), 'tgz');
    const tgz = join(tmp, 'gpu.tgz');
    execFileSync('tar', ['czf', tgz, '-C', pkg, 'package']);
    const target = join(tmp, 'ort-bin');
    mkdirSync(target);
    installProviders(tgz, target);
    expect(readFileSync(join(target, 'libonnxruntime_providers_cuda.so'), 'utf8').slice(0, 8)).toBe('cuda tgz');
    expect(readdirSync(target)).toHaveLength(2); // no temp files left
  });

  it('names what is missing', () => {
    fakeProviders(join(tmp, 'p'));
    rmSync(join(tmp, 'p', 'libonnxruntime_providers_cuda.so'));
    expect(() => findProviderDir(join(tmp, 'p'))).toThrow(
      `field '--from': no libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so in ${join(tmp, 'p')},`,
    );
    expect(() => installProviders(join(tmp, 'nope'), tmp)).toThrow(`${join(tmp, 'nope')} does not exist`);
    expect(() => installProviders(join(tmp, 'p'), join(tmp, 'missing-target'))).toThrow(/field '--from': no /);
    fakeProviders(join(tmp, 'q'));
    expect(() => installProviders(join(tmp, 'q'), join(tmp, 'missing-target'))).toThrow(`field '--target': ${join(tmp, 'missing-target')} is not a folder`);
    writeFileSync(join(tmp, 'bad.tgz'), 'not a tarball');
    expect(() => installProviders(join(tmp, 'bad.tgz'), tmp)).toThrow(/bad\.tgz: cannot extract package\/Plugins\/Linux\/x64\//);
  });
});

describe('library checks', () => {
  it('parses ldd output, with not-found entries and bare paths', () => {
    const e = parseLdd(LDD_CUDA_PROVIDER);
    expect(e.slice(0, 5)).toEqual([
      { name: 'libcublasLt.so.13', path: null },
      { name: 'libcublas.so.13', path: null },
      { name: 'libcurand.so.10', path: null },
      { name: 'libcudart.so.13', path: '/usr/local/cuda-13.0/lib/libcudart.so.13' },
      { name: 'libcuda.so.1', path: null },
    ]);
    expect(e.at(-1)).toEqual({ name: 'ld-linux-x86-64.so.2', path: '/lib64/ld-linux-x86-64.so.2' });
    expect(e).toHaveLength(11);
  });

  it('parses ldconfig -p, keeping x86-64 entries', () => {
    const m = parseLdconfig(LDCONFIG);
    expect(m.get('libcudnn.so.9')).toBe('/usr/lib/x86_64-linux-gnu/libcudnn.so.9');
    expect([...m.keys()]).toEqual(['libcudnn.so.9', 'libcudart.so.13', 'libz.so.1']);
  });

  it('locates dlopened libraries on LD_LIBRARY_PATH before the ldconfig cache', () => {
    writeFileSync(join(tmp, 'libcudnn.so.9'), '');
    const m = parseLdconfig(LDCONFIG);
    expect(locateLibrary('libcudnn.so.9', ['', '/nonexistent', tmp], m)).toBe(join(tmp, 'libcudnn.so.9'));
    expect(locateLibrary('libcudnn.so.9', [], m)).toBe('/usr/lib/x86_64-linux-gnu/libcudnn.so.9');
    expect(locateLibrary('libnvrtc.so.13', [tmp], m)).toBeNull();
  });

  it('reports CUDA libraries found, missing and optional', () => {
    const libs = libraryStatus(LDD_CUDA_PROVIDER, [], LDCONFIG);
    expect(libs.map((l) => [l.name, l.path !== null, l.required])).toEqual([
      ['libcublasLt.so.13', false, true],
      ['libcublas.so.13', false, true],
      ['libcurand.so.10', false, true],
      ['libcudart.so.13', true, true],
      ['libcuda.so.1', false, true],
      ['libcudnn.so.9', true, false],
      ['libnvrtc.so.13', false, false],
    ]);
    const lines = formatLibraryReport(libs);
    expect(lines[0]).toBe('  MISSING libcublasLt.so.13  (the CUDA provider will not load)');
    expect(lines[3]).toBe('  found   libcudart.so.13    /usr/local/cuda-13.0/lib/libcudart.so.13');
    expect(lines[6]).toBe('  absent  libnvrtc.so.13     (optional: NVRTC: runtime-compiled kernels of a few ops)');
  });

  it('runs ldd on a real library (onnxruntime-node binding -> libonnxruntime.so.1)', () => {
    const libs = checkLibraries(join(ortBinaryDir(), 'onnxruntime_binding.node'), []);
    const ort = libs.find((l) => l.name === 'libonnxruntime.so.1');
    expect(ort?.required).toBe(true);
    expect(realpathSync(ort?.path ?? '/')).toBe(realpathSync(join(ortBinaryDir(), 'libonnxruntime.so.1')));
  });
});
