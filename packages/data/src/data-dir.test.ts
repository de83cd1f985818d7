import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, parseChecksumList, sha256File, verifyChecksums } from './data-dir.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('data dir and checksums', () => {
  it('defaultDataDir is the repo data/ folder', () => {
    const dir = defaultDataDir();
    expect(existsSync(join(dir, 'MANIFEST.md'))).toBe(true);
    expect(existsSync(join(dir, 'SHA256SUMS'))).toBe(true);
  });

  it('every data file is listed in SHA256SUMS, matches, and its sha256 appears in MANIFEST.md', () => {
    const dir = defaultDataDir();
    const results = verifyChecksums(dir);
    const onDisk = filesUnder(dir)
      .map((p) => relative(dir, p).split(sep).join('/'))
      .filter((f) => f !== 'MANIFEST.md' && f !== 'SHA256SUMS')
      .sort();
    expect(results.map((r) => r.file).sort()).toEqual(onDisk);
    expect(onDisk.length).toBe(9);
    expect(results.filter((r) => r.status !== 'ok')).toEqual([]);
    const manifest = readFileSync(join(dir, 'MANIFEST.md'), 'utf8');
    for (const r of results) expect(manifest, r.file).toContain(`sha256 \`${r.expected}\``);
  });

  it('reports ok, mismatch and missing per file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latent-sft-sums-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'a.txt'), 'abc');
    writeFileSync(join(dir, 'b.txt'), 'abd');
    // sha256("abc") from FIPS 180-2, appendix B.1.
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256File(join(dir, 'sub', 'a.txt'))).toBe(abc);
    writeFileSync(join(dir, 'SHA256SUMS'), `${abc}  sub/a.txt\n${abc} *b.txt\n${abc}  gone.txt\n`);
    expect(verifyChecksums(dir).map((r) => [r.file, r.status, r.actual === null])).toEqual([
      ['sub/a.txt', 'ok', false],
      ['b.txt', 'mismatch', false],
      ['gone.txt', 'missing', true],
    ]);
  });

  it('rejects malformed listings with file:line', () => {
    expect(() => parseChecksumList('abc  x.txt\n', 'SUMS')).toThrow("SUMS:1: expected '<64 hex digits>  <path>'");
    const h = 'a'.repeat(64);
    expect(() => parseChecksumList(`${h}  ok\n${h}  ../up.txt\n`, 'SUMS')).toThrow(/^SUMS:2: field 'path': '\.\.\/up\.txt' must be relative/);
    expect(() => parseChecksumList(`${h}  x\n\n${h}  x\n`, 'SUMS')).toThrow("SUMS:3: field 'path': 'x' is listed twice");
    expect(parseChecksumList(`${h.toUpperCase()}  dir/file name.txt\n`, 'SUMS')).toEqual([{ file: 'dir/file name.txt', sha256: h, line: 1 }]);
  });
});
