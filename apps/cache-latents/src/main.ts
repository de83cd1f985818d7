// `pnpm cache-latents [--config file] [--flags]`: the app entry point.
import { createRootLogger, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

runMain(() => runCli(hideBin(process.argv), { logger: createRootLogger('cache-latents'), write: (text) => process.stdout.write(text) }));
