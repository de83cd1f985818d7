import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `nx run @latent-sft/e2e:test:pack` (after the `build` of the packed packages, see package.json): the packed
// packages in a fresh npm project.
// Not part of `pnpm test`: npm installs the third-party dependencies (from its cache or the registry).
export default defineConfig({
  test: {
    include: ['src/pack.test.ts'],
    setupFiles: [fileURLToPath(new URL('../../packages/testing/src/setup.ts', import.meta.url))],
    testTimeout: 600_000,
    reporters: ['default', ['json', { outputFile: 'test-results/pack.json' }]],
  },
});
