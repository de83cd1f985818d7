// latent_sft.DecodeAttention (CPU kernel) against ORT's GroupQueryAttention (CPU) on the same decode step:
// the attention output within the dtype's rounding, keys 0..pos of each row's cache as GroupQueryAttention's
// (both write the rotated key and the value at pos), and nothing else of the cache changed. Positions 0 (first key), inside and C − 1 (a full
// cache); 1, 4 and 7 query heads per KV head; head sizes 16 and 64; float32 and float16 (ORT's CPU
// attention takes no bfloat16). The generation engine's own tests run it end to end (generate package).
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { decodeAttentionCase, floatValues, runOnce } from './testing.js';

const cpu = { kind: 'cpu' } as const;
/** float32: the same float32 math in another order (two-pass vs ORT's GEMM-based softmax); float16: one f16 ulp of the values (|out| ≲ 3). */
const TOL = { float32: { atol: 2e-6, rtol: 2e-6 }, float16: { atol: 4e-3, rtol: 2e-3 } } as const;

describe('DecodeAttention (CPU) = GroupQueryAttention (CPU) for one new token per row', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    for (const [H, kvH, hd] of [
      [4, 4, 16],
      [8, 2, 64],
      [7, 1, 16],
    ] as const) {
      it(`${dtype}, ${H} heads / ${kvH} KV heads, head size ${hd}`, async () => {
        const dims = { H, kvH, hd, C: 12, positions: [0, 5, 11] };
        const [fused, gqa] = await Promise.all(
          (['fused', 'gqa'] as const).map((op) => {
            const c = decodeAttentionCase(dtype, dims, 3, op);
            return runOnce(c.model, c.inputs, cpu).then((out) => ({ out, inputs: c.inputs }));
          }),
        );
        const a = fused!.out;
        const b = gqa!.out;
        expect(floatValues(a['out'] as HostTensor)).toBeAllclose(floatValues(b['out'] as HostTensor), TOL[dtype]);
        for (const name of ['present_key', 'present_value'] as const) {
          const [pa, pb] = [floatValues(a[name] as HostTensor), floatValues(b[name] as HostTensor)];
          const past = floatValues(fused!.inputs[name === 'present_key' ? 'past_key' : 'past_value'] as HostTensor);
          // Keys 0..pos of each row as GroupQueryAttention's present (its separate present buffer holds
          // only those: zeros after them); everything but the new position unchanged from the past.
          const { C } = dims;
          const valid = (i: number) => Math.floor(i / hd) % C <= (dims.positions[Math.floor(i / (kvH * C * hd))] as number);
          const idx = Array.from(pa.keys()).filter(valid);
          expect(idx.map((i) => pa[i] as number)).toBeAllclose(
            idx.map((i) => pb[i] as number),
            TOL[dtype],
          );
          for (let i = 0; i < pa.length; i++) {
            const p = Math.floor(i / hd) % C;
            if (p !== dims.positions[Math.floor(i / (kvH * C * hd))]) expect(pa[i]).toBe(past[i]);
          }
        }
      });
    }
  }

  it('refuses mismatched shapes in one line (graph inference)', () => {
    expect(() => decodeAttentionCase('float32', { H: 6, kvH: 4, hd: 16, C: 4, positions: [0] }, 1, 'fused')).toThrow(/multiple of kv_num_heads/);
  });
});
