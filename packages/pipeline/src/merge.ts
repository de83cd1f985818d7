// merge-lora: a PEFT adapter merged into the HF checkpoint it was trained on → <out>/hf (+ tokenizer
// files of the base). spec §3.8: the union decoder adapter + the step-2 decoder = M1. The latent spec
// (latent.json) of the adapter and the base, which must agree, is carried into <out>/hf.
import type { ConfigOf } from '@latent-sft/config';
import { DEFAULT_LATENT_SPEC, readLatentSpecs, resolveLatentSpec } from '@latent-sft/latent';
import { configFieldList, loadAdapter, mergeLora } from '@latent-sft/models';
import { type RunContext, recordOf, secondsSince } from './context.js';
import { loadModelDir, saveModelDir } from './model.js';
import { latentNotes } from './phase1.js';
import { LAYOUT, claimOutDir, publishDir, requireDir } from './run-dir.js';
import type { mergeLoraSchema } from './schemas.js';
import { type PhaseSummary, writeSummary } from './summary.js';

export type MergeLoraConfig = ConfigOf<typeof mergeLoraSchema>;

/** Merges `adapter` into `base` and writes <out>/hf. */
export async function runMergeLora(config: MergeLoraConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'merge-lora';
  const base = loadModelDir(config.base, 'merge base', config.allowConfigFields);
  requireDir(config.adapter, 'adapter folder');
  const adapter = loadAdapter(config.adapter, { model: base.config, allowConfigFields: configFieldList(config.allowConfigFields) });
  const specs = readLatentSpecs([config.adapter, config.base]);
  const spec = specs.length > 0 ? resolveLatentSpec({}, specs, { where: `${app} config`, fallback: DEFAULT_LATENT_SPEC }) : undefined;
  const merged = mergeLora(base.config, base.tensors, adapter.tensors, adapter.config);
  const lock = claimOutDir(config.out, recordOf(app, config, ctx), false);
  try {
    publishDir(config.out, LAYOUT.hf, (tmp) => saveModelDir(tmp, base.config, merged, config.base, spec));
  } finally {
    lock.release();
  }
  const summary: PhaseSummary = {
    app,
    out: config.out,
    steps: 0,
    first: {},
    last: {},
    wallSeconds: secondsSince(t0),
    notes: { adapterTensors: adapter.tensors.length, r: adapter.config.r, taskType: adapter.config.taskType, ...(spec !== undefined ? latentNotes(spec) : {}) },
  };
  writeSummary(summary);
  ctx.logger.info({ ...summary }, 'done');
  return summary;
}
