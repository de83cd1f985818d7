// One eval row from one generated sequence: decoding (ids outside the tokenizer shown as ⟨id⟩), #L
// (latent steps, or the explicit tokens before `</think>`), answer extraction and equivalence, ECR@K over
// the recorded top-k of each latent and the mean latent entropy; and the superposition pictures of rows.
import type { Problem } from '@latent-sft/data';
import { ecrAtK, entropy, matrix } from '@latent-sft/latent';
import { datasetAnswerKind } from './equivalence.js';
import type { ExtractionMode } from './extract.js';
import { judgeOutput } from './score.js';
import type { SuperpositionExample } from './html.js';
import type { EvalMode, EvalRow } from './report.js';

/** What a row needs of one generated sequence (@latent-sft/generate's GenerationResult has these fields). */
export interface GeneratedSequence {
  /** #L in latent mode: latent steps fed. */
  latentCount: number;
  /** Per latent step, the top-k ids (descending) and their probabilities. */
  latentTopK: ReadonlyArray<{ ids: readonly number[]; probs: readonly number[] }>;
  latentStop: 'end' | 'max' | null;
  /** Answer tokens (explicit modes: CoT + answer), without the stop id. */
  outputIds: readonly number[];
  finishReason: 'stop' | 'length';
}

/**
 * What rows need of a tokenizer (@latent-sft/tokenizer's Tokenizer has it): decoding ids, encoding a
 * reference CoT for ECR, the vocabulary size. Structural, so this package stays free of the tokenizer
 * stack and works outside the monorepo.
 */
export interface RowTokenizer {
  readonly vocabSize: number;
  decode(ids: readonly number[]): string;
  encode(text: string): number[];
}

/** The end-of-reasoning marker the explicit #L counts up to (the tokenizer's `</think>`). */
const END_THINK = '</think>';

/** Decodes single ids with a cache (latent top-k tokens repeat a lot); ids the tokenizer lacks show as ⟨id⟩. */
export class TokenText {
  private readonly cache = new Map<number, string>();
  constructor(private readonly tok: RowTokenizer) {}

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

/** Everything one row needs beyond the generation result. */
export interface RowContext {
  tok: RowTokenizer;
  text: TokenText;
  mode: EvalMode;
  seed: number;
  endThinkIds: number[];
  ecrK: number[];
  extraction: ExtractionMode;
}

/**
 * A stored row of problem `p` judged again with today's rules (its `output` against the problem's
 * gold): rows reused from an earlier run are re-scored, so a fixed or changed checker never leaves
 * stale verdicts behind.
 */
export function rejudgeRow(row: EvalRow, p: Problem, extraction: ExtractionMode): EvalRow {
  const kind = datasetAnswerKind(p.dataset);
  const j = judgeOutput(row.output, p.answer, kind, { mode: extraction });
  const lenient = extraction === 'lenient' ? j : judgeOutput(row.output, p.answer, kind, { mode: 'lenient' });
  return { ...row, gold: p.answer, extracted: j.extracted, source: j.source, correct: j.correct, match: j.method, lenientCorrect: lenient.correct };
}

/** Builds the JSONL row of one problem from its generation result. */
export function buildRow(ctx: RowContext, p: Problem, prompt: readonly number[], r: GeneratedSequence): EvalRow {
  const output = ctx.text.text(r.outputIds);
  let latents: number;
  let endThink: boolean | null = null;
  if (ctx.mode === 'latent') latents = r.latentCount;
  else ({ latents, endThink } = explicitReasoningLength(r.outputIds, ctx.endThinkIds, ctx.text));
  // The run's rule decides `correct`; the lenient rule is judged beside it (summaries show both).
  const kind = datasetAnswerKind(p.dataset);
  const j = judgeOutput(output, p.answer, kind, { mode: ctx.extraction });
  const lenient = ctx.extraction === 'lenient' ? j : judgeOutput(output, p.answer, kind, { mode: 'lenient' });
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
    dataset: p.dataset,
    id: p.id,
    index: p.index,
    seed: ctx.seed,
    prompt: ctx.text.text(prompt),
    promptTokens: prompt.length,
    output,
    outputIds: [...r.outputIds],
    latents,
    latentStop: r.latentStop,
    endThink,
    latentSteps: steps,
    latentEntropy,
    finishReason: r.finishReason,
    gold: p.answer,
    extracted: j.extracted,
    source: j.source,
    correct: j.correct,
    match: j.method,
    lenientCorrect: lenient.correct,
    ecr,
  };
}

/** Superposition pictures of the first `n` rows that have latent steps. */
export function superpositionExamples(rows: readonly EvalRow[], n: number, prefix = ''): SuperpositionExample[] {
  return rows
    .filter((r) => r.latentSteps.length > 0)
    .slice(0, n)
    .map((r) => ({
      title: `${prefix}${r.dataset} #${r.id} (seed ${r.seed}): #L = ${r.latents}, ${r.correct ? 'correct' : 'wrong'} (gold ${r.gold}, got ${r.extracted ?? '–'})`,
      problem: r.prompt,
      output: r.output,
      steps: r.latentSteps,
    }));
}
