// One parser per dataset file layout: a raw record (JSON value or text line) -> the dataset-specific
// fields of a Problem, following the "Gold answer" rules of data/MANIFEST.md. Every check failure is
// a one-line inputError naming file:line and the field. Reading files, row indices and the skipping of
// bad rows live in datasets.ts.
import { inputError, type InputLocation } from '@latent-sft/core';

/** A Problem without `dataset` and `index`, which the loader fills in. */
export interface ParsedRow {
  id: string | null;
  problem: string;
  cot: string | null;
  solution: string | null;
  answer: string;
}

type Where = Required<Pick<InputLocation, 'file' | 'line'>>;
type Obj = Record<string, unknown>;

/** A GSM8K-style gold number: optional sign, digits with optional thousands commas, optional decimals. */
const GSM_NUMBER = /^[-+]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$|^[-+]?\.\d+$/;

function asObject(value: unknown, where: Where): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw inputError(where, `expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Obj;
}

function str(o: Obj, field: string, where: Where, nonEmpty = true): string {
  const v = o[field];
  if (v === undefined) throw inputError({ ...where, field }, 'missing');
  if (typeof v !== 'string') throw inputError({ ...where, field }, `expected a string, got ${typeof v}`);
  if (nonEmpty && v.trim() === '') throw inputError({ ...where, field }, 'empty');
  return v;
}

function finiteNumber(o: Obj, field: string, where: Where): number {
  const v = o[field];
  if (v === undefined) throw inputError({ ...where, field }, 'missing');
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw inputError({ ...where, field }, `expected a finite number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function gsmNumber(s: string, field: string, where: Where): string {
  if (!GSM_NUMBER.test(s)) throw inputError({ ...where, field }, `gold answer ${JSON.stringify(s)} is not a number`);
  return s;
}

/** Parses one JSONL line into a value; malformed JSON is a located inputError. */
export function parseJsonRecord(text: string, where: Where): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw inputError(where, `malformed JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** GSM8K {question, answer}: gold = text after the final line's `####`, cot = answer without that line. */
export function parseGsm8k(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  const problem = str(o, 'question', where);
  const solution = str(o, 'answer', where);
  const body = solution.trimEnd();
  const cut = body.lastIndexOf('\n') + 1;
  const last = body.slice(cut);
  if (!last.startsWith('####')) throw inputError({ ...where, field: 'answer' }, "last line does not start with '####'");
  const answer = gsmNumber(last.slice(4).trim(), 'answer', where);
  return { id: null, problem, cot: body.slice(0, cut).trimEnd(), solution, answer };
}

function countOf(haystack: string, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) count += 1;
  return count;
}

/** GSM8k-Aug text line `QUESTION||<<e1=r1>> <<e2=r2>> #### ANSWER`; the CoT may be empty. */
export function parseGsm8kAugLine(text: string, where: Where): ParsedRow {
  const bars = countOf(text, '||');
  if (bars !== 1) throw inputError({ ...where, field: '||' }, `expected exactly one '||' separator, found ${bars}`);
  const hashes = countOf(text, ' #### ');
  if (hashes !== 1) throw inputError({ ...where, field: ' #### ' }, `expected exactly one ' #### ' separator, found ${hashes}`);
  const [problem, rest] = text.split('||') as [string, string];
  if (problem.trim() === '') throw inputError({ ...where, field: 'problem' }, 'empty question before ||');
  const at = rest.indexOf(' #### ');
  if (at === -1) throw inputError({ ...where, field: ' #### ' }, "' #### ' comes before '||'");
  const answer = gsmNumber(rest.slice(at + 6).trim(), 'answer', where);
  return { id: null, problem, cot: rest.slice(0, at), solution: null, answer };
}

/**
 * SVAMP {ID, Body, Question, Answer}: problem = Body + ". " + Question (the Latent-SFT/PAL prompt).
 * 642 of the 1000 Bodies already end in "." (MANIFEST says none do); for those, and for a Body ending
 * in "?" or "!", only a space is inserted, so no prompt reads "..". Answer (a float) -> String(n).
 */
export function parseSvamp(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  const id = str(o, 'ID', where);
  const body = str(o, 'Body', where).trim();
  const question = str(o, 'Question', where).trim();
  const problem = /[.?!]$/.test(body) ? `${body} ${question}` : `${body}. ${question}`;
  const answer = String(finiteNumber(o, 'Answer', where));
  return { id, problem, cot: null, solution: null, answer };
}

/** MultiArith (PAL) {input, target}: gold = String(target). */
export function parseMultiArith(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  const problem = str(o, 'input', where);
  return { id: null, problem, cot: null, solution: null, answer: String(finiteNumber(o, 'target', where)) };
}

/** GSM-Hard (PAL v2) {input, code, target}: gold = String(target), e.g. -9867630.0 -> "-9867630". */
export function parseGsmHard(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  const problem = str(o, 'input', where);
  const solution = str(o, 'code', where);
  return { id: null, problem, cot: null, solution, answer: String(finiteNumber(o, 'target', where)) };
}

/** MATH-500 {problem, solution, answer, unique_id}: gold = the LaTeX `answer` string as is. */
export function parseMath500(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  return {
    id: str(o, 'unique_id', where),
    problem: str(o, 'problem', where),
    cot: null,
    solution: str(o, 'solution', where),
    answer: str(o, 'answer', where),
  };
}

/** AIME 2024 (Qwen2.5-Math) {id, problem, solution, answer}: gold kept as stored, e.g. "025". */
export function parseAime(value: unknown, where: Where): ParsedRow {
  const o = asObject(value, where);
  const rawId = o['id'];
  let id: string;
  if (typeof rawId === 'number' && Number.isInteger(rawId)) id = String(rawId);
  else if (typeof rawId === 'string' && rawId.trim() !== '') id = rawId;
  else throw inputError({ ...where, field: 'id' }, `expected an integer or a string, got ${JSON.stringify(rawId)}`);
  const answer = str(o, 'answer', where).trim();
  if (!/^\d+$/.test(answer)) throw inputError({ ...where, field: 'answer' }, `AIME answer ${JSON.stringify(answer)} is not an integer`);
  return { id, problem: str(o, 'problem', where), cot: null, solution: str(o, 'solution', where), answer };
}
