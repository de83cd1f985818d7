// An experiment plan (one task of the Table-1 reproduction): the model, the training data, the settings
// of every phase, the method rows and the evaluation, as one JSON file. `stageGraph` turns it into the
// stages the driver runs (each stage = one phase app run or one eval run, with its dependencies); the
// app configs are validated by the apps' own schemas before anything runs.
import { join } from 'node:path';
import { inputError } from '@latent-sft/core';
import { z } from 'zod';

const trainBlock = z.record(z.string(), z.unknown()).default({}).describe('the app config `train` block');
const loraBlock = z.record(z.string(), z.unknown()).default({}).describe('the app config `lora` block');
const selectBlock = z
  .record(z.string(), z.unknown())
  .default({})
  .describe('the phase-1 app config `select` block (best checkpoint by the held-out gold-CoT evaluation; needs train.checkpointEvery)');
const phase1Stage = z.object({ lora: loraBlock, train: trainBlock, select: selectBlock }).strict();

const latentKind = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('soft-topk'), k: z.number().int().positive().default(10) }),
  z.object({ kind: z.literal('hidden') }),
]);

/** One Latent-SFT row of the table (its own phase-1 → phase-2 chain on top of the CoT-SFT model). */
export const rowSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/)
      .describe('folder name of the row (lowercase, digits, dashes)'),
    label: z.string().min(1).describe('row label in the table, e.g. "Latent-SFT(4)" or "- w/o LTIM (4)"'),
    r: z.number().int().positive().describe('compression rate'),
    latent: latentKind.default({ kind: 'soft-topk', k: 10 }),
    ltim: z.boolean().default(true),
    ltsum: z.boolean().default(true),
  })
  .strict();

export const planSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/)
      .describe('experiment name (run folder name)'),
    description: z.string().default(''),
    device: z.enum(['cpu', 'cuda']).default('cpu'),
    compute: z.enum(['float32', 'float16', 'bfloat16']).default('float32'),
    concurrency: z.number().int().positive().default(2).describe('stages run at the same time (separate processes)'),
    tokenizer: z.enum(['llama-3.2', 'qwen3']).default('llama-3.2'),
    trainingSeeds: z
      .array(z.number().int().min(0))
      .min(1)
      .refine((a) => new Set(a).size === a.length, 'training seeds must differ')
      .optional()
      .describe(
        'train every row (No-CoT, CoT-SFT and each Latent-SFT chain) once per seed t, in seed-<t>/: train.seed = t in every training stage and the ' +
          'from-scratch init seed model.initSeed + t; the data stays the same. Absent: one run, unprefixed, with the seeds of the plan',
      ),
    model: z
      .object({
        hiddenSize: z.number().int().positive(),
        intermediateSize: z.number().int().positive(),
        layers: z.number().int().positive(),
        heads: z.number().int().positive(),
        kvHeads: z.number().int().positive(),
        initSeed: z.number().int().min(0).default(1),
        vocab: z.enum(['full', 'corpus']).default('corpus'),
      })
      .strict(),
    data: z.record(z.string(), z.unknown()).describe('the app config `data` block (training data, shared by every phase)'),
    stages: z
      .object({
        cotSft: z.object({ train: trainBlock }).strict(),
        noCot: z.object({ train: trainBlock }).strict(),
        phase1Encoder: phase1Stage,
        phase1Decoder: phase1Stage,
        phase1Union: phase1Stage,
        cache: z
          .object({ batchSize: z.number().int().positive().default(64) })
          .strict()
          .prefault({}),
        phase2: z
          .object({
            lora: loraBlock,
            train: trainBlock,
            gumbel: z.record(z.string(), z.unknown()).default({ enabled: true }),
            ceWeight: z.number().min(0).default(1),
            klWeight: z.number().min(0).default(1),
          })
          .strict(),
      })
      .strict(),
    rows: z.array(rowSchema).min(1),
    eval: z
      .object({
        datasets: z.array(z.string().min(1)).min(1),
        seeds: z.array(z.number().int().min(0)).min(1).default([1, 2, 3]),
        limit: z.number().int().positive().optional(),
        batchSize: z.number().int().positive().default(256),
        maxLatent: z.number().int().positive().default(64),
        maxNewTokens: z.number().int().positive().default(128),
        temperature: z.number().positive().default(0.6),
        topP: z.number().positive().max(1).default(0.95),
        dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32'),
      })
      .strict(),
  })
  .strict();

export type Plan = z.output<typeof planSchema>;
export type Row = z.output<typeof rowSchema>;

/** The phase apps a stage runs. */
export type StageApp = 'cot-sft' | 'phase1-encoder' | 'phase1-decoder' | 'phase1-union' | 'merge-lora' | 'cache-latents' | 'phase2' | 'eval';

/** One node of the experiment: an app run with its config and the stages it waits for. */
export interface Stage {
  id: string;
  app: StageApp;
  /** Output folder (relative to the experiment folder). */
  out: string;
  deps: string[];
  /** The app config (paths relative to the experiment folder are made absolute by the driver). */
  config: Record<string, unknown>;
  /** Training examples per step × steps (training stages), for examples/s. */
  examples?: number;
}

const steps = (train: Record<string, unknown>): number => (typeof train['steps'] === 'number' ? train['steps'] : 0);
const batch = (train: Record<string, unknown>): number => (typeof train['batchSize'] === 'number' ? train['batchSize'] : 0);

/** The folder prefix of training seed `t` ('' for a plan without trainingSeeds). */
export function seedPrefix(plan: Pick<Plan, 'trainingSeeds'>, t: number | null): string {
  return plan.trainingSeeds === undefined || t === null ? '' : `seed-${t}/`;
}

/** The eval method label of a row under training seed `t` (the plain label without trainingSeeds). */
export function seedLabel(label: string, t: number | null): string {
  return t === null ? label : `${label} [training seed ${t}]`;
}

/**
 * The stages of a plan, in a valid order (dependencies first), with configs rooted at `dir`: with
 * `trainingSeeds`, the whole graph once per seed under seed-<t>/ (see planSchema.trainingSeeds).
 */
export function stageGraph(plan: Plan, dir: string, dataDir?: string): Stage[] {
  const out = (plan.trainingSeeds ?? [null]).flatMap((t) => seedStages(plan, dir, dataDir, t));
  const ids = new Set(out.map((st) => st.id));
  if (ids.size !== out.length) throw new Error('stageGraph: duplicate stage ids (two rows with the same id?)');
  return out;
}

/** The stages of one training seed (`t` null: the plan's own seeds, no prefix). */
function seedStages(plan: Plan, dir: string, dataDir: string | undefined, t: number | null): Stage[] {
  const pre = seedPrefix(plan, t);
  const at = (p: string) => join(dir, p);
  const common = { data: dataDir !== undefined ? { ...plan.data, dataDir } : plan.data, device: plan.device };
  const base = { kind: 'init', ...plan.model, ...(t !== null ? { initSeed: plan.model.initSeed + t } : {}) };
  const out: Stage[] = [];
  const trainStage = (id: string, app: StageApp, deps: string[], config: Record<string, unknown>, train: Record<string, unknown>) => {
    const seeded = t !== null ? { ...train, seed: t } : train;
    out.push({ id, app, out: id, deps, config: { ...config, out: at(id), train: seeded }, examples: steps(seeded) * batch(seeded) });
  };
  trainStage(`${pre}no-cot`, 'cot-sft', [], { ...common, base, tokenizer: plan.tokenizer, variant: 'no-cot', compute: plan.compute }, plan.stages.noCot.train);
  trainStage(`${pre}cot`, 'cot-sft', [], { ...common, base, tokenizer: plan.tokenizer, variant: 'cot', compute: plan.compute }, plan.stages.cotSft.train);
  const m0 = at(`${pre}cot/hf`);
  const s = plan.stages;
  for (const row of plan.rows) {
    const p = (name: string) => `${pre}${row.id}/${name}`;
    // The row's latent spec is declared once, by the phase-1 encoder stage; every later stage reads it
    // from the latent.json of its inputs (@latent-sft/latent).
    const latent = {
      kind: row.latent.kind,
      compressionRate: row.r,
      ...(row.latent.kind === 'soft-topk' ? { topK: row.latent.k } : {}),
      ltim: row.ltim,
      ltsum: row.ltsum,
    };
    const p1 = { ...common, compute: plan.compute };
    trainStage(
      p('phase1-encoder'),
      'phase1-encoder',
      [`${pre}cot`],
      { ...p1, latent, base: m0, lora: s.phase1Encoder.lora, select: s.phase1Encoder.select },
      s.phase1Encoder.train,
    );
    trainStage(
      p('phase1-decoder'),
      'phase1-decoder',
      [`${pre}cot`, p('phase1-encoder')],
      { ...p1, base: m0, encoder: at(`${p('phase1-encoder')}/hf`), lora: s.phase1Decoder.lora, select: s.phase1Decoder.select },
      s.phase1Decoder.train,
    );
    trainStage(
      p('phase1-union'),
      'phase1-union',
      [p('phase1-encoder'), p('phase1-decoder')],
      { ...p1, encoder: at(`${p('phase1-encoder')}/hf`), decoder: at(`${p('phase1-decoder')}/hf`), lora: s.phase1Union.lora, select: s.phase1Union.select },
      s.phase1Union.train,
    );
    out.push({
      id: p('m1'),
      app: 'merge-lora',
      out: p('m1'),
      deps: [p('phase1-decoder'), p('phase1-union')],
      config: { out: at(p('m1')), base: at(`${p('phase1-decoder')}/hf`), adapter: at(`${p('phase1-union')}/lora_adapter/decoder_weight`) },
    });
    // The teachers are computed in the plan's compute dtype, as the training stages run (phase 1 trained the
    // encoder at it); cache-latents itself refuses bfloat16 on the CPU, as ORT's CPU provider lacks its kernels.
    out.push({
      id: p('latents'),
      app: 'cache-latents',
      out: p('latents'),
      deps: [p('phase1-encoder'), p('phase1-union'), p('m1')],
      config: {
        ...common,
        compute: plan.compute,
        out: at(p('latents')),
        encoder: at(`${p('phase1-encoder')}/hf`),
        adapter: at(`${p('phase1-union')}/lora_adapter/encoder_weight`),
        decoder: at(`${p('m1')}/hf`),
        batchSize: s.cache.batchSize,
      },
    });
    trainStage(
      p('phase2'),
      'phase2',
      [p('m1'), p('latents')],
      {
        // Gumbel noise perturbs distributions; a hidden-state cache has none (phase 2 would skip it with a warning).
        ...common,
        model: at(`${p('m1')}/hf`),
        cache: at(p('latents')),
        gumbel: row.latent.kind === 'hidden' ? { ...s.phase2.gumbel, enabled: false } : s.phase2.gumbel,
        ceWeight: s.phase2.ceWeight,
        klWeight: s.phase2.klWeight,
        lora: s.phase2.lora,
        compute: plan.compute,
      },
      s.phase2.train,
    );
  }
  const e = plan.eval;
  const evalStage = (id: string, dep: string, model: string, mode: 'latent' | 'explicit' | 'no-cot', label: string) =>
    out.push({
      id,
      app: 'eval',
      out: id,
      deps: [dep],
      // The keys of `eval run`'s own config (its flags), so the file also works as `pnpm eval run --config`.
      config: {
        model: at(model),
        datasets: e.datasets.join(','),
        mode,
        seeds: e.seeds.join(','),
        ...(e.limit !== undefined ? { limit: e.limit } : {}),
        'max-latent': e.maxLatent,
        'max-new-tokens': e.maxNewTokens,
        'batch-size': e.batchSize,
        device: plan.device,
        dtype: e.dtype,
        temperature: e.temperature,
        'top-p': e.topP,
        out: at(id),
        'method-name': label,
        force: true,
        ...(dataDir !== undefined ? { 'data-dir': dataDir } : {}),
      },
    });
  evalStage(`${pre}eval/no-cot`, `${pre}no-cot`, `${pre}no-cot/hf`, 'no-cot', seedLabel('No-CoT', t));
  evalStage(`${pre}eval/cot`, `${pre}cot`, `${pre}cot/hf`, 'explicit', seedLabel('CoT-SFT', t));
  for (const row of plan.rows) evalStage(`${pre}eval/${row.id}`, `${pre}${row.id}/phase2`, `${pre}${row.id}/phase2/hf`, 'latent', seedLabel(row.label, t));
  return out;
}

/** Ready-to-run order check: every dependency is a known stage listed earlier. */
export function checkOrder(stages: readonly Stage[]): void {
  const seen = new Set<string>();
  for (const st of stages) {
    for (const d of st.deps) if (!seen.has(d)) throw new Error(`stage ${st.id} depends on ${d}, which is not an earlier stage`);
    seen.add(st.id);
  }
}

/**
 * The stages `only` names and everything they depend on, in their order (for `run --only`: e.g. the
 * CoT-SFT gate of a plan, `seed-1/eval/cot`, before paying for the rest). An unknown id is an error.
 */
export function selectStages(stages: readonly Stage[], only: readonly string[]): Stage[] {
  const byId = new Map(stages.map((st) => [st.id, st]));
  const keep = new Set<string>();
  const visit = (id: string): void => {
    if (keep.has(id)) return;
    const st = byId.get(id);
    if (st === undefined) throw new Error(id);
    keep.add(id);
    for (const d of st.deps) visit(d);
  };
  for (const id of only) {
    if (!byId.has(id)) {
      const near = stages.filter((st) => st.id.endsWith(id.split('/').pop() as string)).slice(0, 3);
      throw inputError({ field: 'only' }, `no stage '${id}' in this plan${near.length > 0 ? ` (e.g. ${near.map((st) => st.id).join(', ')})` : ''}`);
    }
    visit(id);
  }
  return stages.filter((st) => keep.has(st.id));
}
