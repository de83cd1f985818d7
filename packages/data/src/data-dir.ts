// The repo's data/ folder and its integrity check against data/SHA256SUMS (sha256sum format:
// `<64 hex>  <relative path>`, or `<64 hex> *<path>` for binary mode). Verification reports per file;
// it never throws for a mismatch, only for a malformed SHA256SUMS.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputError } from '@latent-sft/core';
import { lineRecords, readTextFile } from './records.js';

/** The repo's data/ folder, resolved from this module (works from both src/ and dist/). */
export function defaultDataDir(): string {
  return fileURLToPath(new URL('../../../data/', import.meta.url));
}

/** Lowercase hex sha256 of a file's bytes. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** One line of SHA256SUMS. */
export interface ChecksumListing {
  /** Path relative to the data dir, '/'-separated as written. */
  file: string;
  sha256: string;
  line: number;
}

export type ChecksumStatus = 'ok' | 'mismatch' | 'missing';

export interface ChecksumResult {
  file: string;
  expected: string;
  /** The file's sha256, or null when the file is missing. */
  actual: string | null;
  status: ChecksumStatus;
}

/** Parses a sha256sum listing; paths must be relative and stay inside the folder. */
export function parseChecksumList(text: string, file: string): ChecksumListing[] {
  const out: ChecksumListing[] = [];
  const seen = new Set<string>();
  for (const rec of lineRecords(text)) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(rec.text);
    if (!m) throw inputError({ file, line: rec.line }, "expected '<64 hex digits>  <path>'");
    const path = m[2] as string;
    if (isAbsolute(path) || path.split(/[\\/]/).includes('..')) {
      throw inputError({ file, line: rec.line, field: 'path' }, `'${path}' must be relative and inside the data folder`);
    }
    if (seen.has(path)) throw inputError({ file, line: rec.line, field: 'path' }, `'${path}' is listed twice`);
    seen.add(path);
    out.push({ file: path, sha256: (m[1] as string).toLowerCase(), line: rec.line });
  }
  return out;
}

/** Checks every file listed in `<dataDir>/SHA256SUMS`, in listing order. */
export function verifyChecksums(dataDir: string = defaultDataDir()): ChecksumResult[] {
  const listPath = join(dataDir, 'SHA256SUMS');
  return parseChecksumList(readTextFile(listPath), listPath).map(({ file, sha256 }) => {
    const path = join(dataDir, file);
    let exists = false;
    try {
      exists = statSync(path).isFile();
    } catch {
      exists = false;
    }
    if (!exists) return { file, expected: sha256, actual: null, status: 'missing' as const };
    const actual = sha256File(path);
    return { file, expected: sha256, actual, status: actual === sha256 ? ('ok' as const) : ('mismatch' as const) };
  });
}
