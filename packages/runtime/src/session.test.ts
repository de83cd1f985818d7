// Session tests on CPU with a tiny model hand-encoded as protobuf bytes (runtime does not depend on the
// graph package): z = Add(x, x) over float32 [N, 3] and j = Identity(i) over int64 [2].
import { describe, expect, it } from 'vitest';
import { Session } from './index.js';
import { checkHostTensor, zerosHost } from './session.js';
import type { HostTensor } from './index.js';

// Minimal protobuf writer: varints, length-delimited fields and strings.
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 127) {
    out.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const int = (field: number, v: number): number[] => [...varint(field << 3), ...varint(v)];
const bytes = (field: number, b: number[]): number[] => [...varint((field << 3) | 2), ...varint(b.length), ...b];
const str = (field: number, s: string): number[] => bytes(field, [...new TextEncoder().encode(s)]);

function valueInfo(name: string, elemType: number, dims: Array<number | string>): number[] {
  const shape = dims.flatMap((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  return [...str(1, name), ...bytes(2, bytes(1, [...int(1, elemType), ...bytes(2, shape)]))];
}
function node(op: string, inputs: string[], outputs: string[]): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(4, op)];
}
const FLOAT = 1;
const INT64 = 7;
function tinyModel(): Uint8Array {
  const graph = [
    ...bytes(1, node('Add', ['x', 'x'], ['z'])),
    ...bytes(1, node('Identity', ['i'], ['j'])),
    ...str(2, 'tiny'),
    ...bytes(11, valueInfo('x', FLOAT, ['N', 3])),
    ...bytes(11, valueInfo('i', INT64, [2])),
    ...bytes(12, valueInfo('z', FLOAT, ['N', 3])),
    ...bytes(12, valueInfo('j', INT64, [2])),
  ];
  return new Uint8Array([...int(1, 8), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...int(2, 17)])]);
}

const x: HostTensor = { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
const i: HostTensor = { dtype: 'int64', dims: [2], data: BigInt64Array.from([7n, -9n]) };

describe('Session', () => {
  it('runs a model from bytes and returns HostTensors', async () => {
    await using s = await Session.create(tinyModel(), { intraOpThreads: 1, deterministic: true });
    expect(s.inputNames).toEqual(['x', 'i']);
    expect(s.outputNames).toEqual(['z', 'j']);
    const out = await s.run({ x, i });
    expect(out.z?.dtype).toBe('float32');
    expect(out.z?.dims).toEqual([2, 3]);
    expect(out.z?.data).toBeAllclose([2, 4, 6, 8, 10, 12], { atol: 0, rtol: 0 });
    expect(out.j?.dtype).toBe('int64');
    expect([...(out.j as { data: BigInt64Array }).data]).toEqual([7n, -9n]);
  });

  it('returns only the requested outputs', async () => {
    await using s = await Session.create(tinyModel());
    const out = await s.run({ x, i }, ['j']);
    expect(Object.keys(out)).toEqual(['j']);
    await expect(s.run({ x, i }, ['nope'])).rejects.toThrow(/unknown outputs nope/);
  });

  it('names missing and unknown feeds', async () => {
    await using s = await Session.create(tinyModel());
    await expect(s.run({ x })).rejects.toThrow(/missing 'i'/);
    await expect(s.run({ x, i, y: x })).rejects.toThrow(/unknown 'y'/);
  });

  it('rejects dims that disagree with the data length, and data of the wrong type', async () => {
    await using s = await Session.create(tinyModel());
    await expect(s.run({ x: { ...x, dims: [4, 3] }, i })).rejects.toThrow(/feed 'x': dims \[4, 3\] hold 12 elements but data has 6/);
    await expect(s.run({ x: { ...x, data: Float64Array.from([1, 2, 3, 4, 5, 6]) }, i })).rejects.toThrow(
      /dtype float32 needs Float32Array data, got Float64Array/,
    );
    expect(() => checkHostTensor('b', { dtype: 'bfloat16', dims: [1], data: new Uint16Array(1) })).toThrow(/no bfloat16/);
    expect(() => checkHostTensor('n', { dtype: 'float32', dims: [-1], data: new Float32Array(1) })).toThrow(/invalid dims/);
  });

  it('throws after release', async () => {
    const s = await Session.create(tinyModel());
    await s.release();
    await s.release();
    await expect(s.run({ x, i })).rejects.toThrow(/released/);
  });

  it('zerosHost allocates the right typed array', () => {
    const z = zerosHost('int64', [2, 2]);
    expect(z.data).toBeInstanceOf(BigInt64Array);
    expect(z.data.length).toBe(4);
  });

  it('explains a CUDA provider that cannot load', async () => {
    // On a machine with the CUDA provider installed this succeeds instead; both outcomes are checked.
    try {
      const s = await Session.create(tinyModel(), { device: { kind: 'cuda' } });
      const out = await s.run({ x, i });
      expect(out.z?.data).toBeAllclose([2, 4, 6, 8, 10, 12], { atol: 0, rtol: 0 });
      await s.release();
    } catch (e) {
      expect(String(e)).toMatch(/CUDA execution provider unavailable: .*libonnxruntime_providers/);
    }
  });
});
