// The app boundary: run a main function, print a UserError as one line and exit 1; errors of the
// environment (a full or read-only disk, a missing or unwritable path, memory that cannot be allocated)
// also become one line naming the path; stacks are kept for real bugs only.
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
      print(errorText(e));
      process.exitCode = 1;
    })
    .finally(() => io?.logger?.output?.close());
}

/** What runMain prints for an error: `error: <one line>` for a UserError or an error of the environment, else the stack. */
export function errorText(e: unknown): string {
  const line = isUserError(e) ? e.message : environmentError(e);
  return line !== null ? `error: ${line}\n` : `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
}

const SYSTEM_ERRORS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  EISDIR: 'is a folder, expected a file',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
};

/**
 * One line for an error of the environment rather than of our code: a Node system error with a path
 * (`<path>: <what> (<code>)`) or memory that cannot be allocated; null for anything else (a bug: the
 * caller prints its stack).
 */
export function environmentError(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const sys = e as Error & { code?: unknown; path?: unknown; dest?: unknown };
  if (typeof sys.code === 'string' && sys.code in SYSTEM_ERRORS && typeof sys.path === 'string') {
    return `${sys.path}${typeof sys.dest === 'string' ? ` → ${sys.dest}` : ''}: ${SYSTEM_ERRORS[sys.code]} (${sys.code})`;
  }
  if (e instanceof RangeError && /allocation failed|Invalid (typed )?array length|Array buffer/i.test(e.message)) {
    return `out of memory: ${e.message.split('\n')[0]} (a smaller model, batch or sequence length needs less)`;
  }
  if (/bad_alloc|Failed to allocate memory|out of memory/i.test(e.message)) {
    return `out of memory: ${e.message.split('\n')[0]?.slice(0, 200)} (a smaller model, batch or sequence length needs less)`;
  }
  return null;
}
