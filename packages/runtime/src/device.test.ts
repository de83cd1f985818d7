// Device tensors, IO bindings and double-buffered state on CPU sessions: the "device" is host memory,
// but upload/download/bind/run take the same native path as on CUDA.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '@latent-sft/core';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DeviceSession,
  type DeviceTensor,
  DoubleBuffer,
  ResidentSession,
  Session,
  StatePair,
  allocCpu,
  deviceSelfTest,
  liveTensorCount,
  resetTransferStats,
  transferStats,
  type TypedData,
} from './index.js';
import { uploadCpu } from './device-tensor.js';
import { ortBinaryDir, type DType } from './session.js';
import { addStateModel, castModel, identityModel, matMulModel, onnxModel } from './test-models.js';

const EXACT = { atol: 0, rtol: 0 };
const F32 = { atol: 1e-6, rtol: 1e-6 };

/** A deterministic sample of each dtype, including edge values. */
const samples: Record<DType, TypedData> = {
  float32: new Float32Array([0, -0, 1.5, -2.25, 3.4028234663852886e38, 1e-45, Infinity, NaN]),
  float64: new Float64Array([0, 1 / 3, -1e300, 5e-324, -Infinity, NaN, 42, Math.PI]),
  // fp16 bits: 1.0, -2.0, 65504 (max), smallest subnormal, +inf, NaN, -0, 0.5
  float16: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e01, 0x8000, 0x3800]),
  // bf16 bits: 1.0, -3.140625, quiet NaN with payload, -0, +inf, max finite, smallest subnormal, 0.5
  bfloat16: new Uint16Array([0x3f80, 0xc049, 0x7fc1, 0x8000, 0x7f80, 0x7f7f, 0x0001, 0x3f00]),
  int32: new Int32Array([0, 1, -1, 2147483647, -2147483648, 7, -7, 123456]),
  int64: new BigInt64Array([0n, 1n, -1n, 9223372036854775807n, -9223372036854775808n, 1n << 40n, -5n, 6n]),
  bool: new Uint8Array([0, 1, 1, 0, 1, 0, 0, 1]),
  uint8: new Uint8Array([0, 1, 127, 128, 255, 3, 4, 5]),
  int8: new Int8Array([0, 1, -1, 127, -128, 3, -4, 5]),
};
const byteWidth: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  uint8: 1,
  int8: 1,
};
const dtypes = Object.keys(samples) as DType[];

/** Raw bytes of a typed array, for bit-exact comparisons (NaN payloads, -0). */
function bytesOf(a: TypedData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

beforeEach(() => resetTransferStats());

describe('device tensors', () => {
  it.each(dtypes)('%s round-trips bit-exactly through CPU device memory', (dtype) => {
    const t = allocCpu(dtype, [2, 4]);
    expect([t.dtype, [...t.dims], t.size, t.byteSize, t.device]).toEqual([dtype, [2, 4], 8, 8 * byteWidth[dtype], { kind: 'cpu' }]);
    expect(bytesOf(t.download())).toEqual(new Uint8Array(8 * byteWidth[dtype])); // zeroed at allocation
    t.upload(samples[dtype]);
    const back = t.download();
    expect(back.constructor).toBe(samples[dtype].constructor);
    expect(bytesOf(back)).toEqual(bytesOf(samples[dtype]));
    t.release();
    expect(t.released).toBe(true);
  });

  it('counts every uploaded and downloaded byte', () => {
    const t = allocCpu('float64', [3, 5]);
    t.upload(new Float64Array(15).fill(2));
    t.upload(new Float64Array(15).fill(3));
    const out = new Float64Array(15);
    t.downloadInto(out);
    expect(out).toBeAllclose(new Float64Array(15).fill(3), EXACT);
    expect(transferStats()).toEqual({
      hostToDeviceBytes: 240,
      deviceToHostBytes: 120,
      deviceToDeviceBytes: 0,
      hostToDeviceCopies: 2,
      deviceToHostCopies: 1,
      deviceToDeviceCopies: 0,
    });
  });

  it('copies device to device without host traffic', () => {
    const src = uploadCpu({ dtype: 'int32', dims: [4], data: new Int32Array([4, 3, 2, 1]) });
    const dst = allocCpu('int32', [2, 2]);
    resetTransferStats();
    dst.copyFrom(src);
    expect(transferStats()).toMatchObject({ hostToDeviceBytes: 0, deviceToHostBytes: 0, deviceToDeviceBytes: 16, deviceToDeviceCopies: 1 });
    expect(dst.download()).toBeAllclose([4, 3, 2, 1], EXACT);
    expect(() => dst.copyFrom(allocCpu('float32', [4]))).toThrow("field 'copyFrom': source float32[4] does not match target int32[2, 2]");
  });

  it('rejects bad data, dims and use after release with one-line errors', () => {
    const t = allocCpu('float32', [2, 2]);
    expect(() => t.upload(new Float64Array(4))).toThrow("field 'upload': dtype float32 needs Float32Array data, got Float64Array");
    expect(() => t.upload(new Float32Array(5))).toThrow('float32[2, 2] holds 4 elements, data has 5');
    expect(() => t.downloadInto(new Float32Array(3))).toThrow('float32[2, 2] needs a Float32Array of 4 elements');
    expect(() => allocCpu('float8' as DType, [1])).toThrow("unknown dtype 'float8'");
    expect(() => allocCpu('float32', [2, -1])).toThrow('dims must be non-negative integers, got [2,-1]');
    t.release();
    t.release(); // twice is fine
    const err = (() => {
      try {
        t.download();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe("field 'download': device tensor float32[2, 2] was released");
    expect(transferStats().hostToDeviceBytes).toBe(0);
  });
});

describe('tensor lifetime', () => {
  it('counts live tensors through allocation and release', () => {
    const base = liveTensorCount();
    const ts = [allocCpu('float32', [4]), allocCpu('bfloat16', [4]), allocCpu('int64', [])];
    expect(liveTensorCount()).toBe(base + 3);
    ts[0]?.release();
    ts[0]?.release();
    expect(liveTensorCount()).toBe(base + 2);
    for (const t of ts) t.release();
    expect(liveTensorCount()).toBe(base);
  });

  it('frees tensors dropped without release() once they are garbage collected', () => {
    const device = fileURLToPath(new URL('./index.ts', import.meta.url));
    const script = `
      const d = await import(${JSON.stringify(device)});
      const base = d.liveTensorCount();
      (() => { for (let i = 0; i < 50; i++) d.allocCpu('float32', [1024]); })();
      const dropped = d.liveTensorCount() - base;
      for (let i = 0; i < 20 && d.liveTensorCount() > base; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      process.stdout.write(JSON.stringify({ dropped, left: d.liveTensorCount() - base }));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--conditions=@latent-sft/source', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(JSON.parse(out)).toEqual({ dropped: 50, left: 0 });
  });

  it('releases tensors held with `using` when the block throws, ORT-allocated outputs included', () => {
    const dims = [2, 3];
    const session = DeviceSession.create(addStateModel('float32', dims));
    const base = liveTensorCount();
    const held: DeviceTensor[] = [];
    const step = (fail: boolean): Float32Array => {
      using state = session.upload({ dtype: 'float32', dims, data: new Float32Array([1, 2, 3, 4, 5, 6]) });
      using x = session.alloc('float32', dims);
      using binding = session.createBinding().bindInput('state_in', state).bindInput('x', x).bindOutputToDevice('state_out');
      session.run(binding);
      using out = binding.output('state_out');
      held.push(state, x, out);
      expect(liveTensorCount()).toBe(base + 3);
      if (fail) throw new Error('step failed after its run');
      return out.download() as Float32Array;
    };
    expect(step(false)).toBeAllclose([1, 2, 3, 4, 5, 6], EXACT);
    expect(liveTensorCount()).toBe(base);
    expect(() => step(true)).toThrow('step failed after its run');
    expect(liveTensorCount()).toBe(base);
    expect(held.map((t) => t.released)).toEqual([true, true, true, true, true, true]);
    expect(() => held[5]?.download()).toThrow(/float32\[2, 3\] was released/);
    session.release();
  });

  it('releases both buffers of double-buffered state with `using`', () => {
    const base = liveTensorCount();
    const session = DeviceSession.create(addStateModel('float32', [2]));
    expect(() => {
      using state = new DoubleBuffer([StatePair.create(session, 'state_in', 'state_out', { dtype: 'float32', dims: [2], data: new Float32Array(2) })]);
      expect(liveTensorCount()).toBe(base + 2);
      expect(state.current('state_in').released).toBe(false);
      throw new Error('boom');
    }).toThrow('boom');
    expect(liveTensorCount()).toBe(base);
    session.release();
  });
});

describe('sessions and IO binding', () => {
  it('reports inputs and outputs with dynamic dims', () => {
    const s = DeviceSession.create(matMulModel('batch', 3, 2));
    expect(s.inputs).toEqual([
      { name: 'a', dtype: 'float32', dims: [-1, 3], symbols: ['batch', ''] },
      { name: 'b', dtype: 'float32', dims: [3, 2], symbols: ['', ''] },
    ]);
    expect(s.outputs.map((o) => [o.name, o.dtype, [...o.dims]])).toEqual([['y', 'float32', [-1, 2]]]);
    expect(s.device).toEqual({ kind: 'cpu' });
    s.release();
  });

  it('runs Add with inputs and a preallocated output bound to device tensors', () => {
    const s = DeviceSession.create(addStateModel('float32', [2, 3]), { graphOptimizationLevel: 'basic', intraOpThreads: 1 });
    const a = s.upload({ dtype: 'float32', dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    const x = s.upload({ dtype: 'float32', dims: [2, 3], data: new Float32Array([0.5, -1, 10, 0, 1e-3, -6]) });
    const y = s.alloc('float32', [2, 3]);
    const b = s.createBinding().bindInput('state_in', a).bindInput('x', x).bindOutput('state_out', y);
    resetTransferStats();
    s.run(b);
    expect(transferStats().hostToDeviceBytes + transferStats().deviceToHostBytes).toBe(0); // run moves nothing
    expect(b.output('state_out')).toBe(y);
    expect(y.download()).toBeAllclose([1.5, 1, 13, 4, 5.001, 0], F32);
  });

  it('binds an output to the device and lets ORT allocate it (MatMul, dynamic batch)', () => {
    const s = DeviceSession.create(matMulModel('batch', 3, 2));
    const A = [
      [1, 2, 3],
      [4, 5, 6],
      [-1, 0, 2],
      [0.5, 0.25, 2],
    ];
    const B = [
      [1, -1],
      [0, 2],
      [3, 0.5],
    ];
    const b = s
      .createBinding()
      .bindInput('a', s.upload({ dtype: 'float32', dims: [4, 3], data: Float32Array.from(A.flat()) }))
      .bindInput('b', s.upload({ dtype: 'float32', dims: [3, 2], data: Float32Array.from(B.flat()) }))
      .bindOutputToDevice('y');
    s.run(b);
    b.synchronizeOutputs();
    const y = b.output('y');
    expect([[...y.dims], y.dtype, y.device]).toEqual([[4, 2], 'float32', { kind: 'cpu' }]);
    const expected = A.map((row) => [0, 1].map((j) => row.reduce((acc, v, k) => acc + v * (B[k]?.[j] ?? 0), 0)));
    expect(y.download()).toBeAllclose(expected, F32);
    y.release();
  });

  it('keeps bfloat16 raw bits through Identity and rounds float32 to bfloat16 to nearest-even in Cast', () => {
    const id = DeviceSession.create(identityModel('bfloat16', [8]));
    const ib = id
      .createBinding()
      .bindInput('x', id.upload({ dtype: 'bfloat16', dims: [8], data: samples.bfloat16 }))
      .bindOutputToDevice('y');
    id.run(ib);
    expect(bytesOf(ib.output('y').download())).toEqual(bytesOf(samples.bfloat16));

    const xs = new Float32Array([1, 1.00390625, 1.01171875, -Math.PI, 65504, 1e-3]);
    const cast = DeviceSession.create(castModel('bfloat16', [6]));
    const cb = cast
      .createBinding()
      .bindInput('x', cast.upload({ dtype: 'float32', dims: [6], data: xs }))
      .bindOutputToDevice('y');
    cast.run(cb);
    // Reference: round-to-nearest-even on the top 16 bits of the float32 pattern.
    const bits = new Uint32Array(xs.buffer);
    const expected = Array.from(bits, (u) => ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff);
    expect(cb.output('y').download()).toBeAllclose(expected, EXACT);
    expect(expected.slice(0, 3)).toEqual([0x3f80, 0x3f80, 0x3f82]); // ties go to even
  });

  it('runAsync computes the same as run', async () => {
    const s = DeviceSession.create(addStateModel('int64', [3]));
    const b = s
      .createBinding()
      .bindInput('state_in', s.upload({ dtype: 'int64', dims: [3], data: new BigInt64Array([1n, 2n, 1n << 40n]) }))
      .bindInput('x', s.upload({ dtype: 'int64', dims: [3], data: new BigInt64Array([10n, -20n, 1n]) }))
      .bindOutputToDevice('state_out');
    await s.runAsync(b);
    expect(b.output('state_out').download()).toEqual(new BigInt64Array([11n, -18n, (1n << 40n) + 1n]));
  });

  it('ResidentSession: the resident input uploaded once (also read on demand), each run moves only its feeds; the same result as Session; one-line errors', async () => {
    const b = { dtype: 'float32' as const, dims: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) };
    const rs = ResidentSession.create(matMulModel('batch', 3, 2), { b });
    const plain = await Session.create(matMulModel('batch', 3, 2));
    try {
      for (const rows of [1, 4]) {
        const a = { dtype: 'float32' as const, dims: [rows, 3], data: Float32Array.from({ length: rows * 3 }, (_, i) => i - 2) };
        const before = transferStats().hostToDeviceBytes;
        const got = await rs.run({ a }, ['y']);
        expect(transferStats().hostToDeviceBytes - before).toBe(rows * 3 * 4); // only `a` went up
        expect(got.y).toEqual((await plain.run({ a, b }, ['y'])).y);
      }
      // A function value is read once, at its upload (weights read one at a time): the same results.
      let reads = 0;
      const lazy = ResidentSession.create(matMulModel('batch', 3, 2), {
        b: () => {
          reads++;
          return b;
        },
      });
      try {
        const a = { dtype: 'float32' as const, dims: [2, 3], data: Float32Array.of(1, -2, 3, 0.5, 4, -1) };
        expect((await lazy.run({ a }, ['y'])).y).toEqual((await rs.run({ a }, ['y'])).y);
        expect(reads).toBe(1);
      } finally {
        await lazy.release();
      }
      await expect(rs.run({ b }, ['y'])).rejects.toThrow(/feeds\.b.*resident input/);
      expect(() => ResidentSession.create(matMulModel('batch', 3, 2), { w: b })).toThrow(/input 'w'.*no such input/);
    } finally {
      await rs.release();
      await plain.release();
    }
    await expect(rs.run({ a: { dtype: 'float32', dims: [1, 3], data: new Float32Array(3) } }, ['y'])).rejects.toThrow(/released/);
  });

  it('rejects wrong dtype, shape or name bindings and released tensors, sessions and bindings', () => {
    const s = DeviceSession.create(addStateModel('float32', [2, 'n']));
    const b = s.createBinding();
    expect(() => b.bindInput('state_in', allocCpu('float64', [2, 3]))).toThrow(
      "field 'input 'state_in'': tensor dtype float64 does not match the model's float32",
    );
    expect(() => b.bindInput('x', allocCpu('float32', [3, 3]))).toThrow("tensor dims [3, 3] do not match the model's [2, n]");
    expect(() => b.bindInput('x', allocCpu('float32', [2]))).toThrow("tensor dims [2] do not match the model's [2, n]");
    expect(() => b.bindOutput('nope', allocCpu('float32', [2, 3]))).toThrow("field 'output 'nope'': no such output (outputs: state_out)");
    const gone = allocCpu('float32', [2, 5]);
    gone.release();
    expect(() => b.bindInput('x', gone)).toThrow("field 'input 'x'': device tensor float32[2, 5] was released");
    b.bindInput('state_in', allocCpu('float32', [2, 5])).bindInput('x', allocCpu('float32', [2, 5]));
    expect(() => b.output('state_out')).toThrow("field 'output 'state_out'': not bound or not computed yet");
    const other = DeviceSession.create(addStateModel('float32', [2, 'n']));
    expect(() => other.run(b)).toThrow('run: the IO binding belongs to another session');
    s.release();
    expect(() => s.run(b)).toThrow("field 'session': device session was released");
    expect(() => s.alloc('float32', [1])).toThrow('device session was released');
    b.release();
    expect(() => other.run(b)).toThrow("field 'binding': IO binding was released");
  });

  it('fails to run when an input is unbound, naming it', () => {
    const s = DeviceSession.create(addStateModel('float32', [2]));
    const b = s
      .createBinding()
      .bindInput('state_in', allocCpu('float32', [2]))
      .bindOutputToDevice('state_out');
    expect(() => s.run(b)).toThrow(/run failed: .*x/);
  });

  it.skipIf(existsSync(join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so')))(
    'names the missing CUDA provider library when the CUDA EP is not installed',
    () => {
      expect(() => DeviceSession.create(addStateModel('float32', [2]), { device: { kind: 'cuda', deviceId: 0 } })).toThrow(
        /^CUDA execution provider unavailable \(install it with `pnpm cuda:install`\): Failed to load library .*libonnxruntime_providers_(shared|cuda)\.so/,
      );
    },
  );

  it('validates session options before loading', () => {
    expect(() => DeviceSession.create(addStateModel('float32', [2]), { intraOpThreads: 0 })).toThrow(
      "field 'intraOpThreads': must be a positive integer, got 0",
    );
    expect(() => DeviceSession.create(new Uint8Array([1, 2, 3]))).toThrow(/^cannot create session: /);
    expect(() => DeviceSession.create(onnxModel({ inputs: [], outputs: [], nodes: [] }), { graphOptimizationLevel: 'max' as 'all' })).toThrow(
      "graphOptimizationLevel must be disabled, basic, extended or all, got 'max'",
    );
  });
});

describe('double-buffered state', () => {
  it('runs 10 steps of state_out = state_in + x with only x crossing per step', () => {
    const dims = [4, 3];
    const n = 12;
    const s = DeviceSession.create(addStateModel('float32', dims), { deterministic: true, memoryArena: false });
    const init = Float32Array.from({ length: n }, (_, i) => i * 0.1 - 0.5);
    resetTransferStats();
    const state = new DoubleBuffer([StatePair.create(s, 'state_in', 'state_out', { dtype: 'float32', dims, data: init })]);
    const x = s.alloc('float32', dims);
    const binding = s.createBinding().bindInput('x', x);
    state.bind(binding);
    const expected = Float32Array.from(init);
    const first = state.current('state_in');
    for (let step = 0; step < 10; step++) {
      const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(step * 13 + i) * (step + 1));
      x.upload(xs);
      s.run(binding);
      for (let i = 0; i < n; i++) expected[i] = Math.fround((expected[i] as number) + (xs[i] as number));
      state.swap(binding);
    }
    // The initial state plus 10 batches went in; nothing came out during the loop.
    expect(transferStats()).toMatchObject({ hostToDeviceBytes: 11 * n * 4, deviceToHostBytes: 0, hostToDeviceCopies: 11 });
    expect(state.current('state_in')).toBe(first); // an even number of swaps
    expect(state.current('state_in').download()).toBeAllclose(expected, EXACT);
    expect(transferStats().deviceToHostBytes).toBe(n * 4);
    state.release();
    expect(first.released).toBe(true);
  });

  it('self-test runs the double-buffered graph on CPU and matches JS', () => {
    const r = deviceSelfTest({ kind: 'cpu' }, 6);
    expect([r.device, r.steps, r.maxAbsError]).toEqual([{ kind: 'cpu' }, 6, 0]);
    expect(r.createMs).toBeGreaterThan(0);
  });

  it('in place: one tensor is both buffers (bound as input and output), swap() keeps it, release() frees it once', () => {
    const live = liveTensorCount();
    const s = DeviceSession.create(addStateModel('float32', [2]), { deterministic: true });
    const a = StatePair.create(s, 'state_in', 'state_out', { dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) }, true);
    const b = StatePair.create(s, 'state_in', 'state_out', { dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) });
    expect(liveTensorCount() - live).toBe(3); // one tensor in place, two double-buffered
    expect([a.inPlace, b.inPlace, a.next === a.current, b.next === b.current]).toEqual([true, false, true, false]);
    const first = a.current;
    a.swap();
    expect(a.current).toBe(first);
    a.release();
    b.release();
    s.release();
    expect(first.released).toBe(true);
    expect(liveTensorCount()).toBe(live);
  });

  it('rejects mismatched or repeated buffers', () => {
    const a = allocCpu('float32', [2]);
    expect(() => new StatePair('s_in', 's_out', a, allocCpu('float32', [3]))).toThrow("field 'state 's_in'': buffers differ: float32[2] vs float32[3]");
    expect(() => new StatePair('s_in', 's_out', a, a)).toThrow('the two buffers must be different tensors');
    const p = new StatePair('s_in', 's_out', a, allocCpu('float32', [2]));
    const q = new StatePair('s_in', 't_out', allocCpu('float32', [2]), allocCpu('float32', [2]));
    expect(() => new DoubleBuffer([p, q])).toThrow("field 'state 's_in'': named twice in one DoubleBuffer");
    expect(() => new DoubleBuffer([p]).current('t_in')).toThrow('no such state (states: s_in)');
  });
});
