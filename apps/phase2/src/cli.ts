// The yargs layer of `phase2`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { phase2Config, runPhase2 } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], o: { logger: Logger; write: (text: string) => void }): Promise<void> {
  await buildCli({
    name: 'phase2',
    out: o.write,
    commands: [defineCommand({
      command: '$0', describe: 'phase 2: CE + KL from the cached teachers; new LoRA on M1 → M2 (<out>/hf)', schema: phase2Config,
      handler: async (config) => {
        o.logger.info({ config }, 'resolved config');
        o.write(`${JSON.stringify(await runPhase2(config, { logger: o.logger }))}\n`);
      },
    })],
  }).parseAsync([...argv]);
}
