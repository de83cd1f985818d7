import { projectConfig } from '../../vitest.shared.js';

// Chromium, a WASM compile and a tokenizer load on a busy 2-core machine: generous limits.
export default projectConfig({ testTimeout: 600_000 });
