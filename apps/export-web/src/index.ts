// @latent-sft/export-web-app: the export-web CLI as a function (used by main.ts and the tests).
export { runCli } from './cli.js';
