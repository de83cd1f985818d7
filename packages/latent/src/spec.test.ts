// The latent spec file: round trip, the legacy {kind, r} form, one-line errors naming file and field,
// and resolveLatentSpec (defaults from the records, each field's mismatch refused, records that disagree).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { oneLineError } from '@latent-sft/testing';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LATENT_SPEC, type LatentSpec, readLatentSpec, readLatentSpecs, resolveLatentSpec, writeLatentSpec } from './spec.js';

const spec: LatentSpec = { kind: 'hidden', compressionRate: 3, topK: 7, ltim: false, ltsum: true };

function folder(contents?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'latent-spec-'));
  if (contents !== undefined) writeFileSync(join(dir, 'latent.json'), typeof contents === 'string' ? contents : JSON.stringify(contents));
  return dir;
}

/** The message of the one-line UserError `f` throws. */
function userError(f: () => unknown): string {
  expect(f).toThrow(UserError);
  return oneLineError(f);
}

describe('latent.json', () => {
  it('round-trips the spec with exactly its five fields', () => {
    const dir = folder();
    const file = writeLatentSpec(dir, spec);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(spec);
    expect(readLatentSpec(dir)).toEqual({ spec, file, legacy: false });
    expect(readLatentSpec(folder())).toBeNull();
  });

  it('reads the legacy {kind, r} form with the defaults of the code that wrote it', () => {
    const dir = folder({ kind: 'soft', r: 4 });
    expect(readLatentSpec(dir)).toEqual({
      spec: { kind: 'soft-topk', compressionRate: 4, topK: 10, ltim: true, ltsum: true },
      file: join(dir, 'latent.json'),
      legacy: true,
    });
    expect(readLatentSpec(folder({ kind: 'hidden', r: 2 }))?.spec.kind).toBe('hidden');
  });

  it('refuses bad contents in one line naming the file and field', () => {
    const at = (c: unknown) => {
      const d = folder(c);
      return [d, () => readLatentSpec(d)] as const;
    };
    const cases: Array<[unknown, string]> = [
      ['{', 'not JSON'],
      [[1], 'expected an object'],
      [{ ...spec, kind: 'soft' }, "field 'kind': expected one of soft-topk, soft-full, hidden"],
      [{ ...spec, compressionRate: 0 }, "field 'compressionRate': expected a positive integer, got 0"],
      [{ ...spec, topK: 2.5 }, "field 'topK': expected a positive integer, got 2.5"],
      [{ ...spec, ltim: 'yes' }, "field 'ltim': expected true or false"],
      [{ kind: 'hidden', compressionRate: 2, topK: 3, ltim: true }, "field 'ltsum': missing"],
      [{ ...spec, r: 4 }, "field 'r': unknown field"],
      [{ kind: 'soft-topk', r: 4 }, 'field \'kind\': expected "soft" or "hidden" (legacy form)'],
    ];
    for (const [c, msg] of cases) {
      const [dir, read] = at(c);
      expect(userError(read)).toContain(`${join(dir, 'latent.json')}: ${msg}`);
    }
    expect(userError(() => writeLatentSpec(folder(), { ...spec, topK: 0 }))).toContain("field 'topK'");
  });
});

describe('resolveLatentSpec', () => {
  const o = { where: 'phase2 config', prefix: 'latent.', fallback: DEFAULT_LATENT_SPEC };

  it('takes unset fields from the record, the fallback when nothing is recorded', () => {
    const dir = folder();
    writeLatentSpec(dir, spec);
    expect(resolveLatentSpec({}, readLatentSpecs([dir, undefined, folder()]), o)).toEqual(spec);
    expect(resolveLatentSpec({ topK: 7, ltim: false }, readLatentSpecs([dir]), o)).toEqual(spec);
    expect(resolveLatentSpec({ compressionRate: 8 }, [], o)).toEqual({ ...DEFAULT_LATENT_SPEC, compressionRate: 8 });
  });

  it('refuses each field that differs from the record, naming both values and the file', () => {
    const dir = folder();
    const file = writeLatentSpec(dir, spec);
    const other: LatentSpec = { kind: 'soft-topk', compressionRate: 4, topK: 10, ltim: true, ltsum: false };
    for (const f of ['kind', 'compressionRate', 'topK', 'ltim', 'ltsum'] as const) {
      expect(userError(() => resolveLatentSpec({ [f]: other[f] }, readLatentSpecs([dir]), o))).toBe(
        `latent spec mismatch: phase2 config sets latent.${f} = ${JSON.stringify(other[f])} but ${file} records ${JSON.stringify(spec[f])}; drop the field to use the recorded value`,
      );
    }
  });

  it('refuses records that disagree with each other', () => {
    const a = folder();
    const b = folder();
    writeLatentSpec(a, spec);
    writeLatentSpec(b, { ...spec, ltsum: false });
    expect(userError(() => resolveLatentSpec({}, readLatentSpecs([a, b]), o))).toBe(
      `latent spec mismatch: ltsum true in ${join(a, 'latent.json')} but false in ${join(b, 'latent.json')}`,
    );
  });
});
