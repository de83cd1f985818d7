// `pnpm phase1 <encoder|decoder|union> [--config file] [--flags]`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('phase1');
runMain(() => runCli(hideBin(process.argv), io), io);
