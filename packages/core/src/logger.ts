// Logging. Packages take a `Logger` (the structural subset of pino they use) or return data; only apps
// create the root logger, with createRootLogger (or createAppIo): pino records into a LogOutput on
// stderr (JSON lines, or short human-readable lines on a terminal), so stdout stays free for command
// output.
import { pino } from 'pino';
import { type LogOptions, LogOutput, type TextStream, formatResult } from './terminal.js';

/** The logging interface packages accept (a pino logger satisfies it). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** The terminal output this logger prints to (root loggers and their children): progress bars draw there. */
  readonly output?: LogOutput;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface RootLoggerOptions extends LogOptions {
  level?: LogLevel;
  /** The terminal stream (default process.stderr). */
  stream?: TextStream;
  /** Clock of the records' `time` in epoch ms (tests fix it; default Date.now). */
  now?: () => number;
}

type Pino = ReturnType<typeof pino>;

/** A pino logger bound to its LogOutput; children share it. */
class OutputLogger implements Logger {
  readonly #p: Pino;
  readonly output: LogOutput;

  constructor(p: Pino, output: LogOutput) {
    this.#p = p;
    this.output = output;
  }
  #log(level: 'info' | 'warn' | 'error' | 'debug', obj: object, msg: string | undefined): void {
    if (msg === undefined) this.#p[level](obj);
    else this.#p[level](obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.#log('info', obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.#log('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.#log('error', obj, msg);
  }
  debug(obj: object, msg?: string): void {
    this.#log('debug', obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new OutputLogger(this.#p.child(bindings), this.output);
  }
}

/**
 * The root logger of an app, bound to its name: pino records on stderr, as JSON lines or (a TTY, or
 * format 'pretty') human-readable lines; `logger.output.configure` applies the CLI flags later.
 */
export function createRootLogger(app: string, options: RootLoggerOptions = {}): Logger & { readonly output: LogOutput } {
  const { level = 'info', stream = process.stderr, now, ...logOptions } = options;
  const output = new LogOutput(stream, logOptions);
  const timestamp = now === undefined ? {} : { timestamp: () => `,"time":${now()}` };
  return new OutputLogger(pino({ name: app, level, base: { app }, ...timestamp }, output), output);
}

/** What an app's main passes to its CLI: the root logger and the writer of command output (stdout). */
export interface AppIo {
  logger: Logger & { readonly output: LogOutput };
  /** Writes command output; with human-readable logs on a terminal (or --log-format pretty), a one-line JSON result prints as a summary block. */
  write: (text: string) => void;
}

/** The logger and stdout writer of an app (streams default to process.stderr / process.stdout). */
export function createAppIo(app: string, streams: { stdout?: TextStream; stderr?: TextStream } = {}): AppIo {
  const stdout = streams.stdout ?? process.stdout;
  const logger = createRootLogger(app, { stream: streams.stderr ?? process.stderr });
  const write = (text: string): void => {
    // A human summary on a terminal, or wherever human-readable logs were asked for (--log-format pretty).
    const human = logger.output.pretty && (stdout.isTTY === true || logger.output.format === 'pretty');
    logger.output.printTo(stdout, human ? formatResult(text) : text);
  };
  return { logger, write };
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
