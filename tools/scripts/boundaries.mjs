#!/usr/bin/env node
// Module boundaries of one project (run from its folder, as its `lint` script does): every import of its
// sources must be
//   - a workspace package (`@latent-sft/<name>`) declared in its package.json: `dependencies` for library
//     code, `devDependencies` too for tests and test helpers (`*.test.ts`, `*.bench.ts`, `*.testing.ts`,
//     `test/`, `bench/`), through that package's public entry points (its `exports`) only: no deep imports;
//   - never an app (`apps/*`), except from the Table-1 driver (`tools/pipeline`), which runs the apps' CLIs;
//   - a relative path that stays inside the project and never names another file's test (`*.test.ts`)
//     (a project's `*.config.ts` may import the shared configs at the repo root, e.g. vitest.shared.ts);
//   - or a third-party / node: module (not checked here: pnpm's strict node_modules already refuses
//     undeclared ones).
// For a package (packages/*), also the public-API rule (exports.mjs): its index exports only what other
// projects use, plus the types those exports' signatures refer to.
// Prints one line per violation (file:line: what) and exits 1 when there is any. nanochat-style layering,
// checked without an ESLint stack: Biome lints, this script keeps the package graph honest.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const project = resolve(process.argv[2] ?? '.');
const root = resolve(project, '../..');
const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'));
const deps = new Set(Object.keys(pkg.dependencies ?? {}));
const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));

/** name → { dir, exports keys, isApp } for every workspace project. */
const workspace = new Map();
for (const group of ['packages', 'apps', 'tools']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const d of readdirSync(dir)) {
    const file = join(dir, d, 'package.json');
    if (!existsSync(file)) continue;
    const p = JSON.parse(readFileSync(file, 'utf8'));
    const exp = p.exports === undefined ? ['.'] : typeof p.exports === 'string' ? ['.'] : Object.keys(p.exports);
    workspace.set(p.name, { dir: join(dir, d), subpaths: new Set(exp.map((k) => (k === '.' ? '' : k.slice(1)))), isApp: group === 'apps' });
  }
}

const isTestFile = (rel) => /\.(test|bench|testing)\.ts$/.test(rel) || rel.split(sep).some((s) => s === 'test' || s === 'bench');
const mayImportApps = relative(root, project) === join('tools', 'pipeline');

function* sources(dir) {
  for (const e of readdirSync(dir)) {
    if (e === 'node_modules' || e === 'dist' || e === 'test-results' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|mts|mjs)$/.test(e) && !e.endsWith('.d.ts')) yield p;
  }
}

const importRe =
  /(?:^|[\s;])(?:import|export)\s[^'"`]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(])import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
const problems = [];
for (const file of sources(project)) {
  const rel = relative(project, file);
  const text = readFileSync(file, 'utf8');
  const testCode = isTestFile(rel);
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    const line = text.slice(0, m.index).split('\n').length + (m[0].startsWith('\n') ? 1 : 0);
    const at = `${relative(root, file)}:${line}`;
    if (spec.startsWith('@latent-sft/')) {
      const [scope, name, ...rest] = spec.split('/');
      const target = `${scope}/${name}`;
      const ws = workspace.get(target);
      if (ws === undefined) {
        problems.push(`${at}: '${spec}' is no workspace package`);
        continue;
      }
      if (!deps.has(target) && !(testCode && devDeps.has(target))) {
        problems.push(
          `${at}: imports ${target}, which package.json does not declare${devDeps.has(target) ? ' in dependencies (only devDependencies; library code may not use it)' : ''}`,
        );
      }
      if (rest.length > 0 && !ws.subpaths.has(`/${rest.join('/')}`))
        problems.push(`${at}: deep import '${spec}' (${target} does not export './${rest.join('/')}')`);
      if (ws.isApp && !mayImportApps) problems.push(`${at}: imports the app ${target}; apps are entry points, not libraries`);
    } else if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      const rootConfig = dirname(target) === root && /\.config\.[mc]?[jt]s$/.test(rel); // vitest.config.ts → vitest.shared.ts
      if (!target.startsWith(project + sep) && !rootConfig)
        problems.push(`${at}: '${spec}' leaves the project (import another project through its package name)`);
      else if (/\.test(\.[jt]s)?$/.test(spec) && !testCode) problems.push(`${at}: library code imports the test file '${spec}'`);
      else if (/\.test(\.[jt]s)?$/.test(spec)) problems.push(`${at}: imports the test file '${spec}' (share helpers through a *.testing.ts file or test/)`);
    }
  }
}
if (relative(root, project).startsWith(`packages${sep}`)) {
  const { exportProblems } = await import('./exports.mjs');
  problems.push(...(exportProblems(root).get(project) ?? []));
}
for (const p of problems) process.stdout.write(`${p}\n`);
if (problems.length > 0) {
  process.stdout.write(`${pkg.name}: ${problems.length} module-boundary problem${problems.length > 1 ? 's' : ''}\n`);
  process.exit(1);
}
