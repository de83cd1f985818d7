// Progress for long loops. When the logger prints to an interactive terminal (its LogOutput): one
// redrawn bar line with rate and ETA, kept below the log lines. Otherwise: a structured log record
// every `intervalMs` (and at the end), so CI logs and files stay readable.
import type { Logger } from './logger.js';
import { formatDuration } from './duration.js';
import { formatFields } from './terminal.js';

export { formatDuration };

export interface ProgressOptions {
  /** Total number of units (steps, rows, problems). */
  total: number;
  /** Shown before the bar and as `label` in log records. */
  label: string;
  /** Where records go; the bar is drawn on `logger.output` when that is interactive. */
  logger: Logger;
  /** Seconds between log records when not on a TTY (default 10 s). */
  intervalMs?: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
}

export type ProgressFields = Record<string, number | string>;

export interface Progress {
  /** Adds n finished units; fields (loss, lr, …) are shown and logged with the next update. */
  tick(n?: number, fields?: ProgressFields): void;
  /** Ends the bar (newline) or writes the final record. */
  done(fields?: ProgressFields): void;
}

/** Starts reporting progress of a loop of `total` units. */
export function createProgress(opts: ProgressOptions): Progress {
  const now = opts.now ?? (() => performance.now());
  const output = opts.logger.output;
  const tty = output?.interactive === true;
  const intervalMs = opts.intervalMs ?? 10_000;
  const start = now();
  let doneUnits = 0;
  let last = start;
  let fields: ProgressFields = {};

  const stats = () => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? doneUnits / elapsed : 0;
    const eta = rate > 0 ? (opts.total - doneUnits) / rate : Infinity;
    return { elapsed, rate, eta };
  };
  const draw = () => {
    const { elapsed, rate, eta } = stats();
    const frac = opts.total > 0 ? Math.min(1, doneUnits / opts.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    output?.bar(
      `${opts.label} [${bar}] ${doneUnits}/${opts.total} ${(frac * 100).toFixed(0)}% ` +
        `${rate.toPrecision(3)}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)} ${formatFields(fields)}`.trimEnd(),
    );
  };
  const record = (msg: string) => {
    const { elapsed, rate, eta } = stats();
    opts.logger.info(
      {
        label: opts.label,
        done: doneUnits,
        total: opts.total,
        perSecond: Number(rate.toPrecision(4)),
        elapsedS: Number(elapsed.toFixed(1)),
        etaS: Number.isFinite(eta) ? Number(eta.toFixed(1)) : null,
        ...fields,
      },
      msg,
    );
  };

  return {
    tick(n = 1, f) {
      doneUnits += n;
      if (f) fields = { ...fields, ...f };
      const t = now();
      if (tty) {
        if (t - last >= 100 || doneUnits >= opts.total) {
          last = t;
          draw();
        }
      } else if (t - last >= intervalMs) {
        last = t;
        record('progress');
      }
    },
    done(f) {
      if (f) fields = { ...fields, ...f };
      if (tty) {
        draw();
        output?.endBar();
      } else {
        record('finished');
      }
    },
  };
}
