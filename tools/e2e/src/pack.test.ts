// The published packages outside the monorepo: `pnpm pack` @latent-sft/latent, masks, eval and the
// workspace packages they depend on (core, graph, data), install the tarballs into a fresh npm project
// in a temp folder (third-party dependencies from npm's cache or the registry), then import them from
// plain ESM (values checked) and from TypeScript (`tsc --noEmit` with the installed .d.ts files,
// skipLibCheck off). nx builds exactly these packages first (the target's dependsOn in package.json;
// `^build` would also build everything e2e's devDependencies reach).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../..', import.meta.url).pathname;
const consumer = new URL('../consumer', import.meta.url).pathname;
/** Packed in dependency order; latent, masks and eval are the ones the READMEs show. */
const PACKAGES = ['core', 'graph', 'data', 'latent', 'masks', 'eval'];

const run = (cmd: string, args: string[], cwd: string): string => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('packed packages in a fresh npm project', () => {
  it('install from the tarballs and import from ESM and TypeScript', () => {
    // nx builds exactly these packages (and what they depend on) before this test: the target's dependsOn.
    const target = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).nx.targets['test:pack'];
    expect(target.dependsOn).toEqual([{ target: 'build', projects: PACKAGES.map((p) => `@latent-sft/${p}`) }]);
    const tmp = mkdtempSync(join(tmpdir(), 'pack-'));
    const tarballs = join(tmp, 'tarballs');
    mkdirSync(tarballs);
    for (const p of PACKAGES) run('pnpm', ['pack', '--pack-destination', tarballs], join(root, 'packages', p));
    const files = readdirSync(tarballs).sort();
    expect(files).toEqual(PACKAGES.map((p) => `latent-sft-${p}-0.1.0.tgz`).sort());

    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`);
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...files.map((f) => join(tarballs, f)), '@types/node@20'], app);
    // No workspace link left: every @latent-sft package is a real folder with dist/ only.
    for (const p of PACKAGES) expect(readdirSync(join(app, 'node_modules', '@latent-sft', p)).sort()).toEqual(expect.arrayContaining(['dist', 'package.json']));

    copyFileSync(join(consumer, 'index.mjs'), join(app, 'index.mjs'));
    const out = JSON.parse(run(process.execPath, ['index.mjs'], app)) as Record<string, unknown>;
    expect(out['probs']).toBeAllclose([0.25, 0.75], { atol: 1e-12, rtol: 0 });
    expect(out).toMatchObject({
      topIndices: [1, 2],
      // LTIM of [5, 6, <compress>, 7]: causal, and no position after the compress token sees it.
      mask: [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1],
      positions: [0, 1, 2, 3, 3, 4],
      answer: '72',
      equivalent: true,
    });

    copyFileSync(join(consumer, 'index.ts'), join(app, 'index.ts'));
    writeFileSync(
      join(app, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['index.ts'],
        },
        null,
        2,
      )}\n`,
    );
    run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app);
  });
});
