#!/usr/bin/env node
// The project's test command: `nx run-many -t test` over every project, then one closing line
// "tests: N passed, N failed, N skipped" summed from each project's vitest JSON report.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const projectDirs = ['packages', 'apps', 'tools']
  .flatMap((g) => (existsSync(join(root, g)) ? readdirSync(join(root, g)).map((d) => join(root, g, d)) : []))
  .filter((d) => existsSync(join(d, 'package.json')));
// Stale reports must not be counted; nx restores the reports of cached runs.
for (const d of projectDirs) rmSync(join(d, 'test-results'), { recursive: true, force: true });

const args = ['nx', 'run-many', '-t', 'test', '--outputStyle=stream', ...process.argv.slice(2)];
const run = spawnSync('pnpm', ['exec', ...args], { cwd: root, stdio: 'inherit' });

let passed = 0,
  failed = 0,
  skipped = 0,
  projects = 0;
for (const d of projectDirs) {
  const report = join(d, 'test-results', 'vitest.json');
  if (!existsSync(report)) continue;
  const r = JSON.parse(readFileSync(report, 'utf8'));
  projects += 1;
  passed += r.numPassedTests ?? 0;
  // Failed tests; a suite that failed without a failing test (import error) counts once.
  failed += (r.numFailedTests ?? 0) > 0 ? r.numFailedTests : (r.numFailedTestSuites ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
const code = run.status ?? 1;
if (code !== 0 && failed === 0) failed = 1; // a project failed before or outside its tests
process.stdout.write(`\n${projects} projects\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(code !== 0 ? code : failed > 0 ? 1 : 0);
