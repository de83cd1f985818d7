// `pnpm phase2 [--config file] [--flags]`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('phase2');
// --gpus N: the launcher starts N copies of this same command (node, its flags, this script) as ranks.
const launch = { command: process.execPath, args: [...process.execArgv, process.argv[1] as string], env: process.env };
runMain(() => runCli(hideBin(process.argv), { ...io, launch }), io);
