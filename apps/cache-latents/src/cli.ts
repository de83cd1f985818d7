// The yargs layer of `cache-latents`: one command (the default) whose flags come from the config schema;
// --config, --print-config, --help; the resolved config is logged and saved in the output folder.
import { type PhaseCliIo, cacheLatentsConfig, phaseCommand, runCacheLatents, runPhaseCli } from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await runPhaseCli(
    'cache-latents',
    [
      phaseCommand({
        command: '$0',
        describe: 'run the union encoder over the training set; write top-k latent distributions (chunked, resumable, with a manifest)',
        schema: cacheLatentsConfig,
        run: runCacheLatents,
      }),
    ],
    argv,
    io,
  );
}
