// @latent-sft/pipeline: the shared run machinery of the phase apps: config schemas, output-folder
// layout and guards, dataset preparation, model folders (HF checkpoint + tokenizer), the training
// runner, the phase functions (cot-sft, phase 1 steps, merge-lora, cache-latents, phase 2), summaries,
// and the evaluation runs (eval run: generation + scoring into a run folder; eval report).
export {
  cacheLatentsConfig,
  cacheLatentsSchema,
  cotSftConfig,
  cotSftSchema,
  dataSchema,
  mergeLoraConfig,
  mergeLoraSchema,
  phase1DecoderConfig,
  phase1DecoderSchema,
  phase1EncoderConfig,
  phase1EncoderSchema,
  phase1UnionConfig,
  phase1UnionSchema,
  phase2Config,
  phase2Schema,
} from './schemas.js';
export type { RunContext } from './context.js';
export { phaseCommand, runPhaseCli } from './cli.js';
export type { PhaseCliIo, PhaseCommand } from './cli.js';
export { prepareData } from './data.js';
export type { DataSpec, PreparedData } from './data.js';
export { initLora, loadModelDir, loraOf, resizeForCompress, saveAdapterDir, saveModelDir, tokenizerSha, writeRandomModel } from './model.js';
export type { ModelDir, TinySizes } from './model.js';
export { formatResultsTable, readSummary, summarizeMetrics, writeSummary } from './summary.js';
export type { MetricSummary, PhaseSummary } from './summary.js';
export { runCotSft } from './cot-sft.js';
export type { CotSftConfig } from './cot-sft.js';
export { runPhase1Decoder, runPhase1Encoder, runPhase1Union } from './phase1.js';
export type { Phase1DecoderConfig, Phase1EncoderConfig, Phase1UnionConfig } from './phase1.js';
export { runMergeLora } from './merge.js';
export type { MergeLoraConfig } from './merge.js';
export { readLatentCache, runCacheLatents } from './cache.js';
export type { CacheChunk, CacheIdentity, CacheLatentsConfig, CacheManifest } from './cache.js';
export { runPhase2 } from './phase2.js';
export type { Phase2Config } from './phase2.js';
// PEFT adapter I/O, for callers that build adapters outside a phase (tests, tools).
export { saveAdapter } from '@latent-sft/models';
export { defaultMethodName, promptIds, runEval } from './eval-run.js';
export type { EvalRunOptions } from './eval-run.js';
export { writeEvalReport } from './eval-report.js';
export type { EvalReportOptions } from './eval-report.js';
