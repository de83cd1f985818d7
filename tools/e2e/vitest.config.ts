import { mergeConfig } from 'vitest/config';
import { projectConfig } from '../../vitest.shared.js';

// `pnpm test`: the browser test of the report. The pack test (npm installs third-party dependencies)
// runs only as the `test:pack` target (vitest.pack.config.ts).
export default mergeConfig(projectConfig({ testTimeout: 300_000 }), { test: { exclude: ['src/pack.test.ts'] } });
