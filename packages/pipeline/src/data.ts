// Training examples from a data config: the multiplication generator or GSM8K train with GSM8k-Aug
// equation CoT (gsm8kAugFromTrain), tokenised with the model folder's tokenizer into id parts. The
// dataset identity (spec + count + sha256 of the ids) goes into the latent-cache manifest so that
// Phase 2 can tell a cache of other data apart.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import { type Problem, generateMultiplication, gsm8kAugFromTrain, shuffled } from '@latent-sft/data';
import { type SequenceParts, encodeProblem } from '@latent-sft/phases';
import type { Tokenizer } from '@latent-sft/tokenizer';
import { tokenizerSha } from './model.js';

/** The data block of the app configs. */
export interface DataSpec {
  readonly source: 'multiplication' | 'gsm8k-aug';
  readonly count: number;
  readonly digitsA: number;
  readonly digitsB: number;
  readonly split: 'train' | 'all';
  readonly seed: number;
  readonly maxTokens: number;
  readonly dataDir?: string | undefined;
}

/** Tokenised examples and what identifies them. */
export interface PreparedData {
  problems: Problem[];
  examples: SequenceParts[];
  /** sha256 of the id parts of every example, in order. */
  fingerprint: string;
  /** The spec without the data folder (which does not change the examples). */
  spec: Omit<DataSpec, 'dataDir'>;
}

const length = (p: SequenceParts): number => p.prefixIds.length + p.thinkIds.length + p.cotIds.length + p.endThinkIds.length + p.answerIds.length;

/** Format tag of the tokenised-examples cache files (bump when SequenceParts or encodeProblem change). */
const EXAMPLES_CACHE_FORMAT = 'latent-sft/examples@1';

/**
 * Folder of the tokenised-examples cache: $LATENT_SFT_CACHE, or ~/.cache/latent-sft/examples; '0'
 * turns it off. Tokenising 80k problems takes ~30 s in transformers.js and every phase of a pipeline
 * needs the same ids, so they are kept per (data spec, tokenizer files, problem texts): content-
 * addressed, written atomically, and a cache file that does not parse is recomputed.
 */
export function examplesCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env['LATENT_SFT_CACHE'];
  if (v === '0') return null;
  return v !== undefined && v !== '' ? join(v, 'examples') : join(homedir(), '.cache', 'latent-sft', 'examples');
}

interface CachedExamples {
  format: string;
  /** Indices into the candidate problems. */
  selected: number[];
  /** Per example: [prefix, think, cot, endThink, answer] ids. */
  parts: number[][][];
}

function readExamplesCache(file: string): CachedExamples | null {
  if (!existsSync(file)) return null;
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as CachedExamples;
    return c.format === EXAMPLES_CACHE_FORMAT && Array.isArray(c.selected) && Array.isArray(c.parts) && c.selected.length === c.parts.length ? c : null;
  } catch {
    return null;
  }
}

/** Loads and tokenises `spec.count` examples (gsm8k-aug: a seeded subset of those within maxTokens). */
export function prepareData(spec: DataSpec, tok: Tokenizer): PreparedData {
  const candidates =
    spec.source === 'multiplication'
      ? generateMultiplication({ count: spec.count, digits: [spec.digitsA, spec.digitsB], seed: spec.seed, split: spec.split })
      : shuffled(
          gsm8kAugFromTrain(spec.dataDir).filter((p) => p.cot !== null && p.cot.length > 0),
          spec.seed,
        );
  const { dataDir: _dir, ...identity } = spec;
  const dir = examplesCacheDir();
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        format: EXAMPLES_CACHE_FORMAT,
        spec: identity,
        tokenizer: tokenizerSha(tok.dir),
        texts: candidates.map((p) => [p.problem, p.cot, p.answer]),
      }),
    )
    .digest('hex');
  const file = dir === null ? null : join(dir, `${key}.json`);
  const cached = file === null ? null : readExamplesCache(file);
  let problems: Problem[];
  let examples: SequenceParts[];
  if (cached !== null) {
    problems = cached.selected.map((i) => candidates[i] as Problem);
    examples = cached.parts.map(([prefixIds, thinkIds, cotIds, endThinkIds, answerIds]) => ({
      prefixIds: prefixIds ?? [],
      thinkIds: thinkIds ?? [],
      cotIds: cotIds ?? [],
      endThinkIds: endThinkIds ?? [],
      answerIds: answerIds ?? [],
    }));
  } else {
    const selected: number[] = [];
    problems = [];
    examples = [];
    for (let i = 0; i < candidates.length && problems.length < spec.count; i++) {
      const p = candidates[i] as Problem;
      const parts = encodeProblem(tok, p);
      if (spec.source !== 'multiplication' && length(parts) > spec.maxTokens) continue;
      selected.push(i);
      problems.push(p);
      examples.push(parts);
    }
    if (file !== null && problems.length === spec.count) {
      try {
        mkdirSync(dirname(file), { recursive: true });
        const parts = examples.map((e) => [e.prefixIds, e.thinkIds, e.cotIds, e.endThinkIds, e.answerIds]);
        writeFileAtomic(file, JSON.stringify({ format: EXAMPLES_CACHE_FORMAT, selected, parts }));
      } catch {
        // A read-only or full cache folder only costs the next run the tokenisation.
      }
    }
  }
  if (problems.length < spec.count) {
    throw inputError({ field: 'data.count' }, `only ${problems.length} gsm8k-aug problems fit data.maxTokens ${spec.maxTokens}, asked for ${spec.count}`);
  }
  const h = createHash('sha256');
  for (const e of examples) h.update(JSON.stringify([e.prefixIds, e.thinkIds, e.cotIds, e.endThinkIds, e.answerIds]));
  const { dataDir: _ignored, ...rest } = spec;
  return { problems, examples, fingerprint: h.digest('hex'), spec: rest };
}

/**
 * `n` held-out examples of a data spec: the next `n` problems of the same stream after the `spec.count`
 * training ones (the generator and the gsm8k-aug shuffle give the same first problems for every count),
 * so they are distinct from every training example and, with multiplication's split 'train', from the
 * test split too.
 */
export function prepareHeldOut(spec: DataSpec, tok: Tokenizer, n: number): SequenceParts[] {
  if (!Number.isSafeInteger(n) || n < 1) throw inputError({ field: 'select.examples' }, `must be an integer >= 1, got ${n}`);
  return prepareData({ ...spec, count: spec.count + n }, tok).examples.slice(spec.count);
}

/**
 * Throws a one-line error (before any graph runs) when the longest example, with one compress token or
 * latent per `r` CoT tokens when `r` is given, needs more positions than the model has.
 */
export function checkFitsModel(examples: readonly SequenceParts[], maxPositions: number, r: number | null, model: string): void {
  let longest = 0;
  for (const e of examples) longest = Math.max(longest, length(e) + (r === null ? 0 : Math.ceil(e.cotIds.length / r)));
  if (longest > maxPositions) {
    throw inputError(
      { field: 'data' },
      `the longest example needs ${longest} positions${r === null ? '' : ` (with its latents, r = ${r})`}, ` +
        `more than the max_position_embeddings ${maxPositions} of ${model}; use shorter problems (data.digitsA/B, data.maxTokens) or a model with more positions`,
    );
  }
}

/** Tokens of the longest example (for logs). */
export function longestExample(examples: readonly SequenceParts[]): number {
  return examples.reduce((m, e) => Math.max(m, length(e)), 0);
}
