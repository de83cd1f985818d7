// `eval report` never replaces a Markdown file it did not write (the .md beside --out x.html).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPORT_MD_MARK, writeEvalReport } from './eval-report.js';

describe('eval report output guard', () => {
  it('refuses to overwrite a foreign x.md or a folder named x.html; a report of its own is checked further', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-report-'));
    const out = join(dir, 'x.html');
    writeFileSync(join(dir, 'x.md'), '# my notes\n');
    const opts = { runs: [join(dir, 'nope')], metrics: [], out, title: 't', examples: 0 };
    expect(() => writeEvalReport(opts)).toThrow(
      `field '--out': ${join(dir, 'x.md')} exists and was not written by eval report; choose another --out; nothing was written`,
    );
    expect(readFileSync(join(dir, 'x.md'), 'utf8')).toBe('# my notes\n');
    writeFileSync(join(dir, 'x.md'), `${REPORT_MD_MARK}\n# an older report\n`);
    expect(() => writeEvalReport(opts)).toThrow('summary.json: not found: not an eval run folder (run `eval run` first)');
    mkdirSync(join(dir, 'y.html'));
    expect(() => writeEvalReport({ ...opts, out: join(dir, 'y.html') })).toThrow(`field '--out': ${join(dir, 'y.html')} is a folder, expected an .html file`);
  });
});
