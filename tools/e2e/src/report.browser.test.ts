// The HTML eval report in a real browser: a tiny latent eval run and three phase metrics files go
// through the eval CLI (`eval run`, `eval report --metrics <run folder>`), and Debian's chromium,
// driven by playwright-core (no browser download), must render the tables, one loss curve per phase
// and the superposition heatmap with no console error. The screenshot stays in test-results/.
//
// Chromium: $CHROMIUM_PATH or /usr/bin/chromium. Without it the test is skipped, unless
// REPORT_BROWSER_REQUIRED=1 (.ci/run installs chromium and sets it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { writeRandomModel } from '@latent-sft/pipeline';

const root = new URL('../../..', import.meta.url).pathname;
const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const required = process.env['REPORT_BROWSER_REQUIRED'] === '1';
const outDir = new URL('../test-results', import.meta.url).pathname;

/** Runs the eval app (sources, as `pnpm eval` does); a failure shows its stderr. */
function evalCli(args: string[]): void {
  const r = spawnSync(
    join(root, 'node_modules/.bin/tsx'),
    ['--conditions=@latent-sft/source', join(root, 'apps/eval/src/main.ts'), ...args, '--log-format', 'json'],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`eval ${args[0]} failed (${r.status}):\n${r.stderr}`);
}

/** A phase's metrics.jsonl: `steps` records whose loss decays from `first` to `last`. */
function writeMetrics(dir: string, steps: number, first: number, last: number, kl: boolean, mtime: number): void {
  mkdirSync(dir, { recursive: true });
  const lines = Array.from({ length: steps }, (_, i) => {
    const loss = last + (first - last) * Math.exp((-4 * i) / steps);
    return JSON.stringify({ step: i + 1, loss, ce: loss * 0.8, ...(kl ? { kl: loss * 0.2 } : {}), lr: 1e-3 });
  });
  const file = join(dir, 'metrics.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  utimesSync(file, mtime, mtime);
}

describe.skipIf(!required && !existsSync(chromiumPath))('eval report in chromium', () => {
  it('renders Table 1, the runs table, one loss curve per phase and the superposition heatmap with no console error', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'report-browser-'));
    await writeRandomModel(join(tmp, 'model'), 'llama-3.2', { hiddenSize: 32, intermediateSize: 64, layers: 1, heads: 2, kvHeads: 1 }, 11);
    evalCli([
      'run',
      '--model',
      join(tmp, 'model'),
      '--datasets',
      'gsm8k-aug-test',
      '--mode',
      'latent',
      '--seeds',
      '1',
      '--limit',
      '2',
      '--max-latent',
      '4',
      '--max-new-tokens',
      '4',
      '--batch-size',
      '2',
      '--greedy',
      '--examples',
      '1',
      '--out',
      join(tmp, 'eval'),
    ]);
    const run = join(tmp, 'run');
    const t0 = Date.now() / 1000 - 100;
    writeMetrics(join(run, 'm0'), 60, 11.3, 2.0, false, t0);
    writeMetrics(join(run, 'phase1-encoder'), 30, 3.5, 3.4, false, t0 + 1);
    writeMetrics(join(run, 'phase2'), 30, 3.5, 1.5, true, t0 + 2);
    const html = join(tmp, 'report.html');
    evalCli(['report', '--runs', join(tmp, 'eval'), '--metrics', run, '--title', 'Browser check', '--examples', '1', '--out', html]);

    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      await page.goto(`file://${html}`, { waitUntil: 'load' });

      expect(await page.title()).toBe('Browser check');
      // Table 1: one method row; the runs table: one row (gsm8k-aug-test, seed 1, 2 problems).
      const table1 = await page.locator('table').first().locator('tbody tr').allInnerTexts();
      expect(table1).toHaveLength(1);
      const runs = await page.locator('table.runs tbody tr td').allInnerTexts();
      expect(runs.slice(0, 3)).toEqual(['gsm8k-aug-test', '1', expect.stringMatching(/^[0-2]\/2$/) as unknown as string]);

      // Curves: loss and ce charts carry the three phases, kl only phase2; each polyline is drawn.
      const charts = page.locator('.charts svg.chart');
      expect(await charts.evaluateAll((svgs) => svgs.map((s) => s.getAttribute('aria-label')))).toEqual(['loss vs step', 'ce vs step', 'kl vs step']);
      const lossLegend = await charts.first().locator('text.legend').allTextContents();
      expect(lossLegend).toEqual(['m0/metrics.jsonl', 'phase1-encoder/metrics.jsonl', 'phase2/metrics.jsonl']);
      const lengths = await charts
        .first()
        .locator('polyline.series')
        .evaluateAll((ps) => ps.map((p) => (p as unknown as { getTotalLength(): number }).getTotalLength()));
      expect(lengths).toHaveLength(3);
      for (const l of lengths) expect(l).toBeGreaterThan(50);

      // Heatmap: one step column per latent step, probability cells with their data-p value.
      const heat = page.locator('svg.superposition').first();
      const box = await heat.boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(100);
      const cells = await heat.locator('rect[data-p]').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-p'))));
      expect(cells.length).toBeGreaterThan(0);
      for (const p of cells) expect(p).toBeGreaterThanOrEqual(0);

      mkdirSync(outDir, { recursive: true });
      await page.screenshot({ path: join(outDir, 'report.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
