// Types for the toBeAllclose matcher registered in setup.ts.
import 'vitest';
import type { AllcloseOptions, Numeric } from './allclose.js';

interface AllcloseMatchers<R = unknown> {
  /** Element-wise |actual - expected| <= atol + rtol * |expected| with equal shapes. */
  toBeAllclose(expected: Numeric, opts?: AllcloseOptions): R;
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: must match vitest's own declaration of Assertion<T = any>
  interface Assertion<T = any> extends AllcloseMatchers<T> {}
  interface AsymmetricMatchersContaining extends AllcloseMatchers {}
}
