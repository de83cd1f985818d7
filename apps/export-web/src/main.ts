// `pnpm export-web --model <hf dir> --out <folder>`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('export-web');
runMain(() => runCli(hideBin(process.argv), io.write, io.logger), io);
