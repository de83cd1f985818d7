// The terminal-output flags every app gets from buildCli: --log-format, --quiet and --log-file
// configure the app's root logger before the handler runs (bytes on a fake terminal checked).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootLogger } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildCli, defineCommand, defineConfig } from './index.js';

const T0 = new Date(2026, 0, 2, 9, 5, 7).getTime();

async function runWith(args: string[]): Promise<{ writes: string[]; logFile: string }> {
  const writes: string[] = [];
  const logger = createRootLogger('demo', { stream: { isTTY: true, columns: 100, write: (s: string) => writes.push(s) }, now: () => T0 });
  const logFile = join(mkdtempSync(join(tmpdir(), 'cli-log-')), 'demo.jsonl');
  const cli = buildCli({
    name: 'demo',
    logger,
    out: () => {},
    commands: [
      defineCommand({
        command: '$0',
        describe: 'demo',
        schema: defineConfig(z.object({ n: z.number().default(1).describe('n') })),
        handler: (c) => {
          logger.info({ n: c.n }, 'started');
          logger.warn({}, 'careful');
        },
      }),
    ],
  });
  await cli.parseAsync([...args, '--log-file', logFile]);
  logger.output.close();
  return { writes, logFile };
}

describe('shared log flags', () => {
  it('auto on a terminal: short lines', async () => {
    const { writes } = await runWith(['--n', '3']);
    expect(writes).toEqual(['\x1b[2m09:05:07\x1b[0m started n=3\n', '\x1b[2m09:05:07\x1b[0m \x1b[33mWARN\x1b[0m careful\n']);
  });

  it('--log-format json: JSON lines; --quiet: warnings only; the log file gets every record', async () => {
    const json = await runWith(['--log-format', 'json']);
    expect(json.writes.map((w) => (JSON.parse(w) as { msg: string }).msg)).toEqual(['started', 'careful']);
    const quiet = await runWith(['--quiet']);
    expect(quiet.writes).toEqual(['\x1b[2m09:05:07\x1b[0m \x1b[33mWARN\x1b[0m careful\n']);
    expect(
      readFileSync(quiet.logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ).toEqual(['started', 'careful']);
  });

  it('rejects an unknown format in one line', async () => {
    await expect(runWith(['--log-format', 'xml'])).rejects.toThrow(/Invalid values:.*log-format.*xml/);
  });
});
