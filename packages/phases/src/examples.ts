// One training example as id parts (spec §2.2: every part tokenised on its own, no special tokens,
// concatenated at the id level), from data Problems / train rows through the tokenizer.
// Leaves out the sequence layouts (each phase's collator builds them with @latent-sft/data).
import { type InputLocation, inputError } from '@latent-sft/core';
import { type Problem, type TrainRow, toTrainRow } from '@latent-sft/data';
import { type Tokenizer, encodeExample } from '@latent-sft/tokenizer';

/** The id parts of one example. `answerIds` is cot_answer followed by the end token (EOS / <|eot_id|>). */
export interface SequenceParts {
  prefixIds: readonly number[];
  thinkIds: readonly number[];
  cotIds: readonly number[];
  endThinkIds: readonly number[];
  answerIds: readonly number[];
}

/** Tokenises a train row (problem, cot, cot_answer) into its parts with the family's prompt. */
export function encodeTrainRow(tok: Tokenizer, row: TrainRow, where: InputLocation = {}): SequenceParts {
  const enc = encodeExample(tok, { problem: row.problem, cot: row.cot, answer: row.cot_answer }, where);
  const part = (key: keyof typeof enc.spans): number[] => enc.ids.slice(...enc.spans[key]);
  const parts: SequenceParts = {
    prefixIds: part('prefix'),
    thinkIds: part('think'),
    cotIds: part('cot'),
    endThinkIds: part('endThink'),
    answerIds: part('answer'),
  };
  if (parts.thinkIds.length === 0 || parts.endThinkIds.length === 0) {
    throw inputError({ ...where, field: 'tokenizer' }, 'the <think> / </think> markers encode to no ids');
  }
  return parts;
}

/** Tokenises a data Problem (its `cot` and the `\boxed{answer}` text, as toTrainRow); a Problem without a CoT is an error. */
export function encodeProblem(tok: Tokenizer, p: Problem): SequenceParts {
  return encodeTrainRow(tok, toTrainRow(p), { field: `${p.dataset}:${p.id}` });
}
