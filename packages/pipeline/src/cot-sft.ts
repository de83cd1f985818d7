// cot-sft: explicit CoT SFT of a base (random-init Llama-3-shaped config or an HF folder) → M0, or
// the No-CoT baseline (variant 'no-cot'). Full fine-tuning (spec §1: the paper fine-tunes all weights).
// Output: <out>/hf (M0 + tokenizer files), checkpoints, metrics, summary.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigOf, ConfigRecord } from '@latent-sft/config';
import { inputError } from '@latent-sft/core';
import { type ModelConfig, type NamedTensor, initParameters } from '@latent-sft/models';
import { collateCotSft, cotSftObjective } from '@latent-sft/phases';
import { type Tokenizer, loadTokenizer, materializeTokenizer, padId, writeVocabSubset } from '@latent-sft/tokenizer';
import { type RunContext, isWriter, recordOf } from './context.js';
import { type PreparedData, checkFitsModel, longestExample, prepareData } from './data.js';
import { checkAllocatable, copyTokenizer, loadModelDir, loadModelTokenizer, saveModelDir, tinyLlamaFor, toHost, tokenizerSha } from './model.js';
import { LAYOUT, claimOutDir, publishDir } from './run-dir.js';
import { runOptionsOf, runTraining } from './runner.js';
import type { cotSftSchema } from './schemas.js';
import { type PhaseSummary, finishTraining } from './summary.js';

export type CotSftConfig = ConfigOf<typeof cotSftSchema>;

/** Where a random-init base's tokenizer files live in the output folder. */
const TOKENIZER_DIR = 'tokenizer';

/** Runs CoT-SFT (or No-CoT) and writes M0 to <out>/hf. */
export async function runCotSft(config: CotSftConfig, ctx: RunContext): Promise<PhaseSummary> {
  if (config.base.kind === 'checkpoint') return runFrom(config, ctx, config.base.dir, null);
  // A random-init base: its tokenizer (and corpus subset) is prepared aside, so the data is validated
  // before the folder is claimed; on --resume it must equal the one the run started with.
  const staged = mkdtempSync(join(tmpdir(), 'latent-sft-tokenizer-'));
  try {
    materializeTokenizer(config.tokenizer, staged);
    if (config.base.vocab === 'corpus') {
      // Keep only what the training data uses (plus specials and bytes): the output layer of a small
      // model trained from scratch then spans hundreds or thousands of ids instead of 128k.
      const fullTok = await loadTokenizer(staged);
      const full = prepareData(config.data, fullTok);
      const ids = full.examples.flatMap((e) => [...e.prefixIds, ...e.thinkIds, ...e.cotIds, ...e.endThinkIds, ...e.answerIds]);
      writeVocabSubset(staged, fullTok.subsetFor([], ids));
    }
    return await runFrom(config, ctx, staged, config.base);
  } finally {
    rmSync(staged, { recursive: true, force: true });
  }
}

/** Validates every input, claims the folder (for a random-init base: publishes `tokDir` as <out>/tokenizer) and trains. */
async function runFrom(
  config: CotSftConfig,
  ctx: RunContext,
  tokDir: string,
  init: Extract<CotSftConfig['base'], { kind: 'init' }> | null,
): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'cot-sft';
  const record = recordOf(app, config, ctx);
  const base = init === null ? loadModelDir(tokDir, 'base checkpoint', config.allowConfigFields) : null;
  const tok = await loadModelTokenizer(tokDir, 'the base');
  const model = base?.config ?? tinyLlamaFor(tok, init as NonNullable<typeof init>);
  if (init !== null) checkAllocatable(model, 'base');
  if (tok.vocabSize > model.vocabSize) {
    throw inputError({ field: 'base' }, `the tokenizer has ${tok.vocabSize} ids but the model only ${model.vocabSize} embedding rows`);
  }
  const data = prepareData(config.data, tok);
  checkFitsModel(data.examples, model.maxPositionEmbeddings, null, init === null ? tokDir : 'the random-init base');
  const tensors = base?.tensors ?? initParameters(model, { seed: (init as NonNullable<typeof init>).initSeed });
  const lock = isWriter(ctx) ? claimOutDir(config.out, record, config.resume) : null;
  try {
    let modelTokDir = tokDir;
    if (init !== null && lock !== null) {
      modelTokDir = join(config.out, TOKENIZER_DIR);
      if (!existsSync(modelTokDir)) publishDir(config.out, TOKENIZER_DIR, (tmp) => copyTokenizer(tokDir, tmp));
      else if (tokenizerSha(modelTokDir) !== tokenizerSha(tokDir)) {
        throw inputError(
          { file: modelTokDir },
          `differs from the tokenizer of this config (${init.vocab === 'corpus' ? 'another corpus vocabulary subset' : 'another tokenizer'}); resume with the data the run was started with or choose another output dir`,
        );
      }
    }
    return await train(config, ctx, { t0, record, tokDir: modelTokDir, model, tensors, tok, data });
  } finally {
    lock?.release();
  }
}

async function train(
  config: CotSftConfig,
  ctx: RunContext,
  o: {
    t0: number;
    record: ConfigRecord;
    tokDir: string;
    model: ModelConfig;
    tensors: NamedTensor[];
    tok: Tokenizer;
    data: PreparedData;
  },
): Promise<PhaseSummary> {
  const { t0, record, tokDir, model, tensors, tok, data } = o;
  const app = record.app;
  const logger = ctx.logger;
  logger.info({ examples: data.examples.length, longest: longestExample(data.examples), vocab: model.vocabSize, hidden: model.hiddenSize }, 'data ready');
  const pad = padId(tok);
  const objective = cotSftObjective(model, { compute: config.compute });
  const { trained, metrics } = await runTraining({
    ...runOptionsOf(config, record),
    params: config.params,
    objective,
    init: { trainable: toHost(tensors), frozen: {} },
    size: data.examples.length,
    collate: (b) =>
      collateCotSft(
        b.indices.map((i) => data.examples[i]!),
        { padId: pad, variant: config.variant },
      ).feeds,
    label: `cot-sft (${config.variant})`,
    logger,
    ...(ctx.group !== undefined ? { group: ctx.group } : {}),
  });
  const write = isWriter(ctx);
  if (write) publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, model, trained, tokDir));
  return finishTraining(app, config.out, metrics, { t0, logger, write });
}
