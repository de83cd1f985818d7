// Scoring a predictions file against a dataset: match each prediction to its problem by `id` (or
// `index`), judge it under two rules and report per-problem verdicts plus accuracy. The `official` rule
// (the default, used for reported numbers) is Latent-SFT's parser + grader (extractOfficial +
// officialCompare); the `lenient` rule is boxed → #### → last number judged with the dataset's answer
// kind. Both are always computed, so summaries show them side by side. Bad prediction lines are
// one-line errors (file:line: field).
import { readFileSync } from 'node:fs';
import { inputError } from '@latent-sft/core';
import type { DatasetName, Problem } from '@latent-sft/data';
import { compareAnswers, datasetAnswerKind, type AnswerKind, type MatchMethod } from './equivalence.js';
import { extractAnswer, extractionChain, type AnswerSource, type ExtractOptions } from './extract.js';
import { officialCompare } from './official.js';

/** One rule's judgement of an output: the answer it found, where, and whether it matches the gold. */
export interface Judgement {
  /** The extracted answer, or null when the chain found none. */
  extracted: string | null;
  source: AnswerSource | null;
  correct: boolean;
  /** Which rule decided (string, number, choice, structure, symbolic, none). */
  method: MatchMethod;
}

/**
 * Judges one model output under an extraction chain: the `official` chain is graded with the official
 * grader (officialCompare, kind-independent as in the reference), any other chain with the dataset's
 * answer kind (compareAnswers). Default: official.
 */
export function judgeOutput(output: string, gold: string, kind: AnswerKind, extraction: ExtractOptions = {}): Judgement {
  const { answer, source } = extractAnswer(output, extraction);
  const chain = extractionChain(extraction);
  const c = chain.length === 1 && chain[0] === 'official' ? officialCompare(answer, gold) : compareAnswers(answer, gold, kind);
  return { extracted: answer, source, correct: c.equal, method: c.method };
}

/** Both reported rules for one output: `official` (the headline number) and `lenient` (shown beside it). */
export function judgeBoth(output: string, gold: string, kind: AnswerKind): { official: Judgement; lenient: Judgement } {
  return { official: judgeOutput(output, gold, kind, { mode: 'official' }), lenient: judgeOutput(output, gold, kind, { mode: 'lenient' }) };
}

/** One model output; it names its problem by `id` (preferred) or 0-based `index`. */
export interface Prediction {
  id?: string;
  index?: number;
  prediction: string;
  /** Latent (or reasoning) tokens the model generated for this problem, for the #L column. */
  latents?: number;
  /** 1-based line in the predictions file (for error messages). */
  line?: number;
}

/** The judgement of one prediction. */
export interface Verdict {
  id: string;
  index: number;
  gold: string;
  /** The answer found in the prediction by the scoring chain, or null when it found none. */
  extracted: string | null;
  /** Which source of the chain produced `extracted`. */
  source: AnswerSource | null;
  correct: boolean;
  /** Which rule decided (string, number, choice, structure, symbolic, none). */
  method: MatchMethod;
  /** The same prediction under the lenient rule (boxed → #### → last number, judged by answer kind). */
  lenient: Judgement;
  latents?: number;
}

export interface ScoreInput {
  dataset: DatasetName;
  problems: readonly Problem[];
  predictions: readonly Prediction[];
  /** The predictions file, named in error messages. */
  file?: string;
  /** Extraction chain of the main verdict (default: official, Latent-SFT's parser + grader). */
  extraction?: ExtractOptions;
}

export interface ScoreResult {
  dataset: DatasetName;
  kind: AnswerKind;
  /** Verdicts in problem order. */
  verdicts: Verdict[];
  correct: number;
  /** Number of predictions scored. */
  scored: number;
  /** Problems in the dataset (scored may be fewer: a partial run). */
  problems: number;
  /** correct / scored (0 when nothing was scored). */
  accuracy: number;
  /** Correct predictions and accuracy under the lenient rule, reported beside the main one. */
  lenientCorrect: number;
  lenientAccuracy: number;
  /** Mean of `latents` over the predictions, or null when no prediction carries it. */
  meanLatents: number | null;
}

/** Scores predictions against problems; throws a one-line inputError for unknown or duplicate problems. */
export function scorePredictions(input: ScoreInput): ScoreResult {
  const kind = datasetAnswerKind(input.dataset);
  const byId = new Map<string, Problem>();
  for (const p of input.problems) byId.set(p.id, p);
  const byIndex = new Map<number, Problem>();
  for (const p of input.problems) byIndex.set(p.index, p);
  const seen = new Map<number, number | undefined>();
  const verdicts: Verdict[] = [];
  const latents: number[] = [];
  input.predictions.forEach((pred, k) => {
    const line = pred.line ?? k + 1;
    const where = (field: string) => ({ ...(input.file !== undefined ? { file: input.file } : {}), line, field });
    let problem: Problem | undefined;
    if (pred.id !== undefined) {
      problem = byId.get(pred.id);
      if (!problem) throw inputError(where('id'), `no problem with id '${pred.id}' in ${input.dataset}`);
      if (pred.index !== undefined && pred.index !== problem.index) {
        throw inputError(where('index'), `index ${pred.index} disagrees with id '${pred.id}' (index ${problem.index})`);
      }
    } else if (pred.index !== undefined) {
      problem = byIndex.get(pred.index);
      if (!problem) throw inputError(where('index'), `no problem with index ${pred.index} in ${input.dataset}`);
    } else {
      throw inputError(where('id'), 'a prediction needs an id or an index');
    }
    if (typeof pred.prediction !== 'string') throw inputError(where('prediction'), 'missing prediction text');
    if (seen.has(problem.index)) {
      const first = seen.get(problem.index);
      throw inputError(
        where(pred.id !== undefined ? 'id' : 'index'),
        `duplicate prediction for problem '${problem.id}'${first !== undefined ? ` (first at line ${first})` : ''}`,
      );
    }
    seen.set(problem.index, line);
    const main = judgeOutput(pred.prediction, problem.answer, kind, input.extraction);
    const v: Verdict = {
      id: problem.id,
      index: problem.index,
      gold: problem.answer,
      ...main,
      lenient: judgeOutput(pred.prediction, problem.answer, kind, { mode: 'lenient' }),
    };
    if (pred.latents !== undefined) {
      v.latents = pred.latents;
      latents.push(pred.latents);
    }
    verdicts.push(v);
  });
  verdicts.sort((a, b) => a.index - b.index);
  const correct = verdicts.filter((v) => v.correct).length;
  const lenientCorrect = verdicts.filter((v) => v.lenient.correct).length;
  const frac = (k: number) => (verdicts.length > 0 ? k / verdicts.length : 0);
  return {
    dataset: input.dataset,
    kind,
    verdicts,
    correct,
    scored: verdicts.length,
    problems: input.problems.length,
    accuracy: frac(correct),
    lenientCorrect,
    lenientAccuracy: frac(lenientCorrect),
    meanLatents: latents.length > 0 ? latents.reduce((s, x) => s + x, 0) / latents.length : null,
  };
}

/** Parses predictions JSONL text: one object per line with `id` or `index`, `prediction`, optional `latents`. */
export function parsePredictionsJsonl(text: string, file: string): Prediction[] {
  const out: Prediction[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw inputError({ file, line }, `invalid JSON: ${(e as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw inputError({ file, line }, 'expected a JSON object');
    }
    const o = value as Record<string, unknown>;
    const p: Prediction = { prediction: '', line };
    if (o.id !== undefined && o.id !== null) {
      if (typeof o.id !== 'string' && !(typeof o.id === 'number' && Number.isInteger(o.id))) {
        throw inputError({ file, line, field: 'id' }, `expected a string, got ${JSON.stringify(o.id)}`);
      }
      p.id = String(o.id);
    }
    if (o.index !== undefined && o.index !== null) {
      if (typeof o.index !== 'number' || !Number.isInteger(o.index) || o.index < 0) {
        throw inputError({ file, line, field: 'index' }, `expected a non-negative integer, got ${JSON.stringify(o.index)}`);
      }
      p.index = o.index;
    }
    if (p.id === undefined && p.index === undefined) {
      throw inputError({ file, line, field: 'id' }, 'a prediction needs an id or an index');
    }
    if (typeof o.prediction !== 'string') {
      throw inputError({ file, line, field: 'prediction' }, o.prediction === undefined ? 'missing' : `expected a string, got ${JSON.stringify(o.prediction)}`);
    }
    p.prediction = o.prediction;
    if (o.latents !== undefined && o.latents !== null) {
      if (typeof o.latents !== 'number' || !Number.isFinite(o.latents) || o.latents < 0) {
        throw inputError({ file, line, field: 'latents' }, `expected a non-negative number, got ${JSON.stringify(o.latents)}`);
      }
      p.latents = o.latents;
    }
    out.push(p);
  });
  return out;
}

/** Reads a predictions JSONL file (see parsePredictionsJsonl). */
export function readPredictionsJsonl(path: string): Prediction[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw inputError({ file: path }, `cannot read predictions: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parsePredictionsJsonl(text, path);
}

/** Verdicts as JSONL text (one object per line, final newline). */
export function verdictsToJsonl(verdicts: readonly Verdict[]): string {
  return verdicts.map((v) => JSON.stringify(v)).join('\n') + (verdicts.length > 0 ? '\n' : '');
}
