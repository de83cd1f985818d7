// The workspace's projects that have the package.json script `script` (packages/, apps/, tools/, in name
// order), as { name, dir }, for the one-pass checks (typecheck.mjs, lint.mjs). A project whose script is not
// exactly `expected` stops the check (exit 2, one line): the one pass reproduces that command only.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export function projectsWithScript(root, script, expected) {
  const out = [];
  for (const group of ['packages', 'apps', 'tools']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir).sort()) {
      const file = join(dir, d, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      const cmd = pkg.scripts?.[script];
      if (cmd === undefined) continue;
      if (cmd !== expected) {
        process.stderr.write(`${script}: ${relative(root, join(dir, d))}: unexpected ${script} script '${cmd}'\n`);
        process.exit(2);
      }
      out.push({ name: pkg.name, dir: join(dir, d) });
    }
  }
  return out;
}
