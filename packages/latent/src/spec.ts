// The latent spec: what defines a model's latent tokens, declared once (phase 1) and recorded beside the
// model as `latent.json`; every later phase (merge-lora, cache-latents, phase 2, eval) reads it, takes
// it as the default and refuses a config that says otherwise.
//   kind             soft-topk (v2: top-k soft embedding), soft-full (v1: full softmax), hidden (ablation)
//   compressionRate  CoT tokens per latent (the paper's r; named apart from LoRA's rank r)
//   topK             top-k width of the soft embedding (soft-topk) and of the superposition recorded per step
//   ltim, ltsum      the LTIM encoder mask and the LTSuM decoder mask (false: causal ablations)
// Files written before the full spec ({"kind": "soft" | "hidden", "r": n}, phase 2's hf/latent.json) are
// read as legacy: soft → soft-topk, r → compressionRate, topK 10, ltim and ltsum true (LEGACY_DEFAULTS).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, inputError, writeJsonAtomic } from '@latent-sft/core';

/** The latent kinds, one spelling everywhere. */
export const LATENT_KIND_NAMES = ['soft-topk', 'soft-full', 'hidden'] as const;
export type LatentKindName = (typeof LATENT_KIND_NAMES)[number];

/** The one description of a model's latents. */
export interface LatentSpec {
  kind: LatentKindName;
  compressionRate: number;
  topK: number;
  ltim: boolean;
  ltsum: boolean;
}

/** The spec a phase-1 encoder run takes when its config sets nothing (the tiny pipeline; the paper's r = 4, k = 10). */
export const DEFAULT_LATENT_SPEC: Readonly<LatentSpec> = { kind: 'soft-topk', compressionRate: 4, topK: 10, ltim: true, ltsum: true };

/** What a legacy file ({kind, r}) did not record, as the code that wrote it used. */
export const LEGACY_DEFAULTS: Readonly<Pick<LatentSpec, 'topK' | 'ltim' | 'ltsum'>> = { topK: 10, ltim: true, ltsum: true };

/** The file name, beside config.json / adapter_config.json. */
export const LATENT_SPEC_FILE = 'latent.json';

const FIELDS = ['kind', 'compressionRate', 'topK', 'ltim', 'ltsum'] as const;

/** A spec read from a folder: `legacy` when the file is the old {kind, r} form (defaults filled in). */
export interface LatentSpecFile {
  spec: LatentSpec;
  file: string;
  legacy: boolean;
}

function positiveInt(v: unknown, file: string, field: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw inputError({ file, field }, `expected a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Validates a parsed latent.json (full or legacy form); `file` names it in errors. */
export function parseLatentSpec(v: unknown, file: string): { spec: LatentSpec; legacy: boolean } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw inputError({ file }, `expected an object {${FIELDS.join(', ')}}, got ${JSON.stringify(v)}`);
  }
  const o = v as Record<string, unknown>;
  if ('r' in o && !('compressionRate' in o)) {
    // Legacy phase-2 file: {"kind": "soft" | "hidden", "r": n}.
    for (const k of Object.keys(o)) if (k !== 'kind' && k !== 'r') throw inputError({ file, field: k }, 'unknown field in a legacy {kind, r} latent.json');
    if (o.kind !== 'soft' && o.kind !== 'hidden')
      throw inputError({ file, field: 'kind' }, `expected "soft" or "hidden" (legacy form), got ${JSON.stringify(o.kind)}`);
    const compressionRate = positiveInt(o.r, file, 'r');
    return { spec: { kind: o.kind === 'soft' ? 'soft-topk' : 'hidden', compressionRate, ...LEGACY_DEFAULTS }, legacy: true };
  }
  for (const k of Object.keys(o))
    if (!(FIELDS as readonly string[]).includes(k)) throw inputError({ file, field: k }, `unknown field (expected ${FIELDS.join(', ')})`);
  for (const k of FIELDS) if (!(k in o)) throw inputError({ file, field: k }, 'missing');
  if (!(LATENT_KIND_NAMES as readonly unknown[]).includes(o.kind)) {
    throw inputError({ file, field: 'kind' }, `expected one of ${LATENT_KIND_NAMES.join(', ')}, got ${JSON.stringify(o.kind)}`);
  }
  for (const k of ['ltim', 'ltsum'] as const)
    if (typeof o[k] !== 'boolean') throw inputError({ file, field: k }, `expected true or false, got ${JSON.stringify(o[k])}`);
  return {
    spec: {
      kind: o.kind as LatentKindName,
      compressionRate: positiveInt(o.compressionRate, file, 'compressionRate'),
      topK: positiveInt(o.topK, file, 'topK'),
      ltim: o.ltim as boolean,
      ltsum: o.ltsum as boolean,
    },
    legacy: false,
  };
}

/** Reads <dir>/latent.json; null when the folder has none. Bad contents: one-line errors naming the file and field. */
export function readLatentSpec(dir: string): LatentSpecFile | null {
  const file = join(dir, LATENT_SPEC_FILE);
  if (!existsSync(file)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `not JSON (${(e as Error).message})`);
  }
  return { ...parseLatentSpec(v, file), file };
}

/** Writes <dir>/latent.json atomically (validated first); returns the path. */
export function writeLatentSpec(dir: string, spec: LatentSpec): string {
  const file = join(dir, LATENT_SPEC_FILE);
  const { spec: checked } = parseLatentSpec({ ...spec }, file);
  writeJsonAtomic(file, { kind: checked.kind, compressionRate: checked.compressionRate, topK: checked.topK, ltim: checked.ltim, ltsum: checked.ltsum });
  return file;
}

/** The fields a config may set; unset fields come from the recorded spec. */
export type LatentSpecOverrides = Partial<LatentSpec>;

/**
 * The spec a phase runs with: the recorded specs (`recorded`, e.g. the model's and the cache's
 * latent.json) must agree with each other and with every field `given` sets (`where` names the config,
 * e.g. 'phase2 config', and `prefix` the field path, e.g. 'latent.'); unset fields come from the
 * records, or from `fallback` when no folder records a spec. Mismatches are one-line errors naming
 * both values and where each comes from.
 */
export function resolveLatentSpec(
  given: LatentSpecOverrides,
  recorded: readonly LatentSpecFile[],
  o: { where: string; prefix?: string; fallback: Readonly<LatentSpec> },
): LatentSpec {
  const prefix = o.prefix ?? '';
  const first = recorded[0];
  for (const r of recorded.slice(1)) {
    for (const f of FIELDS) {
      if (r.spec[f] !== first!.spec[f]) {
        throw new UserError(`latent spec mismatch: ${f} ${JSON.stringify(first!.spec[f])} in ${first!.file} but ${JSON.stringify(r.spec[f])} in ${r.file}`);
      }
    }
  }
  if (first === undefined) return { ...o.fallback, ...definedOnly(given) };
  for (const f of FIELDS) {
    const g = given[f];
    if (g !== undefined && g !== first.spec[f]) {
      throw new UserError(
        `latent spec mismatch: ${o.where} sets ${prefix}${f} = ${JSON.stringify(g)} but ${first.file} records ${JSON.stringify(first.spec[f])}; drop the field to use the recorded value`,
      );
    }
  }
  return { ...first.spec };
}

function definedOnly(given: LatentSpecOverrides): LatentSpecOverrides {
  const out: LatentSpecOverrides = {};
  for (const f of FIELDS) if (given[f] !== undefined) (out as Record<string, unknown>)[f] = given[f];
  return out;
}

/** The specs recorded in `dirs` (folders without latent.json are skipped). */
export function readLatentSpecs(dirs: readonly (string | undefined)[]): LatentSpecFile[] {
  return dirs.flatMap((d) => {
    if (d === undefined) return [];
    const s = readLatentSpec(d);
    return s === null ? [] : [s];
  });
}
