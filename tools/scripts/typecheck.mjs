#!/usr/bin/env node
// `pnpm typecheck` (and CI): the `typecheck` of every project (its `tsc -p tsconfig.json --noEmit`),
// as few TypeScript programs as give the same diagnostics. In the repo, imports of workspace packages
// resolve to their sources (the `@latent-sft/source` condition), so each project's own program checks
// every package it imports again: 31 programs checked the shared packages some twenty times over (about
// 4 minutes of CPU on the 2-core CI machine). Here the projects' tsconfig.json files are parsed as tsc
// parses them and grouped by their compiler options and the global declaration files they include
// (e.g. vitest.d.ts, web's DOM lib); each group is one program over the union of its projects' files,
// reporting what tsc reports for each of them (syntactic, options, global, semantic, and with noEmit and
// `declaration` the declaration diagnostics). Every file of the workspace is checked once per group that
// reaches it, under the options and globals of the projects that include it. Every file is a module (no
// script-mode globals), so a union program sees no declaration that one of its projects would not.
// `nx run <project>:typecheck` still checks one project alone.
// Usage: node tools/scripts/typecheck.mjs [root]; exit 1 on any diagnostic.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectsWithScript } from './projects.mjs';

const root = resolve(process.argv[2] ?? fileURLToPath(new URL('../..', import.meta.url)));
const ts = createRequire(join(root, 'package.json'))('typescript');

/** Every project with a `typecheck` script, as { name, dir }. */
const projects = () => projectsWithScript(root, 'typecheck', 'tsc -p tsconfig.json --noEmit');

const formatHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' };
const t0 = performance.now();
/** key → { options, rootNames: Set, projects: string[], configDiagnostics: [] } */
const groups = new Map();
for (const p of projects()) {
  const configFile = join(p.dir, 'tsconfig.json');
  const diagnostics = [];
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configFile,
    { noEmit: true },
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => diagnostics.push(d) },
  );
  if (parsed === undefined) {
    process.stdout.write(ts.formatDiagnostics(diagnostics, formatHost));
    process.exit(1);
  }
  const { configFilePath: _file, ...options } = parsed.options;
  // Global declarations: the .d.ts files a project includes (a module's own declarations reach only its importers).
  const globals = parsed.fileNames.filter((f) => f.endsWith('.d.ts')).map((f) => resolve(f));
  const key = JSON.stringify([Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1)), [...new Set(globals)].sort()]);
  let g = groups.get(key);
  if (g === undefined) {
    g = { options: parsed.options, rootNames: new Set(), projects: [], configDiagnostics: [] };
    groups.set(key, g);
  }
  for (const f of parsed.fileNames) g.rootNames.add(f);
  g.projects.push(p.name);
  g.configDiagnostics.push(...parsed.errors);
}

let count = 0;
for (const g of groups.values()) {
  const program = ts.createProgram({ rootNames: [...g.rootNames], options: g.options });
  // The diagnostics tsc reports for a program (emitFilesAndReportErrors, noEmit), in its order.
  const all = [...g.configDiagnostics, ...program.getSyntacticDiagnostics()];
  if (all.length === g.configDiagnostics.length) {
    all.push(...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics());
    if (all.length === g.configDiagnostics.length) all.push(...program.getSemanticDiagnostics());
    if (g.options.noEmit && (g.options.declaration || g.options.composite) && all.length === g.configDiagnostics.length) {
      all.push(...program.getDeclarationDiagnostics());
    }
  }
  const diagnostics = ts.sortAndDeduplicateDiagnostics(all);
  count += diagnostics.length;
  const files = program.getSourceFiles().filter((f) => !f.isDeclarationFile).length;
  // A project's own files are roots here, so none counts as an external library (whose declaration
  // diagnostics tsc would skip): each gets what its own project's check gives it.
  const external = program.getSourceFiles().filter((f) => !f.isDeclarationFile && program.isSourceFileFromExternalLibrary(f) && g.rootNames.has(f.fileName));
  if (external.length > 0) throw new Error(`typecheck: root files taken for external libraries: ${external.map((f) => f.fileName).join(', ')}`);
  // As tsc prints them: with colour and context on a terminal, one line each otherwise (CI, nx).
  if (diagnostics.length > 0)
    process.stdout.write((process.stdout.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics)(diagnostics, formatHost));
  process.stdout.write(
    `typecheck: ${g.projects.length} project(s), ${files} source files: ${diagnostics.length === 0 ? 'ok' : `${diagnostics.length} error(s)`} (${g.projects.join(', ')})\n`,
  );
}
process.stdout.write(`typecheck: ${groups.size} program(s), ${count} error(s), ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
process.exit(count > 0 ? 1 : 0);
