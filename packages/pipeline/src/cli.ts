// The yargs layer every phase app shares: each command's flags come from its config schema (with
// --config, --print-config, --help); its handler logs the resolved config and writes the phase's
// summary as one JSON line. Apps only list their commands.
import { type ConfigDef, type ConfigOf, buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import type { z } from 'zod';
import type { RunContext } from './context.js';

/** Where a phase app logs and writes its one-line JSON summary. */
export interface PhaseCliIo {
  logger: Logger;
  write: (text: string) => void;
}

/** One command of a phase app: `run` gets the resolved config and returns the summary. */
export interface PhaseCommand<S extends z.ZodObject = z.ZodObject> {
  command: string;
  describe: string;
  schema: ConfigDef<S>;
  run: (config: ConfigOf<S>, ctx: RunContext) => Promise<unknown>;
}

/** Keeps one command's schema and run function typed together (for the commands array). */
export function phaseCommand<S extends z.ZodObject>(cmd: PhaseCommand<S>): PhaseCommand {
  return cmd as unknown as PhaseCommand;
}

/** Parses `argv` (without node and script) and runs the chosen command. */
export async function runPhaseCli(name: string, commands: readonly PhaseCommand[], argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await buildCli({
    name,
    out: io.write,
    logger: io.logger,
    commands: commands.map((c) =>
      defineCommand({
        command: c.command,
        describe: c.describe,
        schema: c.schema,
        handler: async (config) => {
          io.logger.info({ config }, 'resolved config');
          io.write(`${JSON.stringify(await c.run(config, { logger: io.logger }))}\n`);
        },
      }),
    ),
  }).parseAsync([...argv]);
}
