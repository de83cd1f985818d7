// Atomic file output: write to a temporary file beside the target, fsync, then rename over it, so a
// reader never sees a half-written file and a crash leaves the previous version (or nothing).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let counter = 0;
function tempPathFor(target: string): string {
  counter += 1;
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${counter}`);
}

/** Writes data to path atomically (creating the parent folder). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const w = new AtomicWriter(path);
  try {
    w.write(data);
    w.commit();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Writes a value as pretty JSON (with a final newline) atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A streamed atomic write: append with write(), then commit() to publish or abort() to discard. */
export class AtomicWriter {
  readonly path: string;
  readonly tempPath: string;
  private fd: number | undefined;

  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.tempPath = tempPathFor(path);
    this.fd = openSync(this.tempPath, 'w');
  }

  write(data: string | Uint8Array): void {
    if (this.fd === undefined) throw new Error(`AtomicWriter for ${this.path} is closed`);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
  }

  /** Flushes to disk and renames the temporary file onto the target. */
  commit(): void {
    if (this.fd === undefined) throw new Error(`AtomicWriter for ${this.path} is closed`);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    renameSync(this.tempPath, this.path);
  }

  /** Discards the temporary file; the target is untouched. Safe to call twice. */
  abort(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    rmSync(this.tempPath, { force: true });
  }
}
