// The yargs layer of `merge-lora`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { mergeLoraConfig, runMergeLora } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], o: { logger: Logger; write: (text: string) => void }): Promise<void> {
  await buildCli({
    name: 'merge-lora',
    out: o.write,
    commands: [defineCommand({
      command: '$0', describe: 'merge a PEFT LoRA adapter into the HF checkpoint it was trained on → <out>/hf', schema: mergeLoraConfig,
      handler: async (config) => {
        o.logger.info({ config }, 'resolved config');
        o.write(`${JSON.stringify(await runMergeLora(config, { logger: o.logger }))}\n`);
      },
    })],
  }).parseAsync([...argv]);
}
