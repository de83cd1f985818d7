// Vitest setup file (registered by vitest.shared.ts): adds expect(actual).toBeAllclose(expected, opts).
import { expect } from 'vitest';
import { allclose, describeAllclose, type AllcloseOptions, type Numeric } from './allclose.js';

expect.extend({
  toBeAllclose(received: Numeric, expected: Numeric, opts: AllcloseOptions = {}) {
    const r = allclose(received, expected, opts);
    return {
      pass: r.pass,
      message: () => (r.pass ? `expected values not to be allclose (atol=${opts.atol ?? 1e-8}, rtol=${opts.rtol ?? 1e-5})` : describeAllclose(r, opts)),
    };
  },
});
