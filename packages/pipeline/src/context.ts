// What every phase function gets besides its config, and the config record it saves.
import { type ConfigRecord, configRecord } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { SCHEMA_VERSION } from './schemas.js';

export interface RunContext {
  logger: Logger;
  /** Clock for the config record (default: the wall clock). */
  now?: () => Date;
}

/** The config record of a run of `app`. */
export function recordOf(app: string, config: unknown, ctx: RunContext): ConfigRecord {
  return configRecord(config, { app, version: SCHEMA_VERSION, createdAt: (ctx.now ?? (() => new Date()))() });
}

/** Seconds since `t0` (performance.now() milliseconds). */
export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}
