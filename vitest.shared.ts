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
      // Generous limits: CI and helpers share a loaded 2-core machine, where a tokenizer load in a
      // beforeAll can take far longer than vitest's 10 s default. A test that hangs still fails.
      testTimeout: overrides.testTimeout ?? 60_000,
      hookTimeout: Math.max(overrides.testTimeout ?? 60_000, 300_000),
      teardownTimeout: 60_000,
      // One fork per core at most. vitest's worker RPC (onTaskUpdate) times out after a fixed 60 s when
      // a worker's event loop is blocked: tests never block it for long (child processes are spawned
      // asynchronously, see tools/pipeline/src/experiment.test.ts).
      pool: 'forks',
      poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    },
  });
}
