// Shared vitest settings for every project: the in-repo source condition, the toBeAllclose matcher,
// and a JSON report per project that tools/scripts/test-all.mjs sums into one closing line.
import { fileURLToPath } from 'node:url';
import { defineConfig, type UserConfig } from 'vitest/config';

const setupFile = fileURLToPath(new URL('./packages/testing/src/setup.ts', import.meta.url));
const conditions = ['@latent-sft/source', 'node', 'import', 'module', 'default'];

/** The vitest config of one project; `overrides.test` is merged over the shared test options. */
export function projectConfig(overrides: { testTimeout?: number } = {}): UserConfig {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@latent-sft/source'] } },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      setupFiles: [setupFile],
      reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
      testTimeout: overrides.testTimeout ?? 60_000,
      pool: 'forks',
      poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    },
  });
}
