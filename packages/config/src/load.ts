// Resolving a run config: schema defaults < JSON config file < CLI overrides, validated once, strict.
// Unknown keys (file or flag) are errors naming the key and where it came from, with the closest valid
// key suggested; type errors name the field path and the file or the flag. The result is deeply frozen.
import { readFileSync } from 'node:fs';
import { UserError, inputError } from '@latent-sft/core';
import type { z } from 'zod';
import { defineConfig, fillDefaultVariants, unknownKeys, type ConfigDef } from './schema.js';
import { didYouMean } from './suggest.js';

/** A deeply read-only view of a resolved config. */
export type DeepReadonly<T> = T extends (infer U)[] ? ReadonlyArray<DeepReadonly<U>> : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The resolved, frozen config type of a schema. */
export type ConfigOf<S extends z.ZodObject> = DeepReadonly<z.output<S>>;

export interface LoadConfigOptions<S extends z.ZodObject> {
  /** The config definition (from defineConfig) or a bare zod object (validated on the fly). */
  schema: ConfigDef<S> | S;
  /** Path of a JSON config file (optional). */
  file?: string;
  /** How the file is named in error messages (default: the path). */
  fileLabel?: string;
  /** CLI overrides keyed by dotted path (`'optim.lr': 1e-4`); reported as flags `--optim.lr`. */
  overrides?: Record<string, unknown>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function readConfigFile(file: string, label: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw inputError({ file: label }, `cannot read config file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw inputError({ file: label }, `invalid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(value)) throw inputError({ file: label }, 'a config file must hold a JSON object');
  return value;
}

function getPath(obj: unknown, path: readonly string[]): { found: boolean; value: unknown } {
  let cur: unknown = obj;
  for (const k of path) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, k)) return { found: false, value: undefined };
    cur = cur[k];
  }
  return { found: true, value: cur };
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    if (!Object.hasOwn(cur, k) || !isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

/** Resolves and validates a config; throws a one-line UserError for any bad key or value. */
export function loadConfig<S extends z.ZodObject>(opts: LoadConfigOptions<S>): ConfigOf<S> {
  const def: ConfigDef<S> = 'fields' in opts.schema && 'schema' in opts.schema ? (opts.schema as ConfigDef<S>) : defineConfig(opts.schema as S);
  const label = opts.fileLabel ?? opts.file ?? 'config';
  const validPaths = def.fields.map((f) => f.path);

  // 1. The config file, checked for unknown keys before anything else.
  const merged: Record<string, unknown> = opts.file !== undefined ? readConfigFile(opts.file, label) : {};
  const fileValue = structuredClone(merged);
  const unknownInFile = unknownKeys(def.schema, merged);
  if (unknownInFile.length > 0) {
    const u = unknownInFile[0]!;
    throw inputError({ file: label, field: u.path }, u.note !== undefined ? `unknown key: ${u.note}` : `unknown key${didYouMean(u.path, validPaths)}`);
  }

  // 2. CLI overrides: flat dotted keys, each a declared field.
  const overridePaths: string[][] = [];
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (value === undefined) continue;
    if (!validPaths.includes(key)) {
      throw new UserError(`unknown flag '--${key}'${didYouMean(key, validPaths, (s) => `--${s}`)}`);
    }
    if (typeof value === 'number' && Number.isNaN(value)) throw new UserError(`flag '--${key}': not a number`);
    const path = key.split('.');
    setPath(merged, path, value);
    overridePaths.push(path);
  }
  fillDefaultVariants(def.schema, merged);
  const unknownAfterFlags = unknownKeys(def.schema, merged);
  if (unknownAfterFlags.length > 0) {
    const u = unknownAfterFlags[0]!;
    throw new UserError(`flag '--${u.path}': ${u.note ?? 'unknown key'}`);
  }

  // 3. One schema parse; the first issue is reported against its source.
  const result = def.schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.map(String);
    const field = path.join('.');
    const fromFlag = overridePaths.find((p) => (p.length <= path.length ? p.every((k, i) => path[i] === k) : path.every((k, i) => p[i] === k)));
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    if (fromFlag) throw new UserError(`flag '--${fromFlag.join('.')}': ${issue.message}${more}`);
    const inFile = getPath(fileValue, path);
    if (opts.file !== undefined && inFile.found) {
      throw inputError({ file: label, field: field === '' ? undefined : field }, `${issue.message}${more}`);
    }
    const where = field === '' ? 'config' : `field '${field}'`;
    throw new UserError(`config: ${where}: ${issue.message}${more}; set it in the config file or with --${field}`);
  }
  return deepFreeze(result.data) as ConfigOf<S>;
}
