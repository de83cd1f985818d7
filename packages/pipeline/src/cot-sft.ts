// cot-sft: explicit CoT SFT of a base (random-init Llama-3-shaped config or an HF folder) → M0, or
// the No-CoT baseline (variant 'no-cot'). Full fine-tuning (spec §1: the paper fine-tunes all weights).
// Output: <out>/hf (M0 + tokenizer files), checkpoints, metrics, summary.
import { join } from 'node:path';
import type { ConfigOf } from '@latent-sft/config';
import { inputError } from '@latent-sft/core';
import { initParameters } from '@latent-sft/models';
import { collateCotSft, cotSftObjective } from '@latent-sft/phases';
import { loadTokenizer, materializeTokenizer, padId, writeVocabSubset } from '@latent-sft/tokenizer';
import { type RunContext, recordOf, secondsSince } from './context.js';
import { longestExample, prepareData } from './data.js';
import { loadModelDir, loadModelTokenizer, saveModelDir, tinyLlamaFor, toHost } from './model.js';
import { LAYOUT, claimOutDir, publishDir } from './run-dir.js';
import { runTraining } from './runner.js';
import type { cotSftSchema } from './schemas.js';
import { type PhaseSummary, writeSummary } from './summary.js';

export type CotSftConfig = ConfigOf<typeof cotSftSchema>;

/** Runs CoT-SFT (or No-CoT) and writes M0 to <out>/hf. */
export async function runCotSft(config: CotSftConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'cot-sft';
  const record = recordOf(app, config, ctx);
  const logger = ctx.logger;
  let tokDir: string;
  let model;
  let tensors;
  if (config.base.kind === 'init') {
    claimOutDir(config.out, record, config.resume);
    tokDir = join(config.out, 'tokenizer');
    materializeTokenizer(config.tokenizer, tokDir);
    let tok = await loadTokenizer(tokDir);
    if (config.base.vocab === 'corpus') {
      // Keep only what the training data uses (plus specials and bytes): the output layer of a small
      // model trained from scratch then spans hundreds or thousands of ids instead of 128k.
      const full = prepareData(config.data, tok);
      const ids = full.examples.flatMap((e) => [...e.prefixIds, ...e.thinkIds, ...e.cotIds, ...e.endThinkIds, ...e.answerIds]);
      writeVocabSubset(tokDir, tok.subsetFor([], ids));
      tok = await loadTokenizer(tokDir);
    }
    model = tinyLlamaFor(tok, config.base);
    tensors = initParameters(model, { seed: config.base.initSeed });
  } else {
    const base = loadModelDir(config.base.dir, 'base checkpoint', config.allowConfigFields);
    tokDir = config.base.dir;
    model = base.config;
    tensors = base.tensors;
    await loadModelTokenizer(tokDir, 'the base');
    claimOutDir(config.out, record, config.resume);
  }
  const tok = await loadModelTokenizer(tokDir, 'the base');
  if (tok.vocabSize > model.vocabSize) {
    throw inputError({ field: 'base' }, `the tokenizer has ${tok.vocabSize} ids but the model only ${model.vocabSize} embedding rows`);
  }
  const data = prepareData(config.data, tok);
  logger.info({ examples: data.examples.length, longest: longestExample(data.examples), vocab: model.vocabSize, hidden: model.hiddenSize }, 'data ready');
  const pad = padId(tok);
  const objective = cotSftObjective(model, { compute: config.compute });
  const { trained, metrics } = await runTraining({
    out: config.out, record, resume: config.resume, device: config.device, compute: config.compute, objective,
    init: { trainable: toHost(tensors), frozen: {} }, train: config.train, size: data.examples.length,
    collate: (b) => collateCotSft(b.indices.map((i) => data.examples[i]!), { padId: pad, variant: config.variant }).feeds,
    label: `cot-sft (${config.variant})`, logger,
  });
  publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, model, trained, tokDir));
  const summary: PhaseSummary = { app, out: config.out, steps: metrics.steps, window: metrics.window, first: metrics.first, last: metrics.last, collapse: metrics.collapse, wallSeconds: secondsSince(t0) };
  writeSummary(summary);
  logger.info({ ...summary }, 'done');
  return summary;
}
