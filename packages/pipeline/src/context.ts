// What every phase function gets besides its config, and the config record it saves.
import { type ConfigRecord, configRecord } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import type { ProcessGroup } from '@latent-sft/distributed';
import { RUN_CONTROL_KEYS } from './run-dir.js';
import { SCHEMA_VERSION } from './schemas.js';

export interface RunContext {
  logger: Logger;
  /** Data-parallel training: this process's group (rank 0 alone writes the output folder). */
  group?: ProcessGroup;
  /** Clock for the config record (default: the wall clock). */
  now?: () => Date;
}

/** The config record of a run of `app` (its hash leaves out the run-control keys: out, resume, allowConfigChange). */
export function recordOf(app: string, config: unknown, ctx: RunContext): ConfigRecord {
  return configRecord(config, { app, version: SCHEMA_VERSION, createdAt: (ctx.now ?? (() => new Date()))(), ignore: RUN_CONTROL_KEYS });
}

/** Whether this process writes the run's outputs: one process, or rank 0 of a data-parallel group. */
export function isWriter(ctx: RunContext): boolean {
  return (ctx.group?.rank ?? 0) === 0;
}

/** Seconds since `t0` (performance.now() milliseconds). */
export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}
