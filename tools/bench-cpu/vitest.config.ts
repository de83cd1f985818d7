import { mergeConfig } from 'vitest/config';
import { projectConfig } from '../../vitest.shared.js';

// Benchmarks only (`vitest bench`): no test files, one fork so runs do not compete for the 2 cores.
export default mergeConfig(projectConfig(), {
  test: {
    include: [],
    benchmark: { include: ['src/**/*.bench.ts'] },
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
  },
});
