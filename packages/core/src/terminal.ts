// Where an app's log records and progress bar go. One `LogOutput` owns stderr: pino writes its JSON
// records into it (it is pino's destination), and it prints them as JSON lines, or as short
// human-readable lines on a terminal, always above the progress bar (the bar line is cleared before a
// record and redrawn after it, so the two never share a line). `--log-file` appends every record as
// JSON, whatever the terminal shows.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatDuration } from './duration.js';

/** `auto`: human-readable lines on a TTY, JSON lines otherwise. */
export type LogFormat = 'auto' | 'pretty' | 'json';

export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'pretty', 'json'];

/** What the shared CLI flags set (--log-format, --quiet, --log-file). */
export interface LogOptions {
  format?: LogFormat;
  /** Only warnings and errors on the terminal, no progress bar (the log file still gets everything). */
  quiet?: boolean;
  /** A file that gets every record as a JSON line (appended; parent folders are created). */
  file?: string;
}

/** The subset of a Node stream that output goes to (tests pass a recording one). */
export interface TextStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

const CLEAR_LINE = '\r\x1b[2K';
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOR: Record<number, string> = { 10: '\x1b[90m', 20: '\x1b[90m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
/** Record keys that a human line leaves out (time is shown as hh:mm:ss, msg as the text). */
const HIDDEN_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'app', 'msg', 'v']);
const MAX_VALUE_CHARS = 80;

const cut = (s: string): string => (s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s);

function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(5)));
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v !== null && typeof v === 'object' && 'message' in v && 'stack' in v) return JSON.stringify((v as { message: unknown }).message);
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'number' || typeof x === 'string')) {
    return cut(`{${formatFields(v as Record<string, unknown>)}}`);
  }
  return cut(JSON.stringify(v) ?? String(v));
}

/** `key=value ...` of a flat record (numbers to 5 significant digits, long objects cut). */
export function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
}

/**
 * One pino record as a short line: `hh:mm:ss [LEVEL] message key=value ...` (the level only when it
 * is not INFO; colours only with `color`).
 */
export function formatRecord(rec: Record<string, unknown>, color: boolean): string {
  const level = typeof rec['level'] === 'number' ? rec['level'] : 30;
  const d = new Date(typeof rec['time'] === 'number' ? rec['time'] : 0);
  const time = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) if (!HIDDEN_KEYS.has(k)) rest[k] = v;
  const paint = (code: string | undefined, s: string) => (color && code !== undefined ? `${code}${s}\x1b[0m` : s);
  const parts = [paint('\x1b[2m', time)];
  if (level !== 30) parts.push(paint(LEVEL_COLOR[level], LEVELS[level] ?? `L${level}`));
  if (typeof rec['msg'] === 'string' && rec['msg'] !== '') parts.push(rec['msg']);
  if (typeof rest['label'] === 'string' && typeof rest['done'] === 'number' && typeof rest['total'] === 'number') {
    // A progress record: `label done/total rate ETA fields`.
    const { label, done, total, perSecond, elapsedS, etaS, ...others } = rest;
    parts.push(`${label} ${done}/${total}`);
    if (typeof perSecond === 'number') parts.push(`${formatValue(perSecond)}/s`);
    if (typeof elapsedS === 'number') parts.push(`elapsed ${formatDuration(elapsedS)}`);
    if (typeof etaS === 'number' && done !== total) parts.push(`ETA ${formatDuration(etaS)}`);
    for (const k of Object.keys(rest)) delete rest[k];
    Object.assign(rest, others);
  }
  const fields = formatFields(rest);
  if (fields !== '') parts.push(fields);
  return parts.join(' ');
}

/**
 * A command's result on a terminal: a one-line JSON object (what the apps print when done) becomes
 * an aligned `key  value` block; anything else is returned unchanged.
 */
export function formatResult(text: string): string {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!body.startsWith('{') || body.includes('\n')) return text;
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch {
    return text;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return text;
  const entries = Object.entries(obj as Record<string, unknown>);
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  const value = (v: unknown): string =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? formatFields(v as Record<string, unknown>) : formatValue(v);
  return `${entries.map(([k, v]) => `  ${k.padEnd(width)}  ${value(v)}`).join('\n')}\n`;
}

/** The terminal side of an app's logger: pino's destination, the progress bar and the result writer. */
export class LogOutput {
  readonly #stream: TextStream;
  #format: LogFormat = 'auto';
  #quiet = false;
  #fd: number | undefined;
  #bar: string | null = null;

  constructor(stream: TextStream, options: LogOptions = {}) {
    this.#stream = stream;
    this.configure(options);
  }

  /** Applies the CLI flags (the logger may already be in use: later records follow the new setting). */
  configure(options: LogOptions): void {
    if (options.format !== undefined) this.#format = options.format;
    if (options.quiet !== undefined) this.#quiet = options.quiet;
    if (options.file !== undefined) {
      if (this.#fd !== undefined) closeSync(this.#fd);
      mkdirSync(dirname(options.file), { recursive: true });
      this.#fd = openSync(options.file, 'a');
    }
  }

  /** Records print as human-readable lines (pretty, or auto on a TTY). */
  get pretty(): boolean {
    return this.#format === 'pretty' || (this.#format === 'auto' && this.#stream.isTTY === true);
  }

  /** Progress is drawn as a redrawn bar line (pretty output on a TTY, not quiet). */
  get interactive(): boolean {
    return this.pretty && this.#stream.isTTY === true && !this.#quiet;
  }

  /** The format as set (auto resolves per stream). */
  get format(): LogFormat {
    return this.#format;
  }

  get quiet(): boolean {
    return this.#quiet;
  }

  /** pino's destination: one JSON record per call. */
  write(line: string): void {
    if (this.#fd !== undefined) writeSync(this.#fd, line.endsWith('\n') ? line : `${line}\n`);
    if (!this.#quiet && !this.pretty) {
      this.print(line.endsWith('\n') ? line : `${line}\n`);
      return;
    }
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (this.#quiet && (typeof rec['level'] !== 'number' || rec['level'] < 40)) return;
    this.print(this.pretty ? `${formatRecord(rec, this.#stream.isTTY === true)}\n` : line.endsWith('\n') ? line : `${line}\n`);
  }

  /** Writes whole lines above the progress bar (clears the bar, writes, redraws it). */
  print(text: string): void {
    if (this.#bar === null) this.#stream.write(text);
    else this.#stream.write(`${CLEAR_LINE}${text}${this.#bar}`);
  }

  /** Writes to another stream of the same terminal (stdout) without writing over the bar. */
  printTo(other: TextStream, text: string): void {
    if (this.#bar === null || other.isTTY !== true) {
      other.write(text);
      return;
    }
    this.#stream.write(CLEAR_LINE);
    other.write(text);
    this.#stream.write(this.#bar);
  }

  /** Draws (or redraws) the bar line, cut to the terminal width. */
  bar(line: string): void {
    const cols = this.#stream.columns ?? 120;
    this.#bar = line.length > cols - 1 ? line.slice(0, cols - 1) : line;
    this.#stream.write(`${CLEAR_LINE}${this.#bar}`);
  }

  /** Leaves the last bar on screen as a finished line. */
  endBar(): void {
    if (this.#bar === null) return;
    this.#bar = null;
    this.#stream.write('\n');
  }

  /** Closes the log file. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
