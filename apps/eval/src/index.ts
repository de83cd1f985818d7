// @latent-sft/eval-app: the eval CLI's commands as functions (used by main.ts and the tests).
export { runCli } from './cli.js';
export { MULTIPLICATION_DATASET_SYNTAX, loadEvalDataset, parseEvalDataset } from './datasets.js';
export type { EvalDatasetName } from './datasets.js';
export { readSummary, reportCommand, superpositionExamples } from './report.js';
export type { ReportOptions } from './report.js';
export {
  BLOCK, TokenText, buildRow, defaultMethodName, explicitReasoningLength, findSubsequence, parseDatasets, parseIntList,
  predictionsFile, promptIds, runCommand, runIdentity, runNotes,
} from './run.js';
export type { RunOptions } from './run.js';
export { defaultVerdictsPath, scoreCommand } from './score.js';
export type { ScoreCommandResult, ScoreOptions } from './score.js';
