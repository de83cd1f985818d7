// Progress for long loops. On a TTY: one redrawn line with a bar, rate and ETA. Otherwise: a structured
// log record every `intervalMs` (and at the end), so CI logs and files stay readable.
import type { Logger } from './logger.js';

export interface ProgressOptions {
  /** Total number of units (steps, rows, problems). */
  total: number;
  /** Shown before the bar and as `label` in log records. */
  label: string;
  /** Where records go when the stream is not a TTY. */
  logger: Logger;
  /** The terminal stream; the bar is drawn only if it is a TTY (default process.stderr). */
  stream?: { isTTY?: boolean; write(s: string): unknown; columns?: number };
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

/** Formats seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`)
    .join(' ');
}

/** Starts reporting progress of a loop of `total` units. */
export function createProgress(opts: ProgressOptions): Progress {
  const now = opts.now ?? (() => performance.now());
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
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
    const line = `${opts.label} [${bar}] ${doneUnits}/${opts.total} ${(frac * 100).toFixed(0)}% ` +
      `${rate.toPrecision(3)}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)} ${formatFields(fields)}`;
    const cols = stream.columns ?? 120;
    stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length))}`);
  };
  const record = (msg: string) => {
    const { elapsed, rate, eta } = stats();
    opts.logger.info({
      label: opts.label, done: doneUnits, total: opts.total, perSecond: Number(rate.toPrecision(4)),
      elapsedS: Number(elapsed.toFixed(1)), etaS: Number.isFinite(eta) ? Number(eta.toFixed(1)) : null, ...fields,
    }, msg);
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
        stream.write('\n');
      } else {
        record('finished');
      }
    },
  };
}
