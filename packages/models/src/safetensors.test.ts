import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from './dtype.js';
import { openSafetensors, openShardedSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';

const EXACT = { atol: 0, rtol: 0 };
const tmp = (): string => mkdtempSync(join(tmpdir(), 'st-'));

/** A file from a header object and data bytes, with the header size written as given (or true). */
function rawFile(header: unknown, data: number[], headerSize?: number): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(headerSize ?? h.length));
  return Buffer.concat([size, h, Buffer.from(data)]);
}

describe('16-bit float conversion', () => {
  it('rounds float32 to bf16 to nearest even', () => {
    expect(float32ToBf16Bits(1)).toBe(0x3f80);
    expect(float32ToBf16Bits(-2)).toBe(0xc000);
    expect(float32ToBf16Bits(1 / 3)).toBe(0x3eab); // 0x3EAAAAAB: low half 0xAAAB > 0x8000 rounds up
    expect(float32ToBf16Bits(-0)).toBe(0x8000);
    expect(float32ToBf16Bits(NaN)).toBe(0x7fc0);
    expect(float32ToBf16Bits(Infinity)).toBe(0x7f80);
    // Ties: 0x3F808000 -> even 0x3F80; 0x3F818000 -> even 0x3F82.
    const f = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x7f7fffff]).buffer);
    expect([...f].map(float32ToBf16Bits)).toEqual([0x3f80, 0x3f82, 0x7f80]); // max float rounds to Inf
    expect(bf16BitsToFloat32(0x3eab)).toBe(0.333984375);
    expect(Object.is(bf16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(bf16BitsToFloat32(0x7fc0)).toBeNaN();
  });

  it('rounds float32 to IEEE half and widens exactly', () => {
    expect([1, -2, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 / 3, -0].map(float32ToF16Bits)).toEqual([
      0x3c00, 0xc000, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x3555, 0x8000,
    ]);
    expect(float32ToF16Bits(NaN) & 0x7e00).toBe(0x7e00);
    expect([0x3c00, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x3555].map(f16BitsToFloat32)).toEqual([1, 2 ** -24, 1023 * 2 ** -24, 65504, -Infinity, 0.333251953125]);
    for (let b = 0; b < 0x7c00; b += 7) expect(float32ToF16Bits(f16BitsToFloat32(b))).toBe(b); // exact round trip
  });
});

describe('safetensors files', () => {
  it('reads a hand-built file byte by byte', () => {
    // x: F32 [2] = [1, -2]; y: BF16 [1,2] = [1, 0.5]; z: I64 [1] = [7]
    const data = [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0x80, 0x3f, 0, 0x3f, 7, 0, 0, 0, 0, 0, 0, 0];
    const header = {
      __metadata__: { format: 'pt' },
      x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      y: { dtype: 'BF16', shape: [1, 2], data_offsets: [8, 12] },
      z: { dtype: 'I64', shape: [1], data_offsets: [12, 20] },
    };
    const path = join(tmp(), 'a.safetensors');
    writeFileSync(path, rawFile(header, data));
    const h = readSafetensorsHeader(path);
    expect(h.metadata).toEqual({ format: 'pt' });
    const n = JSON.stringify(header).length;
    expect(h.tensors).toEqual([
      { name: 'x', dtype: 'F32', shape: [2], begin: 8 + n, end: 16 + n },
      { name: 'y', dtype: 'BF16', shape: [1, 2], begin: 16 + n, end: 20 + n },
      { name: 'z', dtype: 'I64', shape: [1], begin: 20 + n, end: 28 + n },
    ]);
    const f = openSafetensors(path);
    expect(f.readTensor('x')).toBeAllclose([1, -2], EXACT);
    expect([...(f.readTensor('y') as Uint16Array)]).toEqual([0x3f80, 0x3f00]);
    expect(f.readTensor('y', { as: 'float32' })).toBeAllclose([1, 0.5], EXACT);
    expect([...(f.readTensor('z') as BigInt64Array)]).toEqual([7n]);
    expect(() => f.readTensor('z', { as: 'float32' })).toThrow(`${path}: field 'tensor 'z'': dtype I64 cannot be read as float32`);
    expect(() => f.readTensor('w')).toThrow(`${path}: field 'tensor 'w'': not in this file`);
  });

  it('writes the exact bytes: sorted names, space-padded 8-byte-aligned header, bf16 rounding', () => {
    const path = join(tmp(), 'w.safetensors');
    writeSafetensors(
      path,
      [
        { name: 'b', dtype: 'BF16', shape: [3], data: new Float32Array([1, 1 / 3, -0]) },
        { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([2]) },
      ],
      { format: 'pt' },
    );
    const bytes = readFileSync(path);
    const json =
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' + '"b":{"dtype":"BF16","shape":[3],"data_offsets":[4,10]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    expect(padded.length % 8).toBe(0);
    expect(bytes.readBigUInt64LE(0)).toBe(BigInt(padded.length));
    expect(bytes.subarray(8, 8 + padded.length).toString('utf8')).toBe(padded);
    expect([...bytes.subarray(8 + padded.length)]).toEqual([0, 0, 0, 0x40, 0x80, 0x3f, 0xab, 0x3e, 0x00, 0x80]);
  });

  it('round-trips every dtype', () => {
    const path = join(tmp(), 'r.safetensors');
    const f32 = new Float32Array([0.1, -3.5, 1e-30, 7]);
    writeSafetensors(path, [
      { name: 'f32', dtype: 'F32', shape: [2, 2], data: f32 },
      { name: 'f64', dtype: 'F64', shape: [2], data: new Float64Array([0.1, 2]) },
      { name: 'f16', dtype: 'F16', shape: [4], data: f32 },
      { name: 'bf16', dtype: 'BF16', shape: [4], data: f32 },
      { name: 'i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-1n, 2n ** 40n]) },
      { name: 'i32', dtype: 'I32', shape: [1], data: new Int32Array([-5]) },
      { name: 'u8', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    ]);
    const f = openSafetensors(path);
    expect(f.readTensor('f32')).toBeAllclose(f32, EXACT);
    expect(f.readTensor('f64')).toBeAllclose([0.1, 2], EXACT);
    expect(f.readTensor('f16', { as: 'float32' })).toBeAllclose(
      [...f32].map((x) => f16BitsToFloat32(float32ToF16Bits(x))),
      EXACT,
    );
    expect(f.readTensor('bf16', { as: 'float32' })).toBeAllclose(
      [...f32].map((x) => bf16BitsToFloat32(float32ToBf16Bits(x))),
      EXACT,
    );
    expect(f.readTensor('bf16', { as: 'float32' })).toBeAllclose(f32, { atol: 0, rtol: 2 ** -8 }); // bf16 has 8 significant bits
    expect([...(f.readTensor('i64') as BigInt64Array)]).toEqual([-1n, 2n ** 40n]);
    expect([...(f.readTensor('i32') as Int32Array)]).toEqual([-5]);
    expect([...(f.readTensor('u8') as Uint8Array)]).toEqual([1, 2, 255]);
    expect(f.readTensor('empty').length).toBe(0);
    expect(f.tensors.map((t) => t.name)).toEqual(['bf16', 'empty', 'f16', 'f32', 'f64', 'i32', 'i64', 'u8']);
  });

  it('reads float tensors as 16-bit bits: the stored dtype as stored, others rounded once (no float32 copy kept)', () => {
    const path = join(tmp(), 'r16.safetensors');
    const f32 = new Float32Array([0.1, -3.5, 1 + 2 ** -8, 70000, 1e-30, 1 + 2 ** -11]);
    const bf = Uint16Array.from([0x3f81, 0x7fc1, 0xff80, 0x0001, 0x8000, 0x4049]); // 1.0078125, a NaN payload, −inf, a subnormal, −0, 3.140625
    writeSafetensors(path, [
      { name: 'f32', dtype: 'F32', shape: [6], data: f32 },
      { name: 'bf16', dtype: 'BF16', shape: [6], data: bf },
      { name: 'f16', dtype: 'F16', shape: [6], data: f32 },
      { name: 'i32', dtype: 'I32', shape: [1], data: new Int32Array([-5]) },
    ]);
    const f = openSafetensors(path);
    expect([...(f.readTensor('bf16', { as: 'bfloat16' }) as Uint16Array)]).toEqual([...bf]); // bit for bit, NaN payload included
    expect([...(f.readTensor('f32', { as: 'bfloat16' }) as Uint16Array)]).toEqual([...f32].map(float32ToBf16Bits));
    expect([...(f.readTensor('f32', { as: 'float16' }) as Uint16Array)]).toEqual([...f32].map(float32ToF16Bits)); // 70000 → inf
    const f16 = f.readTensor('f16') as Uint16Array;
    expect([...(f.readTensor('f16', { as: 'float16' }) as Uint16Array)]).toEqual([...f16]);
    expect([...(f.readTensor('f16', { as: 'bfloat16' }) as Uint16Array)]).toEqual([...f16].map((b) => float32ToBf16Bits(f16BitsToFloat32(b))));
    expect(() => f.readTensor('i32', { as: 'bfloat16' })).toThrow(/tensor 'i32'.*dtype I32 cannot be read as bfloat16/);
  });

  it('rejects bad input to the writer', () => {
    const path = join(tmp(), 'bad.safetensors');
    expect(() => writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).toThrow(
      "writeSafetensors: tensor 'a' has 2 values but shape [3] needs 3",
    );
    expect(() => writeSafetensors(path, [{ name: 'a', dtype: 'I64', shape: [1], data: new Float32Array(1) }])).toThrow(
      "writeSafetensors: tensor 'a' of dtype I64 cannot take a Float32Array",
    );
  });

  const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  it.each([
    ['a header size beyond the file', rawFile(ok, new Array(8).fill(0), 10_000), "field 'header size': 10000 exceeds the"],
    ['a non-JSON header', Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{abc')]), "field 'header': not JSON"],
    ['a truncated file', rawFile(ok, [0, 0, 0, 0]), "field 'tensor 'x'': data_offsets [0, 8] run past the end of the data (4 bytes; truncated file?)"],
    [
      'offsets that disagree with dtype x shape',
      rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(8).fill(0)),
      "field 'tensor 'x'': data_offsets [0, 8] hold 8 bytes but F32 [3] needs 12",
    ],
    [
      'overlapping tensors',
      rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Array(8).fill(0)),
      "field 'tensor 'y'': data overlaps the previous tensor (starts at 4, previous ends at 8)",
    ],
    [
      'a gap in the buffer',
      rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Array(8).fill(0)),
      "field 'tensor 'x'': gap in the data buffer before offset 4",
    ],
    ['trailing bytes', rawFile(ok, new Array(12).fill(0)), "field 'data': 4 trailing bytes after the last tensor"],
    ['an unknown dtype', rawFile({ x: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]), `field 'tensor 'x'': unsupported dtype "F8_E4M3"`],
    ['a bad shape', rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), "field 'tensor 'x'': bad shape [-1]"],
    ['reversed offsets', rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, [0, 0, 0, 0]), "field 'tensor 'x'': bad data_offsets [4,0]"],
    ['non-string metadata', rawFile({ __metadata__: { a: 1 } }, []), "field '__metadata__': must map strings to strings"],
    ['a file shorter than 8 bytes', Buffer.from([1, 2, 3]), 'only 3 bytes; a safetensors file starts with an 8-byte header size'],
  ])('reports %s in one line naming file and tensor', (_what, bytes, message) => {
    const path = join(tmp(), 'c.safetensors');
    writeFileSync(path, bytes);
    let msg = '';
    try {
      readSafetensorsHeader(path);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain(`${path}: `);
    expect(msg).toContain(message);
    expect(msg).not.toContain('\n');
  });

  it('reads sharded checkpoints through the weight_map', () => {
    const dir = tmp();
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([1]) }]);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'BF16', shape: [2], data: new Float32Array([2, 3]) }]);
    const index = join(dir, 'model.safetensors.index.json');
    writeFileSync(
      index,
      JSON.stringify({ metadata: { total_size: 8 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
    );
    const s = openShardedSafetensors(index);
    expect(s.tensors.map((t) => t.name)).toEqual(['a', 'b']);
    expect(s.readTensor('b', { as: 'float32' })).toBeAllclose([2, 3], EXACT);
    writeFileSync(index, JSON.stringify({ weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    expect(() => openShardedSafetensors(index)).toThrow(`${index}: field 'weight_map.a': tensor is not in shard model-00002-of-00002.safetensors`);
    writeFileSync(index, JSON.stringify({ weight_map: { b: 'model-00002-of-00002.safetensors' }, x: 1 }));
    expect(openShardedSafetensors(index).has('a')).toBe(false);
    writeFileSync(index, JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors' } }));
    expect(openShardedSafetensors(index).tensors.length).toBe(1);
    writeFileSync(index, '{"metadata": {}}');
    expect(() => openShardedSafetensors(index)).toThrow(`${index}: field 'weight_map': missing or not an object`);
  });
});
