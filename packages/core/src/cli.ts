// The app boundary: run a main function, print a UserError as one line and exit 1, and keep stacks
// for real bugs.
import { isUserError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * Runs an app's main; a UserError becomes `error: <message>` on stderr and exit code 1. With the
 * app's logger, the message is printed through its output (below a finished progress bar line).
 */
export function runMain(main: () => Promise<void> | void, io?: { logger?: Logger }): void {
  const print = (text: string) => {
    const output = io?.logger?.output;
    if (output === undefined) {
      process.stderr.write(text);
      return;
    }
    output.endBar();
    output.print(text);
  };
  Promise.resolve()
    .then(main)
    .catch((e: unknown) => {
      if (isUserError(e)) print(`error: ${e.message}\n`);
      else print(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    })
    .finally(() => io?.logger?.output?.close());
}
