// The app boundary: run a main function, print a UserError as one line and exit 1, and keep stacks
// for real bugs.
import { isUserError } from './errors.js';

/** Runs an app's main; a UserError becomes `error: <message>` on stderr and exit code 1. */
export function runMain(main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .catch((e: unknown) => {
      if (isUserError(e)) {
        process.stderr.write(`error: ${e.message}\n`);
      } else {
        process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      }
      process.exitCode = 1;
    });
}
