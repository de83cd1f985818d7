// The yargs layer of `cache-latents`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { cacheLatentsConfig, runCacheLatents } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], o: { logger: Logger; write: (text: string) => void }): Promise<void> {
  await buildCli({
    name: 'cache-latents',
    out: o.write,
    commands: [defineCommand({
      command: '$0', describe: 'run the union encoder over the training set; write top-k latent distributions (chunked, resumable, with a manifest)', schema: cacheLatentsConfig,
      handler: async (config) => {
        o.logger.info({ config }, 'resolved config');
        o.write(`${JSON.stringify(await runCacheLatents(config, { logger: o.logger }))}\n`);
      },
    })],
  }).parseAsync([...argv]);
}
