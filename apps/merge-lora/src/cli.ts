// The yargs layer of `merge-lora`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { type PhaseCliIo, mergeLoraConfig, phaseCommand, runMergeLora, runPhaseCli } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await runPhaseCli(
    'merge-lora',
    [
      phaseCommand({
        command: '$0',
        describe: 'merge a PEFT LoRA adapter into the HF checkpoint it was trained on → <out>/hf',
        schema: mergeLoraConfig,
        run: runMergeLora,
      }),
    ],
    argv,
    io,
  );
}
