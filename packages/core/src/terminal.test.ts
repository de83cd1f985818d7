// The terminal output: exact bytes written to a fake terminal stream by the logger, the progress bar
// and the result writer, in each format.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAppIo, createRootLogger } from './logger.js';
import { createProgress } from './progress.js';
import { formatRecord, formatResult } from './terminal.js';

function fakeTerminal(isTTY: boolean, columns = 100): { isTTY: boolean; columns: number; writes: string[]; write(s: string): boolean } {
  const writes: string[] = [];
  return {
    isTTY,
    columns,
    writes,
    write: (s: string) => {
      writes.push(s);
      return true;
    },
  };
}

const T0 = new Date(2026, 0, 2, 9, 5, 7).getTime(); // local 09:05:07
const CLEAR = '\r\x1b[2K';

describe('formatRecord', () => {
  it('prints time, level (when not INFO), message and fields; hides pino bookkeeping', () => {
    const rec = {
      level: 30,
      time: T0,
      pid: 1,
      hostname: 'h',
      name: 'cot-sft',
      app: 'cot-sft',
      msg: 'checkpoint saved',
      step: 30,
      loss: 2.0006123,
      dir: 'runs/m0',
    };
    expect(formatRecord(rec, false)).toBe('09:05:07 checkpoint saved step=30 loss=2.0006 dir=runs/m0');
    expect(formatRecord({ level: 40, time: T0, msg: 'slow', note: 'two words' }, false)).toBe('09:05:07 WARN slow note="two words"');
    expect(formatRecord({ level: 50, time: T0, msg: 'bad' }, true)).toBe('\x1b[2m09:05:07\x1b[0m \x1b[31mERROR\x1b[0m bad');
    const long = formatRecord({ level: 30, time: T0, msg: 'resolved config', config: { a: { b: 'x'.repeat(100) } } }, false);
    expect(long).toBe(`09:05:07 resolved config config={"a":{"b":"${'x'.repeat(68)}…`);
  });

  it('formats a one-line JSON result as a key/value block and leaves other text alone', () => {
    expect(formatResult('{"app":"cot-sft","steps":60,"first":{"loss":11.26951},"wallSeconds":16.7}\n')).toBe(
      '  app          cot-sft\n  steps        60\n  first        loss=11.27\n  wallSeconds  16.7\n',
    );
    expect(formatResult('| a | b |\n')).toBe('| a | b |\n');
    expect(formatResult('{\n  "pretty": true\n}\n')).toBe('{\n  "pretty": true\n}\n');
  });
});

describe('log lines and the progress bar on a terminal', () => {
  it('clears the bar line before each log line and redraws the bar after it', () => {
    const term = fakeTerminal(true, 60);
    const logger = createRootLogger('app', { stream: term, now: () => T0 });
    let t = 0;
    const p = createProgress({ total: 4, label: 'train', logger, now: () => t });
    t = 1000;
    p.tick(1, { loss: 7.0336 });
    logger.info({ step: 1 }, 'checkpoint saved');
    t = 2000;
    p.tick(3, { loss: 2.5 });
    p.done();
    logger.warn({}, 'after');
    const bar1 = 'train [######------------------] 1/4 25% 1.00/s elapsed 0:01 ETA 0:03 loss=7.0336';
    const bar2 = 'train [########################] 4/4 100% 2.00/s elapsed 0:02 ETA 0:00 loss=2.5';
    expect(term.writes).toEqual([
      `${CLEAR}${bar1.slice(0, 59)}`,
      `${CLEAR}\x1b[2m09:05:07\x1b[0m checkpoint saved step=1\n${bar1.slice(0, 59)}`,
      `${CLEAR}${bar2.slice(0, 59)}`,
      `${CLEAR}${bar2.slice(0, 59)}`,
      '\n',
      '\x1b[2m09:05:07\x1b[0m \x1b[33mWARN\x1b[0m after\n',
    ]);
  });

  it('writes JSON lines and progress records when the stream is not a TTY, or with format json', () => {
    for (const [isTTY, format] of [
      [false, 'auto'],
      [true, 'json'],
    ] as const) {
      const term = fakeTerminal(isTTY);
      const logger = createRootLogger('app', { stream: term, now: () => T0, format });
      let t = 0;
      const p = createProgress({ total: 2, label: 'eval', logger, now: () => t });
      t = 500;
      p.tick(2);
      p.done();
      expect(term.writes.map((w) => JSON.parse(w) as unknown)).toEqual([
        {
          level: 30,
          time: T0,
          app: 'app',
          name: 'app',
          label: 'eval',
          done: 2,
          total: 2,
          perSecond: 4,
          elapsedS: 0.5,
          etaS: 0,
          msg: 'finished',
        },
      ]);
    }
  });

  it('--quiet keeps warnings only and draws no bar; the log file gets every record as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-'));
    const term = fakeTerminal(true);
    const logger = createRootLogger('app', { stream: term, now: () => T0 });
    logger.output.configure({ quiet: true, file: join(dir, 'logs', 'app.jsonl') });
    const p = createProgress({ total: 1, label: 'x', logger, now: () => 0 });
    p.tick(1);
    p.done();
    logger.info({}, 'hidden');
    logger.child({ phase: 'encoder' }).warn({ n: 2 }, 'shown');
    logger.output.close();
    expect(term.writes).toEqual(['\x1b[2m09:05:07\x1b[0m \x1b[33mWARN\x1b[0m shown phase=encoder n=2\n']);
    const lines = readFileSync(join(dir, 'logs', 'app.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, 'finished'],
      [30, 'hidden'],
      [40, 'shown'],
    ]);
  });

  it('stdout results print as a summary block on a terminal, as the JSON line otherwise', () => {
    const tty = { stdout: fakeTerminal(true), stderr: fakeTerminal(true) };
    createAppIo('app', tty).write('{"app":"x","steps":3}\n');
    expect(tty.stdout.writes).toEqual(['  app    x\n  steps  3\n']);
    const piped = { stdout: fakeTerminal(false), stderr: fakeTerminal(true) };
    createAppIo('app', piped).write('{"app":"x","steps":3}\n');
    expect(piped.stdout.writes).toEqual(['{"app":"x","steps":3}\n']);
  });
});

describe('progress records as human lines', () => {
  it('prints label done/total, rate, elapsed, ETA, then the fields; flat objects inline', () => {
    const rec = {
      level: 30,
      time: T0,
      msg: 'progress',
      label: 'cot-sft (cot)',
      done: 19,
      total: 60,
      perSecond: 0.8832,
      elapsedS: 21.5,
      etaS: 46.4,
      loss: '3.8776',
    };
    expect(formatRecord(rec, false)).toBe('09:05:07 progress cot-sft (cot) 19/60 0.8832/s elapsed 0:22 ETA 0:46 loss=3.8776');
    expect(formatRecord({ level: 30, time: T0, msg: 'done', first: { loss: 11.2694833 } }, false)).toBe('09:05:07 done first={loss=11.269}');
  });
});
