// Per-step metrics as JSON lines, one record per write(2) so a SIGKILL loses at most the line being
// written (the kernel keeps what was written; pass fsync for power loss). Resuming from step k rewrites
// the file without records of steps > k (and without a torn last line), so the file of an interrupted
// and resumed run equals that of an uninterrupted one. Also: the non-finite guard of the loop.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { UserError, inputError, writeFileAtomic } from '@latent-sft/core';

/** One metrics line: step (updates done) plus whatever the loop measured. */
export interface MetricsRecord {
  step: number;
  loss?: number;
  lr?: number;
  gradNorm?: number;
  tokensPerSec?: number;
  [key: string]: number | string | null | undefined;
}

/** Reads a metrics file; a torn (unterminated, unparsable) last line is ignored. */
export function readMetrics(path: string): MetricsRecord[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const last = lines.pop() as string; // '' when the file ends with a newline
  const out: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw inputError({ file: path, line: i + 1 }, 'invalid JSON line');
    }
    if (typeof rec !== 'object' || rec === null || typeof (rec as MetricsRecord).step !== 'number') {
      throw inputError({ file: path, line: i + 1, field: 'step' }, 'expected a record with a numeric step');
    }
    out.push(rec as MetricsRecord);
  });
  if (last.trim() !== '') {
    try {
      const rec = JSON.parse(last) as MetricsRecord;
      if (typeof rec.step === 'number') out.push(rec);
    } catch {
      // torn last line from a killed writer: dropped
    }
  }
  return out;
}

export interface MetricsWriterOptions {
  /** Continue a run resumed at this step: records with step > resumeStep are dropped first. */
  resumeStep?: number;
  /** fsync after every record (default false: a killed process loses nothing already written). */
  fsync?: boolean;
}

/** Appends metrics records to a JSONL file. */
export class MetricsWriter {
  readonly path: string;
  private fd: number | undefined;
  private readonly sync: boolean;

  private constructor(path: string, fd: number, sync: boolean) {
    this.path = path;
    this.fd = fd;
    this.sync = sync;
  }

  /** Opens for a new run (the file must be absent or empty) or for a run resumed at opts.resumeStep. */
  static open(path: string, opts: MetricsWriterOptions = {}): MetricsWriter {
    if (opts.resumeStep !== undefined) {
      const kept = existsSync(path) ? readMetrics(path).filter((r) => r.step <= (opts.resumeStep as number)) : [];
      writeFileAtomic(path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    } else if (existsSync(path) && statSync(path).size > 0) {
      throw inputError({ file: path }, 'metrics file already exists; resume the run or choose another output dir');
    }
    return new MetricsWriter(path, openSync(path, 'a'), opts.fsync ?? false);
  }

  /** Writes one record as one line. */
  append(record: MetricsRecord): void {
    if (this.fd === undefined) throw new Error(`MetricsWriter for ${this.path} is closed`);
    const buf = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    if (this.sync) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

/** A non-finite loss or gradient norm: training stops, pointing at the last good checkpoint. */
export class NonFiniteError extends UserError {
  readonly step: number;
  constructor(message: string, step: number) {
    super(message);
    this.step = step;
  }
}

/** Throws NonFiniteError (one line: the step, the value, the last good checkpoint) if loss or gradNorm is not finite. */
export function checkFinite(args: { step: number; loss: number; gradNorm?: number; lastGoodCheckpoint: string | null }): void {
  const bad: string[] = [];
  if (!Number.isFinite(args.loss)) bad.push(`loss ${args.loss}`);
  if (args.gradNorm !== undefined && !Number.isFinite(args.gradNorm)) bad.push(`grad norm ${args.gradNorm}`);
  if (bad.length === 0) return;
  const where = args.lastGoodCheckpoint ?? 'none (no checkpoint saved yet)';
  throw new NonFiniteError(`non-finite ${bad.join(' and ')} at step ${args.step}; last good checkpoint: ${where}`, args.step);
}
