// @latent-sft/eval-app: the eval CLI's yargs layer (used by main.ts, the tests and the Table-1 driver).
export { parseDatasets, parseIntList, runCli } from './cli.js';
