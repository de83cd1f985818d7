// `pnpm eval <run|report|score> ...`: the app entry point.
import { createRootLogger, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

runMain(() => runCli(hideBin(process.argv), (text) => process.stdout.write(text), createRootLogger('eval')));
