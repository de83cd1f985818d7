// The yargs layer of `phase2`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { type PhaseCliIo, phase2Config, phaseCommand, runPhase2, runPhaseCli } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await runPhaseCli(
    'phase2',
    [
      phaseCommand({
        command: '$0',
        describe: 'phase 2: CE + KL from the cached teachers; new LoRA on M1 → M2 (<out>/hf)',
        schema: phase2Config,
        run: runPhase2,
        trains: true,
      }),
    ],
    argv,
    io,
  );
}
