// The frozen base weights handed to the Trainer in the dtype the objective declares (phases'
// frozenDtype, chosen by frozenDtypeFor from the compute dtype): float32 host tensors rounded to
// float16 / bfloat16 bits (nearest even), others passed through, a mismatch refused in one line.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { bf16BitsToFloat32, f16BitsToFloat32, initParameters, parameterShapes, saveCheckpoint, tinyQwen2 } from '@latent-sft/models';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { loadModelDir, toHost } from './model.js';
import { frozenDtypeFor, hostAsSpecs } from './runner.js';

const f32 = (v: number[]): HostTensor => ({ dtype: 'float32', dims: [v.length], data: Float32Array.from(v) });

describe('frozen weights in the objective dtype', () => {
  it('16-bit compute stores the frozen bases in that dtype; float32 compute keeps float32', () => {
    expect([frozenDtypeFor('bfloat16'), frozenDtypeFor('float16'), frozenDtypeFor('float32')]).toEqual(['bfloat16', 'float16', undefined]);
  });

  it('rounds float32 to the declared 16-bit dtype (nearest even) and passes the rest through', () => {
    const v = [1, -2.5, 1 + 2 ** -9, 1 + 3 * 2 ** -9, 65504, 1e-3];
    const c = f32(v);
    const out = hostAsSpecs({ a: { dtype: 'bfloat16' }, b: { dtype: 'float16' }, c: { dtype: 'float32' } }, { a: f32(v), b: f32(v), c, d: f32(v) });
    expect(out.a?.dtype).toBe('bfloat16');
    // bf16 keeps 8 bits of mantissa: 1 + 2⁻⁹ is a tie → 1 (even), 1 + 3·2⁻⁹ → 1 + 2⁻⁷.
    expect(Array.from(out.a?.data as Uint16Array, (b) => bf16BitsToFloat32(b)).slice(0, 4)).toEqual([1, -2.5, 1, 1 + 2 ** -7]);
    expect(Array.from(out.b?.data as Uint16Array, (b) => f16BitsToFloat32(b)).slice(0, 5)).toEqual([1, -2.5, 1 + 2 ** -9, 1 + 3 * 2 ** -9, 65504]);
    expect(out.c).toBe(c);
    expect(out.d?.dtype).toBe('float32');
  });

  it('refuses a tensor it cannot convert, naming it', () => {
    expect(() => hostAsSpecs({ w: { dtype: 'float16' } }, { w: { dtype: 'float64', dims: [1], data: Float64Array.from([1]) } })).toThrow(UserError);
    expect(() => hostAsSpecs({ w: { dtype: 'float16' } }, { w: { dtype: 'float64', dims: [1], data: Float64Array.from([1]) } })).toThrow(/w.*float64.*float16/);
  });
});

describe('ModelDir.readAs: the frozen bases read straight from the checkpoint in their input dtype', () => {
  const dir = mkdtempSync(join(tmpdir(), 'readas-'));
  const c = tinyQwen2();
  saveCheckpoint(dir, c, initParameters(c, { seed: 9 }), { dtype: 'float32' });

  it('16-bit inputs: bit for bit the float32 load rounded by hostAsSpecs; float32 inputs: the float32 load', () => {
    const names = parameterShapes(c).map((p) => p.name);
    for (const dtype of ['bfloat16', 'float16', 'float32'] as const) {
      const specs = Object.fromEntries(names.map((n) => [`dec.${n}`, { dtype }]));
      const direct = loadModelDir(dir, 'M1').readAs(specs, 'dec.');
      const viaF32 = hostAsSpecs(specs, toHost(loadModelDir(dir, 'M1').tensors, 'dec.'));
      expect(Object.keys(direct).sort()).toEqual(Object.keys(specs).sort());
      for (const k of Object.keys(specs)) {
        expect(direct[k]?.dtype, k).toBe(dtype);
        expect(direct[k]?.dims, k).toEqual(viaF32[k]?.dims);
        expect([...(direct[k]!.data as Uint16Array | Float32Array)], k).toEqual([...(viaF32[k]!.data as Uint16Array | Float32Array)]);
      }
    }
  });

  it('refuses a name outside the prefix or an input dtype weights cannot have, naming it', () => {
    const m = loadModelDir(dir, 'M1');
    expect(() => m.readAs({ 'enc.model.norm.weight': { dtype: 'bfloat16' } }, 'dec.')).toThrow(/enc\.model\.norm\.weight.*under 'dec\.'/);
    expect(() => m.readAs({ 'model.norm.weight': { dtype: 'int64' } })).toThrow(/model\.norm\.weight.*int64 input/);
  });
});
