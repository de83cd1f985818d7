// @latent-sft/config: typed run configs. A zod schema (every field described) is the single source of
// defaults, CLI flags and validation; configs resolve as defaults < JSON file < flags, strictly.
export { defineConfig } from './schema.js';
export type { ConfigDef, ConfigField, FieldType } from './schema.js';
export { loadConfig } from './load.js';
export type { ConfigOf, DeepReadonly, LoadConfigOptions } from './load.js';
export { buildCli, defineCommand } from './cli.js';
export type { CliCommand, CliSpec, CommandContext } from './cli.js';
export { configDiff, configHash, configRecord } from './record.js';
export type { ConfigRecord } from './record.js';
