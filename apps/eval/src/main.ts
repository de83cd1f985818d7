// `pnpm eval <run|report|score> ...`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('eval');
runMain(() => runCli(hideBin(process.argv), io.write, io.logger), io);
