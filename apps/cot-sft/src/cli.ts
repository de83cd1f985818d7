// The yargs layer of `cot-sft`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved beside every checkpoint.
import { type PhaseCliIo, cotSftConfig, phaseCommand, runCotSft, runPhaseCli } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await runPhaseCli(
    'cot-sft',
    [
      phaseCommand({
        command: '$0',
        describe: 'explicit CoT SFT of a base model → M0 (variant no-cot: the No-CoT baseline)',
        schema: cotSftConfig,
        run: runCotSft,
        trains: true,
      }),
    ],
    argv,
    io,
  );
}
