// @latent-sft/eval: answer extraction (official Latent-SFT parser; lenient boxed → #### → last number),
// the official grader, answer equivalence per dataset kind
// (numeric, integer, LaTeX with a compute-engine fallback), scoring of predictions files, and the
// Table-1 summary of runs over seeds; the eval datasets; one eval row from one generated sequence (#L,
// ECR@K, entropy); a predictions file scored.
export {
  DEFAULT_EXTRACTION_MODE,
  EXTRACTION_CHAINS,
  EXTRACTION_MODES,
  extractAnswer,
  extractBoxed,
  extractHashes,
  extractLastNumber,
  extractOfficial,
  extractionChain,
} from './extract.js';
export type { AnswerSource, ExtractOptions, Extraction, ExtractionMode } from './extract.js';
export { compareAnswers, datasetAnswerKind, isEquivalent } from './equivalence.js';
export type { AnswerKind, Comparison, MatchMethod } from './equivalence.js';
export { NUMERIC_ATOL, NUMERIC_RTOL, numbersClose, parseNumber } from './number.js';
export type { ParsedNumber } from './number.js';
export { normalizeLatex } from './latex.js';
export { LATEX_RTOL, SYMBOLIC_BUDGET_MS, symbolicCompare } from './symbolic.js';
export type { SymbolicVerdict } from './symbolic.js';
export { OFFICIAL_ABS_TOL, OFFICIAL_REL_TOL, officialCompare, parseDigits, pyIsClose, pythonFloat } from './official.js';
export {
  judgeBoth,
  judgeOutput,
  parsePredictionsJsonl,
  readPredictionsJsonl,
  scorePredictions,
  verdictsToJsonl,
} from './score.js';
export type { Judgement, Prediction, ScoreInput, ScoreResult, Verdict } from './score.js';
export {
  DATASET_LABELS,
  formatStd,
  formatValue,
  meanStd,
  renderTable1Markdown,
  summarizeRuns,
} from './table.js';
export type {
  RenderOptions,
  RunResult,
  Stat,
  SummarizeOptions,
  Table1,
  Table1Cell,
  Table1Row,
} from './table.js';
export { EVAL_MODES, buildSummary, parseSummary, renderSummariesMarkdown, runStats, toRunResults } from './report.js';
export type { EvalMode, EvalRow, EvalSummary, LatentStepRecord, RunStats } from './report.js';
export {
  escapeXml,
  lineChartSvg,
  niceTicks,
  renderReportHtml,
  superpositionSvg,
  table1Html,
  visibleToken,
} from './html.js';
export type {
  LineChartOptions,
  LineSeries,
  MetricsCurves,
  ReportInput,
  SuperpositionExample,
  SuperpositionOptions,
  SuperpositionStep,
} from './html.js';
export { MULTIPLICATION_DATASET_SYNTAX, loadEvalDataset, parseEvalDataset } from './datasets.js';
export type { EvalDatasetName } from './datasets.js';
export { TokenText, buildRow, explicitReasoningLength, rejudgeRow, findSubsequence, superpositionExamples } from './rows.js';
export type { GeneratedSequence, RowContext, RowTokenizer } from './rows.js';
export { defaultVerdictsPath, scorePredictionsFile } from './score-file.js';
export type { ScoreFileOptions, ScoreFileResult } from './score-file.js';
