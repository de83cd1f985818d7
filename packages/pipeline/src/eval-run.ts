// `eval run`: one model × datasets × seeds. Per (dataset, seed) the prompts are generated in blocks,
// each row is decoded, its answer extracted and judged with @latent-sft/eval's checker, ECR@K is
// computed where a reference CoT exists (@latent-sft/eval buildRow), and the rows are written as JSONL;
// then summary.json, summary.md (Table 1) and report.html. Every file is written atomically. The output
// folder follows run-dir.ts: phase.json + config.json; the same run (config hash) is continued, its
// finished (dataset, seed) rows reused; a different one is refused unless --force.
//
// Prompts (spec §2.2, as the training collators build them: packages/phases collateCotSft puts
// prefix + `<think>` before every target, for the CoT and the no-CoT variant alike): the family's
// prefix and the `<think>` ids, each part tokenised on its own. Latent mode then runs the latent
// phase; explicit and no-cot modes generate CoT (or nothing) + `</think>` + answer as plain tokens.
// Latent feeding follows the latent spec in <model>/latent.json (@latent-sft/latent): kind 'hidden' feeds
// each latent step's own final normed hidden state (the "- Hidden State" ablation), 'soft-topk' or no file
// the top-k soft embedding, k = the spec's topK (--latent-top-k must match it); the kind is part of the
// run identity, the summary (latentKind), the notes and the default method name.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { configRecord } from '@latent-sft/config';
import { type Logger, Rng, createProgress, inputError, writeFileAtomic, writeJsonAtomic } from '@latent-sft/core';
import type { Problem } from '@latent-sft/data';
import {
  type EvalDatasetName,
  type EvalMode,
  type EvalRow,
  type EvalSummary,
  type ExtractionMode,
  type RowContext,
  type RunStats,
  TokenText,
  buildRow,
  buildSummary,
  loadEvalDataset,
  rejudgeRow,
  renderReportHtml,
  renderSummariesMarkdown,
  runStats,
  superpositionExamples,
} from '@latent-sft/eval';
import { type GenerateDtype, Generator } from '@latent-sft/generate';
import { DEFAULT_LATENT_SPEC, type LatentKindName, type LatentSpec, type LatentSpecFile, readLatentSpec, resolveLatentSpec } from '@latent-sft/latent';
import { configFieldList, loadCheckpoint } from '@latent-sft/models';
import { THINK, type Tokenizer, latentEndId, latentMarkerIds, loadTokenizer, padId, promptFor } from '@latent-sft/tokenizer';
import { claimOrReuseOutDir } from './run-dir.js';

/** The app name in phase.json of an eval run folder. */
export const EVAL_RUN_APP = 'eval';

/** What an eval run writes in its folder (besides phase.json and config.json); --force removes them. run.json: folders from before phase.json. */
const EVAL_RUN_FILES = ['summary.json', 'summary.md', 'report.html', 'predictions', 'run.json'];

/** Problems per generate call. Sampling streams are Rng.fromSeed(seed).fork(block).fork(row in block), so
 * results depend on the seed and the problem's position only, not on --batch-size (up to this size). */
export const BLOCK = 256;

/** Resolved options of `eval run`. */
export interface EvalRunOptions {
  model: string;
  /** Folder with tokenizer.json + tokenizer_config.json (default: the model folder). */
  tokenizer?: string;
  datasets: EvalDatasetName[];
  mode: EvalMode;
  seeds: number[];
  limit?: number;
  maxLatent: number;
  maxNewTokens: number;
  batchSize: number;
  device: 'cpu' | 'cuda';
  dtype: GenerateDtype;
  /** Decode steps replay CUDA graphs (Generator cudaGraph; CUDA only). Default false. */
  cudaGraph?: boolean;
  sampling: { kind: 'greedy' } | { kind: 'top-p'; temperature: number; topP: number };
  /** Width of the latent superposition; default (and must match): the model's latent.json topK. */
  latentTopK?: number;
  ecrK: number[];
  extraction: ExtractionMode;
  dataDir?: string;
  out: string;
  methodName: string;
  force: boolean;
  /** config.json fields to load although unknown or unsupported (--allowConfigFields). */
  allowConfigFields?: string;
  /** Superposition pictures in report.html. */
  examples: number;
  /** Clock of the config record (default: the wall clock). */
  now?: () => Date;
}

/** Where the rows of one (dataset, seed) go, relative to --out. */
export function predictionsFile(dataset: string, seed: number): string {
  return join('predictions', `${dataset}.seed-${seed}.jsonl`);
}

/** The prompt ids of one problem: the family prefix and `<think>`, each tokenised on its own. */
export function promptIds(tok: Tokenizer, p: Problem): number[] {
  const { prefix } = promptFor(tok, p.problem, { field: `${p.dataset}:${p.id}` });
  return [...tok.encode(prefix), ...tok.encode(THINK)];
}

/** The run's identity (config.json; its hash in phase.json decides whether --out holds the same run). */
export function runIdentity(o: EvalRunOptions, latent: LatentSpec | null = null): Record<string, unknown> {
  const weights = join(o.model, 'model.safetensors');
  const st = existsSync(weights) ? statSync(weights) : null;
  return {
    ...(latent !== null ? { latentKind: latent.kind } : {}),
    model: resolve(o.model),
    modelBytes: st?.size ?? null,
    modelMtimeMs: st?.mtimeMs ?? null,
    tokenizer: resolve(o.tokenizer ?? o.model),
    datasets: o.datasets,
    mode: o.mode,
    seeds: o.seeds,
    limit: o.limit ?? null,
    maxLatent: o.maxLatent,
    maxNewTokens: o.maxNewTokens,
    device: o.device,
    dtype: o.dtype,
    sampling: o.sampling,
    latentTopK: latent?.topK ?? o.latentTopK ?? DEFAULT_LATENT_SPEC.topK,
    ecrK: o.ecrK,
    extraction: o.extraction,
    dataDir: o.dataDir ? resolve(o.dataDir) : null,
    methodName: o.methodName,
    block: BLOCK,
  };
}

function readRows(path: string, expected: number): EvalRow[] | null {
  if (!existsSync(path)) return null;
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as EvalRow;
      } catch (e) {
        throw inputError({ file: path, line: i + 1 }, `invalid JSON: ${(e as Error).message}; delete the file to regenerate it`);
      }
    });
  return rows.length === expected ? rows : null;
}

/** Runs generation, scoring and reporting; returns the summary. */
export async function runEval(o: EvalRunOptions, logger: Logger): Promise<EvalSummary> {
  if (o.mode === 'latent' && o.maxLatent < 0) throw inputError({ field: '--max-latent' }, `must be >= 0, got ${o.maxLatent}`);
  const latentFile = o.mode === 'latent' ? evalLatentSpec(o.model, o.latentTopK) : null;
  const latent = latentFile?.spec ?? null;
  const topK = latent?.topK ?? o.latentTopK ?? DEFAULT_LATENT_SPEC.topK;
  for (const k of o.ecrK) {
    if (k > topK) throw inputError({ field: '--ecr-k' }, `K = ${k} exceeds the latent top-k ${topK} (only the top-${topK} of each latent is recorded)`);
  }
  const latentKind = latent?.kind === 'hidden' ? 'hidden' : 'soft';
  const identity = runIdentity(o, latent);
  const record = configRecord(identity, { app: EVAL_RUN_APP, version: 1, createdAt: (o.now ?? (() => new Date()))() });
  const reuse = claimOrReuseOutDir(o.out, record, { force: o.force, ownFiles: EVAL_RUN_FILES, logger, legacyApp: 'eval run' });

  const ckpt = loadCheckpoint(o.model, { allowConfigFields: configFieldList(o.allowConfigFields ?? '') });
  const tok = await loadTokenizer(resolve(o.tokenizer ?? o.model));
  if (tok.vocabSize > ckpt.config.vocabSize) {
    throw inputError({ field: '--tokenizer' }, `the tokenizer has ${tok.vocabSize} ids but the model's vocab_size is ${ckpt.config.vocabSize}`);
  }
  const markers = latentMarkerIds(tok);
  const endId = latentEndId(tok);
  const eos = Array.isArray(ckpt.config.eosTokenId) ? ckpt.config.eosTokenId : [ckpt.config.eosTokenId];
  const stopIds = [...new Set([tok.eosId, padId(tok), ...eos.filter((id) => id < tok.vocabSize)])];
  const text = new TokenText(tok);

  const problems = new Map<EvalDatasetName, Problem[]>();
  const prompts = new Map<EvalDatasetName, number[][]>();
  for (const d of o.datasets) {
    const all = loadEvalDataset(d, o.dataDir !== undefined ? { dataDir: o.dataDir } : {});
    const ps = o.limit !== undefined ? all.slice(0, o.limit) : all;
    if (ps.length === 0) throw inputError({ field: '--datasets' }, `${d} has no problems`);
    problems.set(d, ps);
    prompts.set(
      d,
      ps.map((p) => promptIds(tok, p)),
    );
  }
  const longest = Math.max(...[...prompts.values()].flat().map((p) => p.length));
  const generated = o.mode === 'latent' ? o.maxLatent + markers.endThink.length + o.maxNewTokens : o.maxLatent + o.maxNewTokens;
  const maxPositions = Math.min(ckpt.config.maxPositionEmbeddings, longest + generated + 1);
  if (longest + generated > ckpt.config.maxPositionEmbeddings) {
    throw inputError(
      { field: '--max-new-tokens' },
      `prompt (${longest}) + generation (${generated}) exceed max_position_embeddings ${ckpt.config.maxPositionEmbeddings}`,
    );
  }

  const total = o.datasets.reduce((s, d) => s + (problems.get(d) as Problem[]).length, 0) * o.seeds.length;
  const progress = createProgress({ total, label: `eval ${o.methodName}`, logger });
  let gen: Generator | null = null;
  const stats: RunStats[] = [];
  const rowsFor = new Map<string, EvalRow[]>();
  try {
    for (const d of o.datasets) {
      const ps = problems.get(d) as Problem[];
      const ids = prompts.get(d) as number[][];
      for (const seed of o.seeds) {
        const file = join(o.out, predictionsFile(d, seed));
        const stored = reuse ? readRows(file, ps.length) : null;
        if (stored !== null) {
          // Reused generations are judged again with today's rules; changed verdicts are written back.
          const old = stored.map((r, i) => rejudgeRow(r, ps[i] as Problem, o.extraction));
          const changed = old.filter((r, i) => r.correct !== stored[i]?.correct || r.lenientCorrect !== stored[i]?.lenientCorrect).length;
          if (changed > 0) writeFileAtomic(file, old.map((r) => `${JSON.stringify(r)}\n`).join(''));
          logger.info({ dataset: d, seed, file, rescoredChanged: changed }, 'reusing the generations of the same run (re-scored)');
          stats.push(runStats(old, { method: o.methodName, dataset: d, seed }));
          rowsFor.set(`${d}/${seed}`, old);
          progress.tick(ps.length);
          continue;
        }
        gen ??= Generator.create({
          weights: o.model,
          device: o.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' },
          dtype: o.dtype,
          ...(o.cudaGraph === true ? { cudaGraph: true } : {}),
          latentTopK: topK,
          maxPositions,
        });
        const ctx: RowContext = { tok, text, mode: o.mode, seed, endThinkIds: markers.endThink, ecrK: o.ecrK, extraction: o.extraction };
        const rows: EvalRow[] = [];
        const t0 = performance.now();
        for (let b = 0; b * BLOCK < ps.length; b++) {
          const block = ids.slice(b * BLOCK, (b + 1) * BLOCK);
          const { results } = await gen.generate({
            prompts: block,
            mode:
              o.mode === 'latent'
                ? { kind: 'latent', topK, maxLatent: o.maxLatent, latentEndIds: markers.endThink, latentEndId: endId, feed: latentKind }
                : { kind: 'explicit' },
            sampling: o.sampling.kind === 'greedy' ? { kind: 'greedy' } : { ...o.sampling, seed: Rng.fromSeed(seed).fork(b).nextUint32() },
            maxNewTokens: o.mode === 'latent' ? o.maxNewTokens : o.maxLatent + o.maxNewTokens,
            stopIds,
            batchSize: o.batchSize,
          });
          results.forEach((r, i) => rows.push(buildRow(ctx, ps[b * BLOCK + i] as Problem, block[i] as number[], r)));
          progress.tick(block.length, { dataset: d, seed, acc: rows.filter((r) => r.correct).length / rows.length });
        }
        const generateMs = performance.now() - t0;
        writeFileAtomic(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
        const st = runStats(rows, { method: o.methodName, dataset: d, seed, generateMs });
        logger.info({ dataset: d, seed, accuracy: st.accuracy, meanLatents: st.latents.mean, ms: Math.round(generateMs) }, 'run finished');
        stats.push(st);
        rowsFor.set(`${d}/${seed}`, rows);
      }
    }
  } finally {
    gen?.release();
  }
  progress.done();

  const summary: EvalSummary & { latentKind?: LatentKindName } = {
    ...buildSummary(
      {
        method: o.methodName,
        mode: o.mode,
        model: resolve(o.model),
        datasets: o.datasets,
        seeds: o.seeds,
        sampling: o.sampling,
        extraction: o.extraction,
        notes: runNotes(o, problems, latentFile?.file ?? null),
      },
      stats,
    ),
    ...(latent !== null ? { latentKind: latent.kind } : {}),
  };
  writeJsonAtomic(join(o.out, 'summary.json'), summary);
  writeFileAtomic(join(o.out, 'summary.md'), renderSummariesMarkdown([summary], `Evaluation: ${o.methodName}`));
  const first = rowsFor.get(`${o.datasets[0]}/${o.seeds[0]}`) as EvalRow[];
  writeFileAtomic(
    join(o.out, 'report.html'),
    renderReportHtml({
      title: `Evaluation: ${o.methodName}`,
      summaries: [summary],
      superpositions: superpositionExamples(first, o.examples),
    }),
  );
  return summary;
}

/** The notes under the tables: definitions and what was not measured. */
export function runNotes(o: EvalRunOptions, problems: ReadonlyMap<EvalDatasetName, readonly Problem[]>, latent: LatentSpecFile | null = null): string[] {
  const notes: string[] = [];
  const topK = latent?.spec.topK ?? o.latentTopK ?? DEFAULT_LATENT_SPEC.topK;
  if (o.mode === 'latent') {
    const hidden = latent?.spec.kind === 'hidden';
    const s = latent?.spec;
    notes.push(
      latent === null || s === undefined
        ? `Latent kind: soft-topk (the model folder has no latent.json): each latent step feeds the top-${topK} soft embedding of its logits.`
        : `Latent kind: ${s.kind} (latent.json${latent.legacy ? ', legacy {kind, r} form: top-k 10, LTIM and LTSuM assumed' : ''}; compression rate ${s.compressionRate}, top-k ${s.topK}): each latent step feeds ${hidden ? 'the model\'s own final normed hidden state (the "- Hidden State" ablation); the recorded top-k and ECR come from that step\'s logits' : 'the top-k soft embedding of its logits'}.`,
    );
    notes.push(
      `#L = latent steps fed (${hidden ? 'hidden states' : 'soft embeddings'}; the latent phase ends when the argmax is the first \`</think>\` id or after --max-latent ${o.maxLatent}); the answer gets up to ${o.maxNewTokens} tokens.`,
    );
    const withCot = o.datasets.filter((d) => (problems.get(d) ?? []).some((p) => p.cot !== null && p.cot.trim() !== ''));
    notes.push(
      withCot.length > 0
        ? `ECR@K (K = ${o.ecrK.join(', ')}) = reference-CoT tokens inside the union of the latents' top-K ids / #L, per problem with #L ≥ 1 and a reference CoT (${withCot.join(', ')}); K is limited to the recorded top-${topK}, so the paper's K = 50…300 are not available.`
        : 'ECR@K not computed: no dataset here has a reference CoT (gsm8k-aug-test has one).',
    );
  } else {
    notes.push(
      `#L = generated tokens before the first \`</think>\` (the trained \`</think>\` ids, else the decoded text); the whole output when no \`</think>\` was generated. CoT and answer share a budget of --max-latent + --max-new-tokens = ${o.maxLatent + o.maxNewTokens} tokens.`,
    );
  }
  notes.push(
    'N_eff (effective global parallelism) not computed: it needs several reference reasoning paths per problem and their encoder reference latents (the Multi-Chain GSM8k-Aug set), which are not available here.',
  );
  notes.push(
    `Prompt = family prefix + \`<think>\` (spec §2.2, as in training); answers extracted with the ${o.extraction} chain and judged with @latent-sft/eval's equivalence.`,
  );
  return notes;
}

/** The default method name: mode (latent: with the kind of latent.json when it is hidden) and model folder. */
export function defaultMethodName(mode: EvalMode, model: string): string {
  const hidden = mode === 'latent' && readLatentSpec(model)?.spec.kind === 'hidden';
  const label = mode === 'latent' ? (hidden ? 'Latent, hidden state' : 'Latent') : mode === 'explicit' ? 'CoT' : 'No-CoT';
  return `${label} (${basename(resolve(model))})`;
}

/**
 * The latent spec latent mode runs with: <model>/latent.json (@latent-sft/latent; legacy {kind, r} files
 * read with their defaults), and the top-k of --latent-top-k, which must match it when both are given;
 * no file: the defaults (soft-topk, top-10), as models from before the file.
 */
export function evalLatentSpec(model: string, latentTopK: number | undefined): { spec: LatentSpec; file: LatentSpecFile | null } {
  const file = readLatentSpec(model);
  const spec = resolveLatentSpec(latentTopK !== undefined ? { topK: latentTopK } : {}, file !== null ? [file] : [], {
    where: 'eval run --latent-top-k',
    fallback: DEFAULT_LATENT_SPEC,
  });
  if (spec.kind === 'soft-full')
    throw inputError(
      { file: file?.file ?? model, field: 'kind' },
      'latent generation feeds top-k soft embeddings or hidden states; soft-full models are not supported',
    );
  return { spec, file };
}
