#!/usr/bin/env node
// `pnpm lint` (and CI): the `lint` of every project (its script `biome check . && node
// ../../tools/scripts/boundaries.mjs`, the nx `lint` targets) in one pass: Biome once over all the
// project folders (one process, not one pnpm + Biome start per project), then boundaries.mjs in each
// project folder, two at a time (the first package alone: its public-API check, exports.mjs, fills the
// cache the other packages read). `nx run <project>:lint` still lints one project.
// Usage: node tools/scripts/lint.mjs [root]; exit 1 on any problem.
import { spawn, spawnSync } from 'node:child_process';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectsWithScript } from './projects.mjs';

const root = resolve(process.argv[2] ?? fileURLToPath(new URL('../..', import.meta.url)));
const LINT = 'biome check . && node ../../tools/scripts/boundaries.mjs';
const boundaries = fileURLToPath(new URL('./boundaries.mjs', import.meta.url));

const projects = projectsWithScript(root, 'lint', LINT).map((p) => p.dir);

const t0 = performance.now();
const biome = spawnSync(join(root, 'node_modules', '.bin', 'biome'), ['check', ...projects.map((p) => relative(root, p))], { cwd: root, stdio: 'inherit' });
let failed = biome.status === 0 ? [] : ['biome'];

/** boundaries.mjs in `dir`; its output is printed when it ends (lines name their files). */
function checkBoundaries(dir) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [boundaries], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => {
      process.stdout.write(out);
      if (code !== 0) failed.push(relative(root, dir));
      res();
    });
  });
}
const first = projects.find((p) => relative(root, p).startsWith('packages'));
const rest = projects.filter((p) => p !== first);
if (first !== undefined) await checkBoundaries(first);
await Promise.all(
  [0, 1].map(async () => {
    for (let p = rest.shift(); p !== undefined; p = rest.shift()) await checkBoundaries(p);
  }),
);
failed = failed.sort();
process.stdout.write(
  `lint: ${projects.length} projects, ${failed.length === 0 ? 'ok' : `failed: ${failed.join(', ')}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
);
process.exit(failed.length > 0 ? 1 : 0);
