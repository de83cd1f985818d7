// Latent-SFT's own row formats (spec §2.1): training rows {problem, cot, cot_answer} and test rows
// {problem, solution, answer}, converted from a Problem and parsed back (with the checks of the
// released `_validate_example`), plus a reader for Latent-SFT-format training JSONL files such as
// the hub's GSM8k-Aug-train.jsonl. Prompt templates and tokenisation belong to @latent-sft/tokenizer.
import { inputError, isUserError, type InputLocation } from '@latent-sft/core';
import type { Problem, SkippedRow } from './datasets.js';
import { parseJsonRecord } from './parsers.js';
import { lineRecords, readTextFile } from './records.js';

/** A training row: `cot` is the explicit reasoning, `cot_answer` the text emitted after `</think>`. */
export interface TrainRow {
  problem: string;
  cot: string;
  cot_answer: string;
}

/** A test row: `solution` is the gold reasoning the Stage-1 evaluators compress ('' when none). */
export interface TestRow {
  problem: string;
  solution: string;
  answer: string;
}

const THINK = '<think>';
const END_THINK = '</think>';

/**
 * The text after `</think>` for a gold answer: `The answer is \boxed{<answer>}.` The answer goes in
 * verbatim (GSM8K commas such as "2,125" kept, LaTeX untouched), so the scorer's last-`boxed`
 * extraction (spec §5.3) returns exactly the gold string.
 */
export function cotAnswerText(answer: string): string {
  return `The answer is \\boxed{${answer}}.`;
}

/** A training row from a Problem with a CoT; a Problem without one (cot null) is an error. */
export function toTrainRow(p: Problem): TrainRow {
  if (p.cot === null) throw inputError({ field: 'cot' }, `${p.dataset} problem ${p.id} has no CoT to train on`);
  return { problem: p.problem, cot: p.cot, cot_answer: cotAnswerText(p.answer) };
}

/**
 * A test row from a Problem. `solution` is the CoT when the dataset has one (so GSM8k-Aug rows carry
 * their equation CoT, as in Latent-SFT's GSM8k-Aug-test.jsonl), else the dataset's solution, else ''.
 */
export function toTestRow(p: Problem): TestRow {
  return { problem: p.problem, solution: p.cot ?? p.solution ?? '', answer: p.answer };
}

/** Removes a leading `<think>` and a trailing `</think>` (and the whitespace next to them). */
export function stripThinkTags(cot: string): string {
  let s = cot.trim();
  if (s.startsWith(THINK)) s = s.slice(THINK.length).trimStart();
  if (s.endsWith(END_THINK)) s = s.slice(0, -END_THINK.length).trimEnd();
  return s;
}

function field(o: Record<string, unknown>, name: string, where: InputLocation, nonEmpty: boolean): string {
  const v = o[name];
  if (v === undefined) throw inputError({ ...where, field: name }, 'missing');
  if (typeof v !== 'string') throw inputError({ ...where, field: name }, `expected a string, got ${typeof v}`);
  if (nonEmpty && v.trim() === '') throw inputError({ ...where, field: name }, 'empty');
  return v;
}

function asObject(row: unknown, where: InputLocation): Record<string, unknown> {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) throw inputError(where, 'expected a JSON object');
  return row as Record<string, unknown>;
}

function noEndThink(s: string, name: string, where: InputLocation): void {
  if (s.includes(END_THINK)) {
    throw inputError({ ...where, field: name }, "contains '</think>', which would be taken for the end of the latent chain");
  }
}

/**
 * Validates a training row: non-empty `problem` and `cot_answer`, a string `cot` (stripped of a
 * leading `<think>` / trailing `</think>`), and no `</think>` inside problem, cot or cot_answer (the
 * masks find `</think>` by first match, spec §11.11; the DeepSeek path rejects it too, spec §2.2).
 */
export function fromTrainRow(row: unknown, where: InputLocation = {}): TrainRow {
  const o = asObject(row, where);
  const problem = field(o, 'problem', where, true);
  const cot = stripThinkTags(field(o, 'cot', where, false));
  const cotAnswer = field(o, 'cot_answer', where, true);
  noEndThink(problem, 'problem', where);
  noEndThink(cot, 'cot', where);
  noEndThink(cotAnswer, 'cot_answer', where);
  return { problem, cot, cot_answer: cotAnswer };
}

/** Validates a test row: non-empty `problem`, `answer` a string or finite number (-> String(n)), optional `solution`. */
export function fromTestRow(row: unknown, where: InputLocation = {}): TestRow {
  const o = asObject(row, where);
  const problem = field(o, 'problem', where, true);
  const a = o['answer'];
  let answer: string;
  if (typeof a === 'number' && Number.isFinite(a)) answer = String(a);
  else if (typeof a === 'string' && a.trim() !== '') answer = a;
  else throw inputError({ ...where, field: 'answer' }, `expected a non-empty string or a number, got ${JSON.stringify(a)}`);
  const solution = o['solution'] === undefined ? '' : field(o, 'solution', where, false);
  return { problem, solution, answer };
}

/** Reads a Latent-SFT-format training JSONL file, validating each row with fromTrainRow. */
export function loadTrainRowsFile(path: string, opts: { skipBadRows?: boolean } = {}): { rows: TrainRow[]; skipped: SkippedRow[] } {
  const rows: TrainRow[] = [];
  const skipped: SkippedRow[] = [];
  for (const rec of lineRecords(readTextFile(path))) {
    const where = { file: path, line: rec.line };
    try {
      rows.push(fromTrainRow(parseJsonRecord(rec.text, where), where));
    } catch (e) {
      if (!opts.skipBadRows || !isUserError(e)) throw e;
      skipped.push({ file: path, line: rec.line, reason: e.message });
    }
  }
  return { rows, skipped };
}
