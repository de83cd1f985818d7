// The config record written beside every checkpoint (`config.json`): app name, schema version, the
// resolved config, its hash (sha256 of canonical JSON: sorted keys, no spaces) and the creation time,
// which the caller passes in (no hidden clock).
import { createHash } from 'node:crypto';

/** What is saved beside checkpoints to identify a run and reproduce its config. */
export interface ConfigRecord<C = unknown> {
  readonly app: string;
  /** The app's config schema version (bump it when fields change meaning; migrate with a named patch). */
  readonly schemaVersion: number;
  readonly createdAt: string;
  /** sha256 hex of canonicalJson(config) without the record's ignored run-control keys. */
  readonly configHash: string;
  readonly config: C;
}

/** JSON with object keys sorted at every level and no whitespace (stable across key orders). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      : v,
  );
}

/** A config without the top-level `ignore` keys (run-control flags such as `resume` that do not change what is computed). */
export function configIdentity(config: unknown, ignore: readonly string[] = []): unknown {
  if (ignore.length === 0 || typeof config !== 'object' || config === null || Array.isArray(config)) return config;
  return Object.fromEntries(Object.entries(config).filter(([k]) => !ignore.includes(k)));
}

/** sha256 hex of the canonical JSON of a config, without its top-level `ignore` keys. */
export function configHash(config: unknown, ignore: readonly string[] = []): string {
  return createHash('sha256')
    .update(canonicalJson(configIdentity(config, ignore)))
    .digest('hex');
}

/**
 * The leaf fields where two configs differ (top-level `ignore` keys left out), as
 * `path: before → after` (JSON values), in sorted path order.
 */
export function configDiff(before: unknown, after: unknown, ignore: readonly string[] = []): string[] {
  const out: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (isObj(a) && isObj(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        walk(Object.hasOwn(a, k) ? a[k] : undefined, Object.hasOwn(b, k) ? b[k] : undefined, path === '' ? k : `${path}.${k}`);
      }
    } else if (canonicalJson(a) !== canonicalJson(b)) {
      out.push(`${path}: ${a === undefined ? 'unset' : canonicalJson(a)} → ${b === undefined ? 'unset' : canonicalJson(b)}`);
    }
  };
  walk(configIdentity(before, ignore), configIdentity(after, ignore), '');
  return out;
}

/**
 * The record of a resolved config for `config.json` beside every checkpoint. `ignore` names the
 * top-level run-control keys left out of the hash (e.g. `resume`), so the hash identifies what is computed.
 */
export function configRecord<C>(config: C, meta: { app: string; version: number; createdAt: Date | string; ignore?: readonly string[] }): ConfigRecord<C> {
  if (!Number.isInteger(meta.version) || meta.version < 1) throw new Error(`schema version must be a positive integer, got ${meta.version}`);
  const createdAt = typeof meta.createdAt === 'string' ? meta.createdAt : meta.createdAt.toISOString();
  return { app: meta.app, schemaVersion: meta.version, createdAt, configHash: configHash(config, meta.ignore), config };
}
