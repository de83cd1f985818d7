// @latent-sft/inspect-app: the inspect CLI's commands as functions (used by main.ts and the tests).
export { runCli } from './cli.js';
export { logitsCommand, parseIds, tokenizeCommand } from './inspect.js';
