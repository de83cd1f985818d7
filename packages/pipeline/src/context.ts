// What every phase function gets besides its config, and the config record it saves.
import { type ConfigRecord, configRecord } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { RUN_CONTROL_KEYS } from './run-dir.js';
import { SCHEMA_VERSION } from './schemas.js';

export interface RunContext {
  logger: Logger;
  /** Clock for the config record (default: the wall clock). */
  now?: () => Date;
}

/** The config record of a run of `app` (its hash leaves out the run-control keys: out, resume, allowConfigChange). */
export function recordOf(app: string, config: unknown, ctx: RunContext): ConfigRecord {
  return configRecord(config, { app, version: SCHEMA_VERSION, createdAt: (ctx.now ?? (() => new Date()))(), ignore: RUN_CONTROL_KEYS });
}

/** Seconds since `t0` (performance.now() milliseconds). */
export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}
