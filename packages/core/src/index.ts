// @latent-sft/core: small primitives every package may use. No math, no models.
export { UserError, inputError, isUserError } from './errors.js';
export type { InputLocation } from './errors.js';
export { Rng } from './rng.js';
export type { RngState } from './rng.js';
export { AtomicWriter, writeFileAtomic, writeJsonAtomic } from './atomic.js';
export { createProgress } from './progress.js';
export type { Progress, ProgressFields, ProgressOptions } from './progress.js';
export { createAppIo, createRootLogger, silentLogger } from './logger.js';
export type { AppIo, LogLevel, Logger, RootLoggerOptions } from './logger.js';
export { LOG_FORMATS, LogOutput } from './terminal.js';
export type { LogFormat, LogOptions, TextStream } from './terminal.js';
export { errorText, runMain } from './cli.js';
