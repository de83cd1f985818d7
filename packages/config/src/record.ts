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
  /** sha256 hex of canonicalJson(config). */
  readonly configHash: string;
  readonly config: C;
}

/** JSON with object keys sorted at every level and no whitespace (stable across key orders). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
    : v));
}

/** sha256 hex of the canonical JSON of a config. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** The record of a resolved config for `config.json` beside every checkpoint. */
export function configRecord<C>(config: C, meta: { app: string; version: number; createdAt: Date | string }): ConfigRecord<C> {
  if (!Number.isInteger(meta.version) || meta.version < 1) throw new Error(`schema version must be a positive integer, got ${meta.version}`);
  const createdAt = typeof meta.createdAt === 'string' ? meta.createdAt : meta.createdAt.toISOString();
  return { app: meta.app, schemaVersion: meta.version, createdAt, configHash: configHash(config), config };
}
