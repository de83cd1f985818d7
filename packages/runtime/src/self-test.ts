// deviceSelfTest: a tiny double-buffered graph run on a device and compared with JS arithmetic (used by
// `pnpm cuda:install --check` and the tests).
import { DoubleBuffer, StatePair } from './double-buffer.js';
import { DeviceSession, type DeviceSessionOptions } from './device-session.js';
import type { Device } from './session.js';
import { addStateModel } from './test-models.js';

/** What `deviceSelfTest` measured. */
export interface SelfTestResult {
  device: Device;
  /** Steps of `state_out = state_in + x` run with device-resident, double-buffered state. */
  steps: number;
  /** Largest |device result - JS result| (0 expected: float32 adds of the same values). */
  maxAbsError: number;
  /** Session creation, in milliseconds. */
  createMs: number;
  /** All steps, in milliseconds. */
  runMs: number;
}

/**
 * Runs a tiny double-buffered graph (`state_out = state_in + x`, float32[2, 8]) for `steps` steps on
 * `device` and compares with JS arithmetic; throws when the session cannot start or a value differs.
 */
export function deviceSelfTest(device: Device, steps = 4, opts: DeviceSessionOptions = {}): SelfTestResult {
  const dims = [2, 8];
  const n = 16;
  const t0 = performance.now();
  const session = DeviceSession.create(addStateModel('float32', dims), { ...opts, device });
  const t1 = performance.now();
  const init = Float32Array.from({ length: n }, (_, i) => i - 4.5);
  const state = new DoubleBuffer([StatePair.create(session, 'state_in', 'state_out', { dtype: 'float32', dims, data: init })]);
  const x = session.alloc('float32', dims);
  const binding = session.createBinding().bindInput('x', x);
  state.bind(binding);
  const expected = Float32Array.from(init);
  try {
    for (let step = 0; step < steps; step++) {
      const xs = Float32Array.from({ length: n }, (_, i) => (i % 5) * 0.25 - step);
      x.upload(xs);
      session.run(binding);
      for (let i = 0; i < n; i++) expected[i] = Math.fround((expected[i] as number) + (xs[i] as number));
      state.swap(binding);
    }
    const got = state.current('state_in').download() as Float32Array;
    let maxAbsError = 0;
    for (let i = 0; i < n; i++) maxAbsError = Math.max(maxAbsError, Math.abs((got[i] as number) - (expected[i] as number)));
    if (!(maxAbsError === 0)) {
      throw new Error(`self-test on ${device.kind}: results differ from JS arithmetic by up to ${maxAbsError}`);
    }
    return { device, steps, maxAbsError, createMs: t1 - t0, runMs: performance.now() - t1 };
  } finally {
    binding.release();
    x.release();
    state.release();
    session.release();
  }
}
