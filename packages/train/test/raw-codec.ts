// A small tensor codec for tests (the models package provides the real safetensors one):
// tensors.json lists {name, dtype, shape, offset, bytes}; tensors.bin holds the raw little-endian data.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointTensor, TensorCodec } from '../src/index.js';

const CTORS = { float64: Float64Array, float32: Float32Array, int32: Int32Array, uint8: Uint8Array } as const;

export const rawCodec: TensorCodec = {
  format: 'raw-test',
  write(dir, tensors) {
    const header: Array<{ name: string; dtype: string; shape: number[]; offset: number; bytes: number }> = [];
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of tensors) {
      if (!(t.dtype in CTORS)) throw new Error(`raw-test codec: unsupported dtype ${t.dtype}`);
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
      header.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], offset, bytes: bytes.length });
      chunks.push(bytes);
      offset += bytes.length;
    }
    writeFileSync(join(dir, 'tensors.json'), JSON.stringify(header));
    writeFileSync(join(dir, 'tensors.bin'), Buffer.concat(chunks));
    return ['tensors.json', 'tensors.bin'];
  },
  read(dir) {
    const header = JSON.parse(readFileSync(join(dir, 'tensors.json'), 'utf8')) as Array<{
      name: string;
      dtype: keyof typeof CTORS;
      shape: number[];
      offset: number;
      bytes: number;
    }>;
    const bin = readFileSync(join(dir, 'tensors.bin'));
    return header.map((h): CheckpointTensor => {
      const C = CTORS[h.dtype];
      const copy = new Uint8Array(bin.subarray(h.offset, h.offset + h.bytes)).buffer;
      return { name: h.name, dtype: h.dtype, shape: h.shape, data: new C(copy) };
    });
  },
};
