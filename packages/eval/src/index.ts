// @latent-sft/eval: answer extraction (official Latent-SFT parser; lenient boxed → #### → last number),
// the official grader, answer equivalence per dataset kind
// (numeric, integer, LaTeX with a compute-engine fallback), scoring of predictions files, and the
// Table-1 summary of runs over seeds; the eval datasets; one eval row from one generated sequence (#L,
// ECR@K, entropy); a predictions file scored.
export { extractAnswer } from './extract.js';
export type { AnswerSource, ExtractOptions, Extraction, ExtractionMode } from './extract.js';
export { datasetAnswerKind, isEquivalent } from './equivalence.js';
export type { AnswerKind, MatchMethod } from './equivalence.js';
export type { Judgement, ScoreResult, Verdict } from './score.js';
export { formatStd, formatValue, meanStd } from './table.js';
export type { Stat, Table1, Table1Cell, Table1Row } from './table.js';
export { EVAL_MODES, buildSummary, parseSummary, renderSummariesMarkdown, runStats } from './report.js';
export type { EvalMode, EvalRow, EvalSummary, LatentStepRecord, RunStats } from './report.js';
export { renderReportHtml, superpositionSvg } from './html.js';
export type { MetricsCurves, ReportInput, SuperpositionExample, SuperpositionOptions, SuperpositionStep } from './html.js';
export { MULTIPLICATION_DATASET_SYNTAX, loadEvalDataset, parseEvalDataset } from './datasets.js';
export type { EvalDatasetName } from './datasets.js';
export { TokenText, buildRow, explicitReasoningLength, rejudgeRow, findSubsequence, superpositionExamples } from './rows.js';
export type { GeneratedSequence, RowContext, RowTokenizer } from './rows.js';
export { scorePredictionsFile } from './score-file.js';
export type { ScoreFileOptions, ScoreFileResult } from './score-file.js';
