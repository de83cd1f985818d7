// Collapse flags over a stage graph: the summary of the old w/o-LTSuM phase-1 encoder (built from its
// committed metrics) marks it and everything downstream; the healthy r4 row carries no flag.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatResultsTable, readSummary, summarizeMetrics, writeSummary } from '@latent-sft/pipeline';
import { describe, expect, it } from 'vitest';
import { collapseFlags, flaggedLabel } from './collapse.js';
import type { Stage } from './plan.js';

const RESULTS = resolve(import.meta.dirname, '..', '..', '..', '..', 'docs', 'results', 'multiplication');
const readMetrics = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { step: number });

describe('collapseFlags', () => {
  it('flags the collapsed encoder and every stage built on it, and labels its Table-1 row', () => {
    const dir = mkdtempSync(join(tmpdir(), 'collapse-flags-'));
    const stage = (id: string, deps: string[]): Stage => ({ id, app: 'phase1-encoder', out: id, deps, config: {} });
    const stages = [
      stage('cot', []),
      stage('bad/phase1-encoder', ['cot']),
      stage('bad/phase2', ['bad/phase1-encoder']),
      stage('eval/bad', ['bad/phase2']),
      stage('r4/phase1-encoder', ['cot']),
      stage('r4/phase2', ['r4/phase1-encoder']),
      stage('eval/r4', ['r4/phase2']),
    ];
    const write = (id: string, metrics: string) => {
      const m = summarizeMetrics(readMetrics(join(RESULTS, metrics, 'metrics.jsonl')));
      writeSummary({ app: 'phase1', out: join(dir, id), steps: m.steps, window: m.window, first: m.first, last: m.last, collapse: m.collapse, wallSeconds: 1 });
    };
    write('cot', 'cot');
    write('bad/phase1-encoder', 'r4-no-ltsum/phase1-encoder');
    write('bad/phase2', 'r4-no-ltsum/phase2');
    write('r4/phase1-encoder', 'r4/phase1-encoder');
    write('r4/phase2', 'r4/phase2');
    const flags = collapseFlags(stages, dir);
    const bad = [{ stage: 'bad/phase1-encoder', message: expect.stringMatching(/^vanished gradient from step 50 .*; loss rose 6\.18 → 7\.60$/) }];
    expect(flags.get('bad/phase1-encoder')).toEqual(bad);
    expect(flags.get('bad/phase2')).toEqual(bad);
    expect(flags.get('eval/bad')).toEqual(bad);
    for (const id of ['cot', 'r4/phase1-encoder', 'r4/phase2', 'eval/r4']) expect(flags.get(id)).toEqual([]);
    expect(flaggedLabel('w/o LTSuM', flags.get('eval/bad'))).toBe('w/o LTSuM ⚠ COLLAPSED (bad/phase1-encoder)');
    expect(flaggedLabel('Latent-SFT(4)', flags.get('eval/r4'))).toBe('Latent-SFT(4)');
    // The pipeline's results table names the verdict too.
    const table = formatResultsTable([
      { phase: 'encoder (bad)', summary: readSummary(join(dir, 'bad/phase1-encoder')) },
      { phase: 'encoder (r4)', summary: readSummary(join(dir, 'r4/phase1-encoder')) },
    ]).split('\n');
    expect(table[0]).toMatch(/ verdict$/);
    expect(table[2]).toMatch(/ COLLAPSED: vanished gradient from step 50 /);
    expect(table[3]).toMatch(/ 1\.0 +$/);
  });
});
