// export-web's flags and bad input: one-line errors naming the flag or the file (the export itself is
// checked end to end, in chromium, by tools/web-e2e).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUserError, silentLogger } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

async function fails(argv: string[]): Promise<string> {
  try {
    await runCli(argv, () => {}, silentLogger);
  } catch (e) {
    expect(isUserError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`export-web ${argv.join(' ')} did not fail`);
}

describe('export-web cli', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'export-web-'));
  it('rejects an unknown dtype, an unknown flag and a folder without config.json in one line', async () => {
    expect(await fails(['--model', tmp, '--out', join(tmp, 'o'), '--dtype', 'int4'])).toMatch(/dtype/);
    expect(await fails(['--model', tmp, '--out', join(tmp, 'o'), '--bogus', '1'])).toMatch(/bogus/);
    const msg = await fails(['--model', tmp, '--out', join(tmp, 'o')]);
    expect(msg).toContain(join(tmp, 'config.json'));
    expect(msg.split('\n')).toHaveLength(1);
  });
});
