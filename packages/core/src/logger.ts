// Logging. Packages take a `Logger` (the structural subset of pino they use) or return data; only apps
// create the root logger, with createRootLogger, writing JSON records to stderr so stdout stays free
// for command output.
import { pino } from 'pino';

/** The logging interface packages accept (a pino logger satisfies it). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The root logger of an app: pino JSON lines on stderr, bound to the app's name. */
export function createRootLogger(app: string, level: LogLevel = 'info'): Logger {
  return pino({ name: app, level, base: { app } }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything (for library callers that pass none). */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silentLogger;
  },
};
