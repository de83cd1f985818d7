// The public-API rule (tools/scripts/exports.mjs, run by every package's lint): on a fixture workspace
// of two tiny packages, exactly the index exports that no other project imports and no kept export's
// signature reaches are reported, and the package's own tests do not count as users.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const scripts = new URL('../../scripts/', import.meta.url).pathname;

const fixture: Record<string, string> = {
  'tsconfig.base.json': JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  'packages/a/package.json': JSON.stringify({ name: '@latent-sft/a', type: 'module' }),
  'packages/a/src/shapes.ts': [
    'export type Dim = number | string;',
    'export interface Shape { dims: Dim[] }',
    'export interface Options { shape: Shape; scale?: number }',
    'export interface Leaf { value: number }',
    '/** internal: not exported by the index, but the exported make() returns it */',
    'interface Wrapped { leaf: Leaf }',
    'export function make(o: Options): Wrapped { return { leaf: { value: o.scale ?? 1 } }; }',
    'export interface Item { id: number }',
    'export interface Hidden { secret: string }',
    '/** unannotated: its inferred return type refers to Item */',
    'export function run(n: number) { const out: Item[] = [{ id: n }]; return { items: out, count: n }; }',
    'export class Box { private h: Hidden = { secret: "" }; first(): Item { return { id: this.h.secret.length }; } }',
    'export interface TestOnly { flag: boolean }',
    'export type UnusedType = { x: Leaf };',
    'export function unused(): UnusedType { return { x: { value: 0 } }; }',
  ].join('\n'),
  'packages/a/src/index.ts': [
    'export { Box, make, run, unused } from "./shapes.js";',
    'export type { Dim, Hidden, Item, Leaf, Options, Shape, TestOnly, UnusedType } from "./shapes.js";',
  ].join('\n'),
  'packages/a/src/shapes.test.ts': 'import { unused } from "./index.js";\nunused();\n',
  'packages/b/package.json': JSON.stringify({ name: '@latent-sft/b', type: 'module', dependencies: { '@latent-sft/a': 'workspace:*' } }),
  'packages/b/src/main.ts': 'import { Box, make, run } from "@latent-sft/a";\nexport const all = [new Box(), make, run];\n',
  'packages/b/test/main.test.ts': 'import type { TestOnly } from "@latent-sft/a";\nexport const t: TestOnly = { flag: true };\n',
};

function writeFixture(): string {
  const root = mkdtempSync(join(tmpdir(), 'exports-rule-'));
  for (const [file, text] of Object.entries(fixture)) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  return root;
}

const line = (name: string): string => `packages/a/src/index.ts: '${name}' is exported but no other project uses it and no exported signature refers to it`;

describe('public-API rule', () => {
  it('reports exactly the index exports nobody else uses and no kept signature refers to', () => {
    const root = writeFixture();
    const r = spawnSync(process.execPath, [join(scripts, 'exports.mjs'), root], { encoding: 'utf8' });
    // Kept: Box, make, run (used by b); TestOnly (b's test); Options, Shape, Dim (make's parameter);
    // Leaf (through the internal Wrapped that make returns); Item (Box.first, run's inferred return).
    // Reported: Hidden (only a private member's type), unused + UnusedType (only a's own test uses them).
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([line('Hidden'), line('UnusedType'), line('unused')]);
    expect(r.status).toBe(1);
  });

  it("fails the package's lint (boundaries.mjs) with those lines and passes the user's", () => {
    const root = writeFixture();
    const a = spawnSync(process.execPath, [join(scripts, 'boundaries.mjs'), join(root, 'packages/a')], { encoding: 'utf8' });
    expect(a.stdout.trim().split('\n')).toEqual([line('Hidden'), line('UnusedType'), line('unused'), '@latent-sft/a: 3 module-boundary problems']);
    expect(a.status).toBe(1);
    const b = spawnSync(process.execPath, [join(scripts, 'boundaries.mjs'), join(root, 'packages/b')], { encoding: 'utf8' });
    expect(b.stdout).toBe('');
    expect(b.status).toBe(0);
  });
});
