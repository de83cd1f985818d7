// `eval run`: one model × datasets × seeds. Per (dataset, seed) the prompts are generated in blocks,
// each row is decoded, its answer extracted and judged with @latent-sft/eval's checker, ECR@K is
// computed where a reference CoT exists, and the rows are written as JSONL; then summary.json,
// summary.md (Table 1) and report.html. Every file is written atomically.
//
// Prompts (spec §2.2, as the training collators build them: packages/phases collateCotSft puts
// prefix + `<think>` before every target, for the CoT and the no-CoT variant alike): the family's
// prefix and the `<think>` ids, each part tokenised on its own. Latent mode then runs the latent
// phase; explicit and no-cot modes generate CoT (or nothing) + `</think>` + answer as plain tokens.
// Latent feeding follows <model>/latent.json (written by phase 2): kind 'hidden' feeds each latent
// step's own final normed hidden state (the "- Hidden State" ablation), 'soft' or no file the top-k soft
// embedding; the kind is part of the run identity, the summary (latentKind), the notes and the default
// method name.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { configHash } from '@latent-sft/config';
import { type Logger, Rng, createProgress, inputError, writeFileAtomic, writeJsonAtomic } from '@latent-sft/core';
import type { Problem } from '@latent-sft/data';
import {
  type EvalMode, type EvalRow, type EvalSummary, type ExtractionMode, type RunStats, buildSummary, compareAnswers,
  datasetAnswerKind, extractAnswer, renderReportHtml, renderSummariesMarkdown, runStats,
} from '@latent-sft/eval';
import { type GenerateDtype, type GenerationResult, Generator } from '@latent-sft/generate';
import { ecrAtK, entropy, matrix } from '@latent-sft/latent';
import { loadCheckpoint } from '@latent-sft/models';
import { END_THINK, THINK, type Tokenizer, latentEndId, latentMarkerIds, loadTokenizer, padId, promptFor } from '@latent-sft/tokenizer';
import { type EvalDatasetName, loadEvalDataset, parseEvalDataset } from './datasets.js';
import { superpositionExamples } from './report.js';

/** Problems per generate call. Sampling streams are Rng.fromSeed(seed).fork(block).fork(row in block), so
 * results depend on the seed and the problem's position only, not on --batch-size (up to this size). */
export const BLOCK = 256;

/** Resolved options of `eval run`. */
export interface RunOptions {
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
  sampling: { kind: 'greedy' } | { kind: 'top-p'; temperature: number; topP: number };
  latentTopK: number;
  ecrK: number[];
  extraction: ExtractionMode;
  dataDir?: string;
  out: string;
  methodName: string;
  force: boolean;
  /** Superposition pictures in report.html. */
  examples: number;
}

/** Parses a comma-separated list of integers (seeds, K values). */
export function parseIntList(text: string, field: string, min: number): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw inputError({ field }, 'expected a comma-separated list of integers, got nothing');
  const out = parts.map((p) => {
    if (!/^-?\d+$/.test(p) || !Number.isSafeInteger(Number(p)) || Number(p) < min) throw inputError({ field }, `'${p}' is not an integer >= ${min}`);
    return Number(p);
  });
  const dup = out.find((v, i) => out.indexOf(v) !== i);
  if (dup !== undefined) throw inputError({ field }, `${dup} is listed twice`);
  return out;
}

/** Parses --datasets: comma-separated names of file-backed datasets and `multiplication-<A>x<B>` test sets. */
export function parseDatasets(text: string): EvalDatasetName[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw inputError({ field: '--datasets' }, 'name at least one dataset');
  const parsed = names.map((n) => parseEvalDataset(n, '--datasets'));
  const dup = parsed.find((v, i) => parsed.indexOf(v) !== i);
  if (dup !== undefined) throw inputError({ field: '--datasets' }, `'${dup}' is listed twice`);
  return parsed;
}

/** Where the rows of one (dataset, seed) go, relative to --out. */
export function predictionsFile(dataset: string, seed: number): string {
  return join('predictions', `${dataset}.seed-${seed}.jsonl`);
}

/** Decodes single ids with a cache (latent top-k tokens repeat a lot); ids the tokenizer lacks show as ⟨id⟩. */
export class TokenText {
  private readonly cache = new Map<number, string>();
  constructor(private readonly tok: Tokenizer) {}

  token(id: number): string {
    let s = this.cache.get(id);
    if (s === undefined) {
      s = id < this.tok.vocabSize ? this.tok.decode([id]) : `⟨${id}⟩`;
      this.cache.set(id, s);
    }
    return s;
  }

  /** Decodes a sequence; runs of ids outside the tokenizer's vocabulary are shown as ⟨id⟩. */
  text(ids: readonly number[]): string {
    let out = '';
    let run: number[] = [];
    for (const id of ids) {
      if (id < this.tok.vocabSize) run.push(id);
      else {
        if (run.length > 0) out += this.tok.decode(run);
        run = [];
        out += `⟨${id}⟩`;
      }
    }
    return run.length > 0 ? out + this.tok.decode(run) : out;
  }
}

/** Index of the first occurrence of `needle` in `hay`, or -1. */
export function findSubsequence(hay: readonly number[], needle: readonly number[]): number {
  if (needle.length === 0) return -1;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * #L of an explicit output: the tokens before the first `</think>` — found as the trained id sequence
 * (the `</think>` pieces) or, when the model merged the marker into other pieces, as the shortest
 * decoded prefix that contains the text (that token is not counted). No `</think>`: all tokens.
 */
export function explicitReasoningLength(ids: readonly number[], endThinkIds: readonly number[], text: TokenText): { latents: number; endThink: boolean } {
  const at = findSubsequence(ids, endThinkIds);
  if (at >= 0) return { latents: at, endThink: true };
  if (!text.text(ids).includes(END_THINK)) return { latents: ids.length, endThink: false };
  let lo = 1;
  let hi = ids.length; // decode(ids[0..hi)) contains the marker
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (text.text(ids.slice(0, mid)).includes(END_THINK)) hi = mid;
    else lo = mid + 1;
  }
  // The marker ends in token lo-1; count the tokens before the one where it starts.
  let start = lo - 1;
  while (start > 0 && text.text(ids.slice(start, lo)).indexOf(END_THINK) < 0) start -= 1;
  return { latents: start, endThink: true };
}

/** The prompt ids of one problem: the family prefix and `<think>`, each tokenised on its own. */
export function promptIds(tok: Tokenizer, p: Problem): number[] {
  const { prefix } = promptFor(tok, p.problem, { field: `${p.dataset}:${p.id}` });
  return [...tok.encode(prefix), ...tok.encode(THINK)];
}

/** Everything one row needs beyond the generation result. */
interface RowContext {
  tok: Tokenizer;
  text: TokenText;
  mode: EvalMode;
  seed: number;
  endThinkIds: number[];
  ecrK: number[];
  extraction: ExtractionMode;
}

/** Builds the JSONL row of one problem from its generation result. */
export function buildRow(ctx: RowContext, p: Problem, prompt: readonly number[], r: GenerationResult): EvalRow {
  const output = ctx.text.text(r.outputIds);
  let latents: number;
  let endThink: boolean | null = null;
  if (ctx.mode === 'latent') latents = r.latentCount;
  else ({ latents, endThink } = explicitReasoningLength(r.outputIds, ctx.endThinkIds, ctx.text));
  const { answer, source } = extractAnswer(output, { mode: ctx.extraction });
  const cmp = compareAnswers(answer, p.answer, datasetAnswerKind(p.dataset));
  const steps = r.latentTopK.map((s) => ({ ids: [...s.ids], tokens: s.ids.map((id) => ctx.text.token(id)), probs: [...s.probs] }));
  let ecr: Record<string, number> | null = null;
  if (ctx.mode === 'latent' && p.cot !== null && p.cot.trim() !== '' && r.latentCount > 0) {
    const reference = ctx.tok.encode(p.cot);
    ecr = {};
    for (const k of ctx.ecrK) {
      ecr[String(k)] = ecrAtK({ topKIndicesPerLatent: steps.map((s) => s.ids.slice(0, k)), referenceCotIds: reference, mGenerated: r.latentCount });
    }
  }
  let latentEntropy: number | null = null;
  if (steps.length > 0) {
    const k = steps[0]!.probs.length;
    const h = entropy(matrix(Float64Array.from(steps.flatMap((s) => s.probs)), steps.length, k));
    latentEntropy = h.reduce((a, b) => a + b, 0) / h.length;
  }
  return {
    dataset: p.dataset, id: p.id, index: p.index, seed: ctx.seed, prompt: ctx.text.text(prompt), promptTokens: prompt.length, output,
    outputIds: [...r.outputIds], latents, latentStop: r.latentStop, endThink, latentSteps: steps, latentEntropy, finishReason: r.finishReason,
    gold: p.answer, extracted: answer, source, correct: cmp.equal, match: cmp.method, ecr,
  };
}

/** The record in run.json; its hash decides whether --out holds the same run. */
export function runIdentity(o: RunOptions, latent: LatentInfo | null = null): Record<string, unknown> {
  const weights = join(o.model, 'model.safetensors');
  const st = existsSync(weights) ? statSync(weights) : null;
  return {
    ...(latent !== null ? { latentKind: latent.kind } : {}),
    model: resolve(o.model), modelBytes: st?.size ?? null, modelMtimeMs: st?.mtimeMs ?? null,
    tokenizer: resolve(o.tokenizer ?? o.model), datasets: o.datasets, mode: o.mode, seeds: o.seeds, limit: o.limit ?? null,
    maxLatent: o.maxLatent, maxNewTokens: o.maxNewTokens, device: o.device, dtype: o.dtype, sampling: o.sampling,
    latentTopK: o.latentTopK, ecrK: o.ecrK, extraction: o.extraction, dataDir: o.dataDir ? resolve(o.dataDir) : null,
    methodName: o.methodName, block: BLOCK,
  };
}

const OWN_FILES = ['run.json', 'summary.json', 'summary.md', 'report.html', 'predictions'];

/** Checks --out: empty/absent, or the same run (its files are reused), or --force (its files are replaced). */
function prepareOut(o: RunOptions, hash: string, logger: Logger): boolean {
  if (!existsSync(o.out)) return false;
  if (!statSync(o.out).isDirectory()) throw inputError({ field: '--out' }, `${o.out} exists and is not a directory`);
  const entries = readdirSync(o.out).filter((e) => !e.startsWith('.'));
  if (entries.length === 0) return false;
  const runJson = join(o.out, 'run.json');
  let previous: string | null = null;
  if (existsSync(runJson)) {
    try {
      previous = (JSON.parse(readFileSync(runJson, 'utf8')) as { configHash?: string }).configHash ?? null;
    } catch {
      previous = null;
    }
  }
  if (previous === hash) return true;
  if (!o.force) {
    throw inputError({ field: '--out' }, previous === null
      ? `${o.out} is not empty and holds no eval run; choose another --out or pass --force`
      : `${o.out} holds a different eval run (config ${previous.slice(0, 12)} ≠ ${hash.slice(0, 12)}); choose another --out or pass --force to replace it`);
  }
  logger.warn({ out: o.out }, 'replacing the eval run in --out (--force)');
  for (const f of OWN_FILES) rmSync(join(o.out, f), { recursive: true, force: true });
  return false;
}

function readRows(path: string, expected: number): EvalRow[] | null {
  if (!existsSync(path)) return null;
  const rows = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EvalRow);
  return rows.length === expected ? rows : null;
}

/** Runs generation, scoring and reporting; returns the summary. */
export async function runCommand(o: RunOptions, logger: Logger): Promise<EvalSummary> {
  if (o.mode === 'latent' && o.maxLatent < 0) throw inputError({ field: '--max-latent' }, `must be >= 0, got ${o.maxLatent}`);
  for (const k of o.ecrK) {
    if (k > o.latentTopK) throw inputError({ field: '--ecr-k' }, `K = ${k} exceeds --latent-top-k ${o.latentTopK} (only the top-${o.latentTopK} of each latent is recorded)`);
  }
  const latent = o.mode === 'latent' ? readLatentInfo(o.model) : null;
  const latentKind = latent?.kind ?? 'soft';
  const identity = runIdentity(o, latent);
  const hash = configHash(identity);
  const reuse = prepareOut(o, hash, logger);
  writeJsonAtomic(join(o.out, 'run.json'), { app: 'eval run', schemaVersion: 1, configHash: hash, config: identity });

  const ckpt = loadCheckpoint(o.model);
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
    prompts.set(d, ps.map((p) => promptIds(tok, p)));
  }
  const longest = Math.max(...[...prompts.values()].flat().map((p) => p.length));
  const generated = o.mode === 'latent' ? o.maxLatent + markers.endThink.length + o.maxNewTokens : o.maxLatent + o.maxNewTokens;
  const maxPositions = Math.min(ckpt.config.maxPositionEmbeddings, longest + generated + 1);
  if (longest + generated > ckpt.config.maxPositionEmbeddings) {
    throw inputError({ field: '--max-new-tokens' }, `prompt (${longest}) + generation (${generated}) exceed max_position_embeddings ${ckpt.config.maxPositionEmbeddings}`);
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
        const old = reuse ? readRows(file, ps.length) : null;
        if (old !== null) {
          logger.info({ dataset: d, seed, file }, 'reusing the rows of the same run');
          stats.push(runStats(old, { method: o.methodName, dataset: d, seed }));
          rowsFor.set(`${d}/${seed}`, old);
          progress.tick(ps.length);
          continue;
        }
        gen ??= Generator.create({
          weights: o.model, device: o.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' }, dtype: o.dtype, latentTopK: o.latentTopK, maxPositions,
        });
        const ctx: RowContext = { tok, text, mode: o.mode, seed, endThinkIds: markers.endThink, ecrK: o.ecrK, extraction: o.extraction };
        const rows: EvalRow[] = [];
        const t0 = performance.now();
        for (let b = 0; b * BLOCK < ps.length; b++) {
          const block = ids.slice(b * BLOCK, (b + 1) * BLOCK);
          const { results } = await gen.generate({
            prompts: block,
            mode: o.mode === 'latent'
              ? { kind: 'latent', topK: o.latentTopK, maxLatent: o.maxLatent, latentEndIds: markers.endThink, latentEndId: endId, feed: latentKind }
              : { kind: 'explicit' },
            sampling: o.sampling.kind === 'greedy' ? { kind: 'greedy' }
              : { ...o.sampling, seed: Rng.fromSeed(seed).fork(b).nextUint32() },
            maxNewTokens: o.mode === 'latent' ? o.maxNewTokens : o.maxLatent + o.maxNewTokens,
            stopIds, batchSize: o.batchSize,
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

  const summary: EvalSummary & { latentKind?: LatentInfo['kind'] } = {
    ...buildSummary({
      method: o.methodName, mode: o.mode, model: resolve(o.model), datasets: o.datasets, seeds: o.seeds, sampling: o.sampling,
      extraction: o.extraction, notes: runNotes(o, problems, latent),
    }, stats),
    ...(o.mode === 'latent' ? { latentKind } : {}),
  };
  writeJsonAtomic(join(o.out, 'summary.json'), summary);
  writeFileAtomic(join(o.out, 'summary.md'), renderSummariesMarkdown([summary], `Evaluation: ${o.methodName}`));
  const first = rowsFor.get(`${o.datasets[0]}/${o.seeds[0]}`) as EvalRow[];
  writeFileAtomic(join(o.out, 'report.html'), renderReportHtml({
    title: `Evaluation: ${o.methodName}`, summaries: [summary], superpositions: superpositionExamples(first, o.examples),
  }));
  return summary;
}

/** The notes under the tables: definitions and what was not measured. */
export function runNotes(o: RunOptions, problems: ReadonlyMap<EvalDatasetName, readonly Problem[]>, latent: LatentInfo | null = null): string[] {
  const notes: string[] = [];
  if (o.mode === 'latent') {
    const hidden = latent?.kind === 'hidden';
    notes.push(latent === null
      ? 'Latent kind: soft (the model folder has no latent.json): each latent step feeds the top-k soft embedding of its logits.'
      : `Latent kind: ${latent.kind} (latent.json${latent.r !== null ? `, r = ${latent.r}` : ''}): each latent step feeds ${hidden ? "the model's own final normed hidden state (the \"- Hidden State\" ablation); the recorded top-k and ECR come from that step's logits" : 'the top-k soft embedding of its logits'}.`);
    notes.push(`#L = latent steps fed (${hidden ? 'hidden states' : 'soft embeddings'}; the latent phase ends when the argmax is the first \`</think>\` id or after --max-latent ${o.maxLatent}); the answer gets up to ${o.maxNewTokens} tokens.`);
    const withCot = o.datasets.filter((d) => (problems.get(d) ?? []).some((p) => p.cot !== null && p.cot.trim() !== ''));
    notes.push(withCot.length > 0
      ? `ECR@K (K = ${o.ecrK.join(', ')}) = reference-CoT tokens inside the union of the latents' top-K ids / #L, per problem with #L ≥ 1 and a reference CoT (${withCot.join(', ')}); K is limited to the recorded top-${o.latentTopK}, so the paper's K = 50…300 are not available.`
      : 'ECR@K not computed: no dataset here has a reference CoT (gsm8k-aug-test has one).');
  } else {
    notes.push(`#L = generated tokens before the first \`</think>\` (the trained \`</think>\` ids, else the decoded text); the whole output when no \`</think>\` was generated. CoT and answer share a budget of --max-latent + --max-new-tokens = ${o.maxLatent + o.maxNewTokens} tokens.`);
  }
  notes.push('N_eff (effective global parallelism) not computed: it needs several reference reasoning paths per problem and their encoder reference latents (the Multi-Chain GSM8k-Aug set), which are not available here.');
  notes.push(`Prompt = family prefix + \`<think>\` (spec §2.2, as in training); answers extracted with the ${o.extraction} chain and judged with @latent-sft/eval's equivalence.`);
  return notes;
}

/** The default method name: mode (latent: with the kind of latent.json when it is hidden) and model folder. */
export function defaultMethodName(mode: EvalMode, model: string): string {
  const hidden = mode === 'latent' && readLatentInfo(model)?.kind === 'hidden';
  const label = mode === 'latent' ? (hidden ? 'Latent, hidden state' : 'Latent') : mode === 'explicit' ? 'CoT' : 'No-CoT';
  return `${label} (${basename(resolve(model))})`;
}

/** <model>/latent.json, written by phase 2: how latent mode feeds the latents. */
export const LATENT_INFO_FILE = 'latent.json';

/** The contents of latent.json. */
export interface LatentInfo {
  kind: 'soft' | 'hidden';
  /** Compression rate the model was trained with (informational). */
  r: number | null;
}

/** Reads <model>/latent.json; null when absent (= soft, as models from before the file). Bad contents: one-line errors. */
export function readLatentInfo(model: string): LatentInfo | null {
  const file = join(model, LATENT_INFO_FILE);
  if (!existsSync(file)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `not JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw inputError({ file }, 'expected an object {"kind": "soft" | "hidden", "r": …}');
  const o = v as Record<string, unknown>;
  if (o.kind !== 'soft' && o.kind !== 'hidden') throw inputError({ file, field: 'kind' }, `expected "soft" or "hidden", got ${JSON.stringify(o.kind)}`);
  if (o.r !== undefined && !(Number.isSafeInteger(o.r) && (o.r as number) >= 1)) throw inputError({ file, field: 'r' }, `expected a positive integer, got ${JSON.stringify(o.r)}`);
  return { kind: o.kind, r: (o.r as number | undefined) ?? null };
}
