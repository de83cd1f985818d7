// @latent-sft/testing: numeric comparison for tests. The matcher itself is registered by setup.ts.
export { allclose } from './allclose.js';
export type { AllcloseOptions, AllcloseReport, Numeric } from './allclose.js';
export { oneLineError } from './errors.js';
