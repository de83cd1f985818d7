// Config schemas: a zod object whose every field carries a description, flattened into leaf fields
// with dotted paths (`optim.lr`). The leaf list drives the yargs option table, the unknown-key check
// and the help text, so a hyperparameter cannot exist without a flag and a description.
//
// Supported field types: number, string, boolean, enum, literal, nested objects, and discriminated
// unions of objects (`mode: {kind:'cot'} | {kind:'latent', r}` → `--mode.kind` plus `--mode.r`),
// each optionally wrapped in .optional(), .default() or .prefault(). Arrays, records, nullable and
// transforms are deliberately not supported (a flag could not express them); defineConfig throws.
// Nested objects: use `.prefault({})` so an absent object still gets its fields' defaults (zod 4's
// `.default({})` would return `{}` unparsed).
import type { z } from 'zod';

/** The CLI type of a leaf field. */
export type FieldType = 'number' | 'string' | 'boolean';

/** One leaf of a config schema. */
export interface ConfigField {
  /** Dotted path; also the flag name without `--`. */
  readonly path: string;
  readonly type: FieldType;
  readonly description: string;
  /** Allowed values of an enum/literal field. */
  readonly choices?: readonly (string | number)[];
  /** True when the field (or an enclosing object) supplies a default. */
  readonly hasDefault: boolean;
  /** The default shown in help (undefined when there is none). */
  readonly defaultValue?: unknown;
  /** Set for fields of a discriminated-union variant: valid only when `discriminator` is one of `values`. */
  readonly when?: { readonly discriminator: string; readonly values: readonly string[] };
}

/** A validated config schema with its flattened leaf fields. */
export interface ConfigDef<S extends z.ZodObject = z.ZodObject> {
  readonly schema: S;
  readonly fields: readonly ConfigField[];
}

type AnyDef = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): AnyDef => (s as unknown as { _zod: { def: AnyDef } })._zod.def;

interface Unwrapped {
  core: z.ZodType;
  description: string | undefined;
  hasDefault: boolean;
  defaultValue: unknown;
}

/** Strips optional/default/prefault wrappers, keeping the outermost description and default. */
export function unwrapField(schema: z.ZodType): Unwrapped {
  let s = schema;
  let description: string | undefined;
  let hasDefault = false;
  let defaultValue: unknown;
  for (;;) {
    description ??= s.description;
    const def = defOf(s);
    if (def.type === 'default' || def.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def['defaultValue'];
      }
      s = def['innerType'] as z.ZodType;
    } else if (def.type === 'optional') {
      s = def['innerType'] as z.ZodType;
    } else {
      return { core: s, description, hasDefault, defaultValue };
    }
  }
}

/** The discriminator key and variant objects of a discriminated union, or undefined. */
export function unionVariants(schema: z.ZodType): { discriminator: string; variants: Array<{ value: string; object: z.ZodObject }> } | undefined {
  const def = defOf(schema);
  if (def.type !== 'union' || typeof def['discriminator'] !== 'string') return undefined;
  const discriminator = def['discriminator'];
  const variants: Array<{ value: string; object: z.ZodObject }> = [];
  for (const option of def['options'] as z.ZodType[]) {
    if (defOf(option).type !== 'object') throw new Error(`discriminated union variants must be objects`);
    const object = option as z.ZodObject;
    const tag = object.shape[discriminator] as z.ZodType | undefined;
    const values = tag ? (defOf(tag)['values'] as unknown[] | undefined) : undefined;
    for (const v of values ?? []) {
      if (typeof v !== 'string') throw new Error(`discriminator '${discriminator}' values must be strings`);
      variants.push({ value: v, object });
    }
  }
  return { discriminator, variants };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function walk(
  schema: z.ZodType,
  path: string,
  parentDefault: { has: boolean; value: unknown },
  when: ConfigField['when'],
  out: Map<string, ConfigField>,
): void {
  const u = unwrapField(schema);
  const hasDefault = u.hasDefault || parentDefault.has;
  const defaultValue = u.hasDefault ? u.defaultValue : parentDefault.value;
  const def = defOf(u.core);
  const need = (): string => {
    if (u.description === undefined || u.description.trim() === '') {
      throw new Error(`config field '${path}' has no description: add .describe('…')`);
    }
    return u.description;
  };
  const add = (f: ConfigField): void => {
    const prev = out.get(f.path);
    if (!prev) {
      out.set(f.path, f);
      return;
    }
    if (prev.type !== f.type || !prev.when || !f.when) {
      throw new Error(`config field '${f.path}' is declared twice with different types`);
    }
    out.set(f.path, { ...prev, when: { ...prev.when, values: [...prev.when.values, ...f.when.values] } });
  };
  const leaf = (type: FieldType, choices?: readonly (string | number)[]): void => {
    add({
      path,
      type,
      description: need(),
      hasDefault,
      ...(hasDefault ? { defaultValue } : {}),
      ...(choices ? { choices } : {}),
      ...(when ? { when } : {}),
    });
  };
  switch (def.type) {
    case 'number':
    case 'string':
    case 'boolean':
      leaf(def.type);
      return;
    case 'enum':
    case 'literal': {
      const values = def.type === 'enum' ? Object.values(def['entries'] as Record<string, unknown>) : (def['values'] as unknown[]);
      if (values.every((v) => typeof v === 'string')) leaf('string', values as string[]);
      else if (values.every((v) => typeof v === 'number')) leaf('number', values as number[]);
      else throw new Error(`config field '${path}': enum values must be all strings or all numbers`);
      return;
    }
    case 'object': {
      need();
      for (const [key, child] of Object.entries((u.core as z.ZodObject).shape)) {
        const childDefault = isPlainObject(defaultValue) && key in defaultValue ? { has: true, value: defaultValue[key] } : { has: false, value: undefined };
        walk(child as z.ZodType, path === '' ? key : `${path}.${key}`, childDefault, when, out);
      }
      return;
    }
    case 'union': {
      const du = unionVariants(u.core);
      if (du) {
        const description = need();
        const tagPath = `${path}.${du.discriminator}`;
        const tagDefault = isPlainObject(defaultValue) ? defaultValue[du.discriminator] : undefined;
        add({
          path: tagPath,
          type: 'string',
          description,
          choices: du.variants.map((v) => v.value),
          hasDefault: tagDefault !== undefined,
          ...(tagDefault !== undefined ? { defaultValue: tagDefault } : {}),
          ...(when ? { when } : {}),
        });
        for (const { value, object } of du.variants) {
          const variantDefault = isPlainObject(defaultValue) && defaultValue[du.discriminator] === value ? defaultValue : undefined;
          for (const [key, child] of Object.entries(object.shape)) {
            if (key === du.discriminator) continue;
            const childDefault = variantDefault && key in variantDefault ? { has: true, value: variantDefault[key] } : { has: false, value: undefined };
            walk(child as z.ZodType, `${path}.${key}`, childDefault, { discriminator: tagPath, values: [value] }, out);
          }
        }
        return;
      }
      break;
    }
    default:
      break;
  }
  throw new Error(
    `config field '${path}': unsupported schema type '${def.type}' (supported: number, string, ` +
      'boolean, enum, literal, object, discriminated union; optional/default/prefault wrappers)',
  );
}

/** Validates a config schema (every field described, supported types) and flattens its fields. */
export function defineConfig<S extends z.ZodObject>(schema: S): ConfigDef<S> {
  if (defOf(schema).type !== 'object') throw new Error('defineConfig needs a zod object schema');
  const out = new Map<string, ConfigField>();
  for (const [key, child] of Object.entries(schema.shape)) {
    walk(child as z.ZodType, key, { has: false, value: undefined }, undefined, out);
  }
  for (const reserved of ['config', 'print-config', 'printConfig', 'help', 'version']) {
    if (out.has(reserved)) throw new Error(`config field '${reserved}' clashes with a built-in CLI flag`);
  }
  return Object.freeze({ schema, fields: Object.freeze([...out.values()]) });
}

/** Dotted paths of keys in `value` that the schema does not declare (objects and union variants). */
/** The schema of field `k` (own keys only: `toString`, `constructor`, `__proto__` are no fields). */
function ownField(shape: Record<string, unknown>, k: string): z.ZodType | undefined {
  return Object.hasOwn(shape, k) ? (shape[k] as z.ZodType) : undefined;
}

/**
 * Gives a discriminated-union object that names no discriminator the one of the field's default
 * (`--base.vocab corpus` means the default `base.kind`), when every key it holds belongs to that
 * variant; recurses into nested objects. Mutates `value` (a merged, not yet parsed config).
 */
export function fillDefaultVariants(schema: z.ZodType, value: unknown): void {
  if (!isPlainObject(value)) return;
  const { core, defaultValue } = unwrapField(schema);
  const def = defOf(core);
  if (def.type === 'object') {
    const shape = (core as z.ZodObject).shape;
    for (const [k, v] of Object.entries(value)) {
      const child = ownField(shape, k);
      if (child) fillDefaultVariants(child, v);
    }
    return;
  }
  const du = unionVariants(core);
  if (!du) return;
  if (!Object.hasOwn(value, du.discriminator)) {
    const kind = isPlainObject(defaultValue) ? defaultValue[du.discriminator] : undefined;
    const variant = du.variants.find((v) => v.value === kind);
    if (variant && Object.keys(value).every((k) => Object.hasOwn(variant.object.shape, k))) value[du.discriminator] = kind;
  }
  const chosen = du.variants.find((v) => v.value === value[du.discriminator]);
  if (chosen) fillDefaultVariants(chosen.object, value);
}

export function unknownKeys(schema: z.ZodType, value: unknown, prefix = ''): Array<{ path: string; note?: string }> {
  if (!isPlainObject(value)) return [];
  const core = unwrapField(schema).core;
  const join = (k: string): string => (prefix === '' ? k : `${prefix}.${k}`);
  const def = defOf(core);
  const found: Array<{ path: string; note?: string }> = [];
  if (def.type === 'object') {
    const shape = (core as z.ZodObject).shape;
    for (const [k, v] of Object.entries(value)) {
      const child = ownField(shape, k);
      if (child) found.push(...unknownKeys(child, v, join(k)));
      else found.push({ path: join(k) });
    }
    return found;
  }
  const du = unionVariants(core);
  if (du) {
    const chosen = du.variants.find((v) => v.value === value[du.discriminator]);
    const allowed = new Map<string, string[]>();
    for (const v of du.variants) for (const k of Object.keys(v.object.shape)) allowed.set(k, [...(allowed.get(k) ?? []), v.value]);
    for (const [k, v] of Object.entries(value)) {
      if (chosen) {
        const child = ownField(chosen.object.shape, k);
        if (child) found.push(...unknownKeys(child, v, join(k)));
        else {
          const others = allowed.get(k);
          found.push(others ? { path: join(k), note: `only valid when ${join(du.discriminator)} is ${others.join(' or ')}` } : { path: join(k) });
        }
      } else if (!allowed.has(k)) {
        found.push({ path: join(k) });
      }
    }
  }
  return found;
}
