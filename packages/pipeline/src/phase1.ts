// Phase 1 (spec §3.6), the three optimisation steps:
//   encoder: E := M0 + <|compress_token|> (row V = mean of M0's rows, see model.ts), LoRA on E incl.
//            embed_tokens (FEATURE_EXTRACTION); D := M0 frozen. Saves base_model/ (resized E before
//            LoRA), lora_adapter/ and hf/ (adapter merged into base_model = the step-1 encoder).
//   decoder: E := merged step-1 encoder, frozen; LoRA on D := M0 (CAUSAL_LM). Saves lora_adapter/ and
//            hf/ (merged step-2 decoder).
//   union:   new LoRAs on both (E = step-1 hf, D = step-2 hf), trained jointly. Saves
//            lora_adapter/encoder_weight and lora_adapter/decoder_weight (adapters only, as the
//            reference); merge-lora turns the decoder one into M1.
// Every hf/ folder carries the tokenizer files of the decoder it came from; every hf/ and adapter folder
// carries latent.json, the latent spec (the encoder step declares it, later steps read and check it).
import { join } from 'node:path';
import type { ConfigOf, ConfigRecord } from '@latent-sft/config';
import { inputError } from '@latent-sft/core';
import { DEFAULT_LATENT_SPEC, type LatentSpec, readLatentSpecs, resolveLatentSpec } from '@latent-sft/latent';
import { type LoraConfig, type ModelConfig, type NamedTensor, mergeLora } from '@latent-sft/models';
import {
  DECODER_PREFIX,
  ENCODER_PREFIX,
  type Phase1Options,
  type Phase1Step,
  type SequenceParts,
  collatePhase1,
  collatePhase1GoldCot,
  phase1Objective,
} from '@latent-sft/phases';
import type { HostTensor } from '@latent-sft/runtime';
import { type EvalBatch, Evaluator } from '@latent-sft/train';
import { type Tokenizer, padId } from '@latent-sft/tokenizer';
import { type RunContext, isWriter, recordOf } from './context.js';
import { type PreparedData, checkFitsModel, longestExample, prepareData, prepareHeldOut } from './data.js';
import {
  type ModelDir,
  checkSameArchitecture,
  initLora,
  loadModelDir,
  loadModelTokenizer,
  loraOf,
  resizeForCompress,
  saveAdapterDir,
  saveModelDir,
  stripPrefix,
  toHost,
} from './model.js';
import { LAYOUT, claimOutDir, publishDir } from './run-dir.js';
import { type Selection, frozenDtypeFor, hostAsSpecs, runOptionsOf, runTraining } from './runner.js';
import { PHASE1_SELECTIONS, type phase1DecoderSchema, type phase1EncoderSchema, type phase1UnionSchema } from './schemas.js';
import { type PhaseSummary, finishTraining } from './summary.js';

export type Phase1EncoderConfig = ConfigOf<typeof phase1EncoderSchema>;
export type Phase1DecoderConfig = ConfigOf<typeof phase1DecoderSchema>;
export type Phase1UnionConfig = ConfigOf<typeof phase1UnionSchema>;
type AnyPhase1 = Phase1EncoderConfig | Phase1DecoderConfig | Phase1UnionConfig;

/** The latent kind of a spec, as the phase objectives take it. */
export function latentKindOf(spec: LatentSpec): Phase1Options['latent'] {
  return spec.kind === 'soft-topk' ? { kind: 'soft-topk', k: spec.topK } : { kind: spec.kind };
}

/** A latent spec as summary notes (flat strings and numbers). */
export function latentNotes(spec: LatentSpec): Record<string, string | number> {
  return { latent: spec.kind, compressionRate: spec.compressionRate, topK: spec.topK, ltim: String(spec.ltim), ltsum: String(spec.ltsum) };
}

/**
 * The latent spec of a phase-1 step: the encoder step declares it (unset fields: DEFAULT_LATENT_SPEC);
 * the decoder and union steps read the latent.json of their input models and refuse a config field
 * that differs (folders without one: the defaults).
 */
export function phase1LatentSpec(app: string, config: AnyPhase1, inputs: readonly string[]): LatentSpec {
  return resolveLatentSpec(config.latent, readLatentSpecs(inputs), { where: `${app} config`, prefix: 'latent.', fallback: DEFAULT_LATENT_SPEC });
}

/** Throws unless `enc` is an encoder (vocabulary V+1) of the decoder `dec`'s architecture. */
export function checkEncoderOf(dec: ModelConfig, enc: ModelDir, field: string): void {
  checkSameArchitecture(dec, enc.config, field);
  if (enc.config.vocabSize !== dec.vocabSize + 1) {
    throw inputError(
      { file: enc.dir, field },
      `vocabulary ${enc.config.vocabSize}, expected ${dec.vocabSize + 1} (the decoder's ${dec.vocabSize} + <|compress_token|>): not a step-1 encoder of this decoder`,
    );
  }
}

interface StepSetup {
  step: Phase1Step;
  decoder: ModelDir;
  /** E's base weights (vocabulary V+1): a folder read on demand, or the step-1 resize of M0 in memory. */
  encoder: ModelDir | { config: ModelConfig; tensors: NamedTensor[] };
  lora: { encoder?: LoraConfig; decoder?: LoraConfig };
  /** Writes what the step needs before training into the claimed folder. */
  prepare?(): void;
  /** Writes the step's outputs from the trained tensors (prefixed names). */
  save(trained: NamedTensor[]): void;
}

/** Validates the step's inputs, then claims and locks the output folder and trains. */
async function runStep(
  app: string,
  config: AnyPhase1,
  spec: LatentSpec,
  ctx: RunContext,
  setup: (tokDir: string) => StepSetup,
  tokDir: string,
  t0: number,
): Promise<PhaseSummary> {
  const tok = await loadModelTokenizer(tokDir, 'the decoder folder');
  const s = setup(tokDir);
  if (tok.vocabSize > s.decoder.config.vocabSize)
    throw inputError({ file: s.decoder.dir }, `the tokenizer has ${tok.vocabSize} ids but the decoder only ${s.decoder.config.vocabSize} rows`);
  const data = prepareData(config.data, tok);
  const maxPositions = Math.min(s.encoder.config.maxPositionEmbeddings, s.decoder.config.maxPositionEmbeddings);
  checkFitsModel(data.examples, maxPositions, spec.compressionRate, s.decoder.dir);
  let heldOut: SequenceParts[] | null = null;
  if (config.select.metric !== 'none') {
    if (config.train.checkpointEvery === 0)
      throw inputError(
        { field: 'train.checkpointEvery' },
        `select.metric ${config.select.metric} scores every checkpoint; set train.checkpointEvery > 0 (e.g. the steps of one epoch)`,
      );
    heldOut = prepareHeldOut(config.data, tok, config.select.examples);
    checkFitsModel(heldOut, maxPositions, spec.compressionRate, s.decoder.dir);
  }
  const record = recordOf(app, config, ctx);
  const lock = isWriter(ctx) ? claimOutDir(config.out, record, config.resume) : null;
  try {
    return await trainStep(config, ctx, { app, spec, s, tok, data, heldOut, record, t0 });
  } finally {
    lock?.release();
  }
}

async function trainStep(
  config: AnyPhase1,
  ctx: RunContext,
  o: {
    app: string;
    spec: LatentSpec;
    s: StepSetup;
    tok: Tokenizer;
    data: PreparedData;
    heldOut: SequenceParts[] | null;
    record: ConfigRecord;
    t0: number;
  },
): Promise<PhaseSummary> {
  const { app, spec, s, tok, data, record, t0 } = o;
  const logger = ctx.logger;
  const write = isWriter(ctx);
  if (write) s.prepare?.();
  logger.info({ step: s.step, examples: data.examples.length, longest: longestExample(data.examples) }, 'data ready');
  const objectiveOptions: Phase1Options = {
    step: s.step,
    latent: latentKindOf(spec),
    ltim: spec.ltim,
    ltsum: spec.ltsum,
    lora: s.lora,
    compute: config.compute,
    ...(frozenDtypeFor(config.compute) !== undefined ? { frozenDtype: frozenDtypeFor(config.compute) } : {}),
  };
  const objective = phase1Objective(s.decoder.config, objectiveOptions);
  const trainable: Record<string, HostTensor> = {
    ...(s.lora.encoder !== undefined ? toHost(initLora(s.encoder.config, s.lora.encoder, config.train.seed), ENCODER_PREFIX) : {}),
    ...(s.lora.decoder !== undefined ? toHost(initLora(s.decoder.config, s.lora.decoder, config.train.seed + 1), DECODER_PREFIX) : {}),
  };
  // The frozen bases in their input dtype; folders are read straight from their files (16-bit inputs without a
  // float32 copy of the model: ModelDir.readAs).
  const under = (prefix: string) => Object.fromEntries(Object.entries(objective.frozen).filter(([n]) => n.startsWith(prefix)));
  const enc = s.encoder;
  const frozen = {
    ...('readAs' in enc ? enc.readAs(under(ENCODER_PREFIX), ENCODER_PREFIX) : hostAsSpecs(under(ENCODER_PREFIX), toHost(enc.tensors, ENCODER_PREFIX))),
    ...s.decoder.readAs(under(DECODER_PREFIX), DECODER_PREFIX),
  };
  const pad = padId(tok);
  const dropout = (s.lora.encoder?.dropout ?? 0) > 0 || (s.lora.decoder?.dropout ?? 0) > 0;
  const evaluator =
    o.heldOut === null || !write
      ? null
      : Evaluator.create({
          objective: phase1Objective(s.decoder.config, { ...objectiveOptions, evaluation: true }),
          compute: config.compute,
          device: config.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' },
          frozen,
        });
  try {
    const select =
      evaluator === null
        ? undefined
        : goldCotSelection(
            config,
            evaluator,
            goldCotBatches(o.heldOut as SequenceParts[], config.select.batchSize, {
              r: spec.compressionRate,
              compressId: s.decoder.config.vocabSize,
              padId: pad,
              ltim: spec.ltim,
            }),
          );
    const { trained, metrics, selection } = await runTraining({
      ...runOptionsOf(config, record),
      objective,
      init: { trainable, frozen },
      size: data.examples.length,
      label: app,
      logger,
      ...(ctx.group !== undefined ? { group: ctx.group } : {}),
      ...(select !== undefined ? { select } : {}),
      collate: (b) =>
        collatePhase1(
          b.indices.map((i) => data.examples[i]!),
          {
            r: spec.compressionRate,
            compressId: s.decoder.config.vocabSize,
            padId: pad,
            ltim: spec.ltim,
            ltsum: spec.ltsum,
            positions: config.positions,
            ...(dropout ? { dropoutSeed: b.rng.int(2 ** 31) } : {}),
          },
        ).feeds,
    });
    if (write) s.save(trained);
    return finishTraining(app, config.out, metrics, { t0, logger, notes: latentNotes(spec), write, ...(selection !== undefined ? { selection } : {}) });
  } finally {
    evaluator?.release();
  }
}

/** The held-out problems as gold-CoT evaluation batches (collatePhase1GoldCot), in order. */
function goldCotBatches(examples: readonly SequenceParts[], batchSize: number, opts: Parameters<typeof collatePhase1GoldCot>[1]): EvalBatch[] {
  const out: EvalBatch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const part = examples.slice(i, i + batchSize);
    out.push({ feeds: collatePhase1GoldCot(part, opts).feeds, examples: part.length });
  }
  return out;
}

/** The phase-1 selection of `config.select` on an evaluator of the step's objective. */
function goldCotSelection(config: AnyPhase1, evaluator: Evaluator, batches: readonly EvalBatch[]): Selection {
  const name = config.select.metric as keyof typeof PHASE1_SELECTIONS;
  const { metric, mode } = PHASE1_SELECTIONS[name];
  return {
    name,
    metric,
    mode,
    examples: config.select.examples,
    evaluate: async (trainable) => {
      const r = await evaluator.evaluate(trainable, batches);
      return { ...r.metrics };
    },
  };
}

/** Step 1: LoRA on the encoder (M0 + compress token); D = M0 frozen. */
export async function runPhase1Encoder(config: Phase1EncoderConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'phase1-encoder';
  const m0 = loadModelDir(config.base, 'phase1 base (M0)', config.allowConfigFields);
  const spec = phase1LatentSpec(app, config, []);
  return runStep(
    app,
    config,
    spec,
    ctx,
    (tokDir) => {
      const enc = resizeForCompress(m0.config, m0.tensors);
      const lora = loraOf(config.lora, 'FEATURE_EXTRACTION', true);
      return {
        step: 'encoder',
        decoder: m0,
        encoder: enc,
        lora: { encoder: lora },
        prepare: () => publishDir(config.out, LAYOUT.baseModel, (tmp) => saveModelDir(tmp, enc.config, enc.tensors, tokDir)),
        save: (trained) => {
          const adapter = stripPrefix(trained, ENCODER_PREFIX);
          publishDir(config.out, LAYOUT.adapter, (tmp) => saveAdapterDir(tmp, lora, adapter, { model: enc.config }, spec));
          publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, enc.config, mergeLora(enc.config, enc.tensors, adapter, lora), tokDir, spec));
        },
      };
    },
    config.base,
    t0,
  );
}

/** Step 2: the merged step-1 encoder frozen, LoRA on the decoder M0. */
export async function runPhase1Decoder(config: Phase1DecoderConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'phase1-decoder';
  const m0 = loadModelDir(config.base, 'phase1 base (M0)', config.allowConfigFields);
  const enc = loadModelDir(config.encoder, 'step-1 encoder', config.allowConfigFields);
  checkEncoderOf(m0.config, enc, 'encoder');
  const spec = phase1LatentSpec(app, config, [config.encoder]);
  return runStep(
    app,
    config,
    spec,
    ctx,
    (tokDir) => {
      const lora = loraOf(config.lora, 'CAUSAL_LM', false);
      return {
        step: 'decoder',
        decoder: m0,
        encoder: enc,
        lora: { decoder: lora },
        save: (trained) => {
          const adapter = stripPrefix(trained, DECODER_PREFIX);
          publishDir(config.out, LAYOUT.adapter, (tmp) => saveAdapterDir(tmp, lora, adapter, { model: m0.config }, spec));
          publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, m0.config, mergeLora(m0.config, m0.tensors, adapter, lora), tokDir, spec));
        },
      };
    },
    config.base,
    t0,
  );
}

/** Step 3: new LoRAs on the step-1 encoder and the step-2 decoder, trained jointly; adapters only. */
export async function runPhase1Union(config: Phase1UnionConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'phase1-union';
  const dec = loadModelDir(config.decoder, 'step-2 decoder', config.allowConfigFields);
  const enc = loadModelDir(config.encoder, 'step-1 encoder', config.allowConfigFields);
  checkEncoderOf(dec.config, enc, 'encoder');
  const spec = phase1LatentSpec(app, config, [config.encoder, config.decoder]);
  return runStep(
    app,
    config,
    spec,
    ctx,
    (tokDir) => {
      const encLora = loraOf(config.lora, 'FEATURE_EXTRACTION', true);
      const decLora = loraOf(config.lora, 'CAUSAL_LM', false);
      return {
        step: 'union',
        decoder: dec,
        encoder: enc,
        lora: { encoder: encLora, decoder: decLora },
        save: (trained) => {
          publishDir(config.out, LAYOUT.adapter, (tmp) => {
            saveAdapterDir(join(tmp, 'encoder_weight'), encLora, stripPrefix(trained, ENCODER_PREFIX), { model: enc.config }, spec);
            saveAdapterDir(join(tmp, 'decoder_weight'), decLora, stripPrefix(trained, DECODER_PREFIX), { model: dec.config }, spec);
          });
        },
      };
    },
    config.decoder,
    t0,
  );
}
