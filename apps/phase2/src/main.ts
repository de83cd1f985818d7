// `pnpm phase2 [--config file] [--flags]`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('phase2');
runMain(() => runCli(hideBin(process.argv), io), io);
