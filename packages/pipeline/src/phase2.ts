// Phase 2 (spec §4): a new LoRA on M1 (the merged union decoder) trained with CE(</think>, answer) +
// KL(cached teacher ‖ student at the previous position), the teacher's top-k soft embeddings fed at the
// latent slots; optional Gumbel perturbation of the teachers, fresh per epoch (§4.3). Saves
// lora_adapter/ and hf/ = M2 (adapter merged, + tokenizer files). The cache must match the model's
// tokenizer and this data (readLatentCache names the first mismatch).
// Hidden caches (the "- Hidden State" ablation; --latent.kind auto picks the kind the manifest records,
// an explicit kind must match it): the teacher states are fed at the latent slots and the KL becomes
// the hidden-state MSE (phases.phase2Objective, latent 'hidden'); Gumbel noise does not apply and is
// skipped with a warning. The latent spec comes from the latent.json of the model (M1) and of the cache
// (both written upstream; they must agree, and the config's latent block must match them; caches and
// models from before latent.json: the spec the manifest implies) and is checked against the manifest;
// hf/latent.json (the full spec) tells inference (eval run --mode latent) how to feed the latents.
import { join } from 'node:path';
import type { ConfigOf } from '@latent-sft/config';
import { inputError } from '@latent-sft/core';
import { DEFAULT_LATENT_SPEC, readLatentSpecs, resolveLatentSpec } from '@latent-sft/latent';
import { mergeLora } from '@latent-sft/models';
import { type Phase2Example, type Phase2Teacher, collatePhase2, isHiddenTeacher, perturbTeacher, phase2Objective } from '@latent-sft/phases';
import { readMetrics } from '@latent-sft/train';
import { latentEndId, padId } from '@latent-sft/tokenizer';
import { CACHE_MANIFEST, cacheLatentKind, checkCacheSpec, manifestLatentSpec, readLatentCache } from './cache.js';
import { type RunContext, isWriter, recordOf } from './context.js';
import { checkFitsModel, prepareData } from './data.js';
import { latentNotes } from './phase1.js';
import { initLora, loadModelDir, loadModelTokenizer, loraOf, saveAdapterDir, saveModelDir, toHost, tokenizerSha } from './model.js';
import { LAYOUT, claimOutDir, publishDir } from './run-dir.js';
import { frozenDtypeFor, runOptionsOf, runTraining } from './runner.js';
import type { phase2Schema } from './schemas.js';
import { type PhaseSummary, finishTraining } from './summary.js';

export type Phase2Config = ConfigOf<typeof phase2Schema>;

/** Trains Phase 2 and writes M2 to <out>/hf. */
export async function runPhase2(config: Phase2Config, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'phase2';
  const logger = ctx.logger;
  const m1 = loadModelDir(config.model, 'phase2 model (M1)', config.allowConfigFields);
  const tok = await loadModelTokenizer(config.model, 'the phase2 model folder');
  const data = prepareData(config.data, tok);
  const recorded = readLatentSpecs([config.model, config.cache]);
  const declared =
    recorded.length > 0 ? resolveLatentSpec(config.latent, recorded, { where: 'phase2 config', prefix: 'latent.', fallback: DEFAULT_LATENT_SPEC }) : null;
  const wanted = declared?.kind ?? config.latent.kind;
  if (wanted === 'soft-full') throw inputError({ field: 'latent.kind' }, 'phase 2 trains on cached soft-topk or hidden latents, not soft-full');
  const { teachers, manifest } = readLatentCache(config.cache, {
    vocabSize: m1.config.vocabSize,
    tokenizer: { sha256: tokenizerSha(config.model), family: tok.family, vocabSize: tok.vocabSize },
    dataset: { spec: data.spec, count: data.examples.length, fingerprint: data.fingerprint },
    hiddenSize: m1.config.hiddenSize,
    ...(wanted !== undefined ? { latent: wanted } : {}),
  });
  const spec =
    declared ??
    resolveLatentSpec(config.latent, [{ spec: manifestLatentSpec(manifest), file: join(config.cache, CACHE_MANIFEST), legacy: true }], {
      where: 'phase2 config',
      prefix: 'latent.',
      fallback: DEFAULT_LATENT_SPEC,
    });
  checkCacheSpec(config.cache, manifest, spec);
  const kind = cacheLatentKind(manifest);
  const hidden = kind === 'hidden';
  checkFitsModel(data.examples, m1.config.maxPositionEmbeddings, manifest.r, config.model);
  const record = recordOf(app, config, ctx);
  const write = isWriter(ctx);
  const lock = write ? claimOutDir(config.out, record, config.resume) : null;
  try {
    logger.info({ examples: teachers.length, latent: kind, r: manifest.r, k: manifest.k }, 'cache loaded');
    const gumbel = config.gumbel.enabled && !hidden;
    if (config.gumbel.enabled && hidden) logger.warn({ latent: kind }, 'Gumbel perturbation does not apply to hidden-state latents: skipped');
    const examples: Phase2Example<Phase2Teacher>[] = data.examples.map((e, i) => ({
      prefixIds: e.prefixIds,
      thinkIds: e.thinkIds,
      endThinkIds: e.endThinkIds,
      answerIds: e.answerIds,
      teacher: teachers[i]!,
    }));
    const lora = loraOf(config.lora, 'CAUSAL_LM', false);
    const objective = phase2Objective(m1.config, {
      latent: kind,
      lora,
      ceWeight: config.ceWeight,
      klWeight: config.klWeight,
      compute: config.compute,
      ...(frozenDtypeFor(config.compute) !== undefined ? { frozenDtype: frozenDtypeFor(config.compute) } : {}),
    });
    const pad = padId(tok);
    const endId = latentEndId(tok);
    let guardFailures = 0;
    const { trained, metrics } = await runTraining({
      ...runOptionsOf(config, record),
      objective,
      init: { trainable: toHost(initLora(m1.config, lora, config.train.seed)), frozen: m1.readAs(objective.frozen) },
      size: examples.length,
      label: app,
      logger,
      ...(ctx.group !== undefined ? { group: ctx.group } : {}),
      collate: (b) => {
        const batch = b.indices.map((i) => {
          const ex = examples[i]!;
          if (!gumbel || isHiddenTeacher(ex.teacher)) return ex;
          const p = perturbTeacher(ex.teacher, {
            seed: config.train.seed,
            epoch: b.epoch,
            index: i,
            latentEndId: endId,
            scale: config.gumbel.scale,
            temperature: config.gumbel.temperature,
          });
          if (p.guardFailed) guardFailures += 1;
          return { ...ex, teacher: p.teacher };
        });
        return collatePhase2(batch, {
          padId: pad,
          latent: kind,
          vocabSize: m1.config.vocabSize,
          hiddenSize: m1.config.hiddenSize,
          ...(lora.dropout > 0 ? { dropoutSeed: b.rng.int(2 ** 31) } : {}),
        }).feeds;
      },
    });
    if (guardFailures > 0) logger.warn({ guardFailures }, 'Gumbel draws kept although their argmax was the latent-end id (100 redraws each)');
    if (write) {
      publishDir(config.out, LAYOUT.adapter, (tmp) => saveAdapterDir(tmp, lora, trained, { model: m1.config }, spec));
      publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, m1.config, mergeLora(m1.config, m1.tensors, trained, lora), config.model, spec));
    }
    const first: Record<string, number> = {};
    const last: Record<string, number> = {};
    if (hidden && write) {
      // The summary's metric keys are loss, ce, kl: add the MSE over the same windows.
      const recs = readMetrics(join(config.out, LAYOUT.metrics));
      const mean = (rs: typeof recs): number => rs.reduce((a, r) => a + (r.mse as number), 0) / rs.length;
      if (recs.length > 0 && recs.every((r) => typeof r.mse === 'number')) {
        first.mse = mean(recs.slice(0, metrics.window));
        last.mse = mean(recs.slice(-metrics.window));
      }
    }
    return finishTraining(app, config.out, metrics, { t0, logger, notes: latentNotes(spec), first, last, write });
  } finally {
    lock?.release();
  }
}
