// The yargs layer of `cot-sft`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved beside every checkpoint.
import { buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { cotSftConfig, runCotSft } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], o: { logger: Logger; write: (text: string) => void }): Promise<void> {
  await buildCli({
    name: 'cot-sft',
    out: o.write,
    commands: [defineCommand({
      command: '$0', describe: 'explicit CoT SFT of a base model → M0 (variant no-cot: the No-CoT baseline)', schema: cotSftConfig,
      handler: async (config) => {
        o.logger.info({ config }, 'resolved config');
        o.write(`${JSON.stringify(await runCotSft(config, { logger: o.logger }))}\n`);
      },
    })],
  }).parseAsync([...argv]);
}
