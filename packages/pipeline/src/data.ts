// Training examples from a data config: the multiplication generator or GSM8K train with GSM8k-Aug
// equation CoT (gsm8kAugFromTrain), tokenised with the model folder's tokenizer into id parts. The
// dataset identity (spec + count + sha256 of the ids) goes into the latent-cache manifest so that
// Phase 2 can tell a cache of other data apart.
import { createHash } from 'node:crypto';
import { inputError } from '@latent-sft/core';
import { type Problem, generateMultiplication, gsm8kAugFromTrain, shuffled } from '@latent-sft/data';
import { type SequenceParts, encodeProblem } from '@latent-sft/phases';
import type { Tokenizer } from '@latent-sft/tokenizer';

/** The data block of the app configs. */
export interface DataSpec {
  readonly source: 'multiplication' | 'gsm8k-aug';
  readonly count: number;
  readonly digitsA: number;
  readonly digitsB: number;
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

const length = (p: SequenceParts): number =>
  p.prefixIds.length + p.thinkIds.length + p.cotIds.length + p.endThinkIds.length + p.answerIds.length;

/** Loads and tokenises `spec.count` examples (gsm8k-aug: a seeded subset of those within maxTokens). */
export function prepareData(spec: DataSpec, tok: Tokenizer): PreparedData {
  let problems: Problem[];
  let examples: SequenceParts[];
  if (spec.source === 'multiplication') {
    problems = generateMultiplication({ count: spec.count, digits: [spec.digitsA, spec.digitsB], seed: spec.seed });
    examples = problems.map((p) => encodeProblem(tok, p));
  } else {
    const all = shuffled(gsm8kAugFromTrain(spec.dataDir).filter((p) => p.cot !== null && p.cot.length > 0), spec.seed);
    problems = [];
    examples = [];
    for (const p of all) {
      if (problems.length === spec.count) break;
      const parts = encodeProblem(tok, p);
      if (length(parts) > spec.maxTokens) continue;
      problems.push(p);
      examples.push(parts);
    }
    if (problems.length < spec.count) {
      throw inputError({ field: 'data.count' }, `only ${problems.length} gsm8k-aug problems fit data.maxTokens ${spec.maxTokens}, asked for ${spec.count}`);
    }
  }
  const h = createHash('sha256');
  for (const e of examples) h.update(JSON.stringify([e.prefixIds, e.thinkIds, e.cotIds, e.endThinkIds, e.answerIds]));
  const { dataDir: _ignored, ...rest } = spec;
  return { problems, examples, fingerprint: h.digest('hex'), spec: rest };
}

/** Tokens of the longest example (for logs). */
export function longestExample(examples: readonly SequenceParts[]): number {
  return examples.reduce((m, e) => Math.max(m, length(e)), 0);
}
