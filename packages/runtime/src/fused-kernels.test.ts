// The fused CUDA kernels (native/src/kernels/*.cu) checked without a GPU: the addon embeds exactly the
// kernel files as they are now (no stale build), the generated header is current, and every kernel the
// addon loads is defined. Where nvcc is installed, the joined program (what NVRTC compiles at run time)
// and each kernel file on its own also compile to PTX with the addon's NVRTC options.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENERATED_HEADER, KERNEL_FILES, definedKernels, generatedHeader, joinKernels, kernelInputs, nativeDir } from '../native/embed-kernels.mjs';
import { loadNative } from './native.js';

/** The options compilePtx (native/src/fused_cuda.cc) gives NVRTC, architecture aside. */
const NVRTC_OPTIONS = ['-std=c++17', '-fmad=false', '--prec-div=true', '--prec-sqrt=true', '--ftz=false'];

function hasNvcc(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('fused CUDA kernel source', () => {
  const embedded = loadNative().cudaKernels();

  it('is embedded in the addon exactly as the kernel files read now, each line in file order', () => {
    expect(embedded.source).toBe(joinKernels());
    const inputs = kernelInputs();
    expect(inputs.slice().sort()).toEqual([...KERNEL_FILES, join('src', 'kernels', 'common.cuh'), join('src', 'fused_shared.h')].sort());
    // Independent of joinKernels: every line of every input, bar its includes and `#pragma once`,
    // appears in the embedded source in the file's order.
    const lines = embedded.source.split('\n');
    for (const file of inputs) {
      let at = lines.indexOf(`#line 1 "${file}"`);
      expect(at, file).toBeGreaterThanOrEqual(0);
      for (const line of readFileSync(join(nativeDir, file), 'utf8').split('\n')) {
        if (/^\s*#\s*(include\s+"|pragma\s+once)/.test(line) || line === '') continue;
        const next = lines.indexOf(line, at + 1);
        expect(next, `${file}: ${line}`).toBeGreaterThan(at);
        at = next;
      }
    }
  });

  it('has a current generated header', () => {
    expect(readFileSync(join(nativeDir, GENERATED_HEADER), 'utf8')).toBe(generatedHeader());
  });

  it('defines every kernel the addon loads, and no other', () => {
    const dtypes = ['f32', 'bf16', 'f16'];
    const expected = [
      ...[
        'adamw',
        'sumsq',
        'msoftmax',
        'msoftmax_grad',
        'rmsnorm',
        'rmsnorm_grad',
        'swiglu',
        'swiglu_grad',
        'rope',
        'ce',
        'ce_grad',
        'seeded_dropout',
        'decode_attention',
      ].flatMap((k) => dtypes.map((d) => (k.endsWith('_grad') ? `${k.slice(0, -5)}_${d}_grad` : `${k}_${d}`))),
      'sumsq_final',
      'hash_words',
      'cast_f32_to_bf16',
      'cast_f32_to_f16',
      'vocab_topk_partial',
      'vocab_topk_final',
      'flash_tiles',
      'rmsnorm_dw_sum',
      ...dtypes.flatMap((d) => [`adamw_${d}_to_bf16`, `adamw_${d}_to_f16`, `adamw_${d}_p_bf16`, `adamw_${d}_p_f16`, `swiglu_${d}_packed`]),
      ...['bf16', 'f16'].flatMap((d) => [`flash_${d}_dot`, ...['fwd', 'dkdv', 'dq'].flatMap((k) => [`flash_${d}_${k}_d64`, `flash_${d}_${k}_d128`])]),
    ];
    expect(embedded.names.slice().sort()).toEqual(expected.sort());
    expect(definedKernels(embedded.source).sort()).toEqual(expected.sort());
  });

  it.runIf(hasNvcc())(
    'compiles with nvcc to PTX that exports every kernel (joined, and each file alone)',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'latent-sft-kernels-'));
      try {
        const joined = join(dir, 'joined.cu');
        writeFileSync(joined, embedded.source);
        const files = [joined, ...KERNEL_FILES.map((f) => join(nativeDir, f))];
        execFileSync('nvcc', ['--ptx', '-arch=compute_80', ...NVRTC_OPTIONS, '-odir', dir, ...files], { stdio: 'pipe' });
        const ptx = readFileSync(join(dir, 'joined.ptx'), 'utf8');
        const entries = [...ptx.matchAll(/^\.visible \.entry (\w+)\(/gm)].map((m) => m[1]);
        expect(entries.sort()).toEqual(embedded.names.slice().sort());
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});
