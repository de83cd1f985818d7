// `pnpm cache-latents [--config file] [--flags]`: the app entry point.
import { createAppIo, runMain } from '@latent-sft/core';
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';

const io = createAppIo('cache-latents');
runMain(() => runCli(hideBin(process.argv), io), io);
