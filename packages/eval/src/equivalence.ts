// Answer equivalence per dataset kind: 'numeric' (GSM8K family: separators, units, tolerance), 'integer'
// (AIME: exact integers, zero padding ignored) and 'latex' (MATH-500: Hendrycks-style normalisation, then
// structure, numbers and the compute engine). The checker is asymmetric only in naming: pred, gold.
import type { DatasetName } from '@latent-sft/data';
import { choiceLetter, expandPlusMinus, normalizeLatex, parseBracketed, parseMatrix, splitTopLevel } from './latex.js';
import { exactInteger, numbersClose, parseNumber } from './number.js';
import { complexClose, equationsEquivalent, symbolicCompare } from './symbolic.js';

/** How a dataset's answers are compared. */
export type AnswerKind = 'numeric' | 'integer' | 'latex';

const KIND_OF: Readonly<Record<DatasetName, AnswerKind>> = {
  'gsm8k-train': 'numeric',
  'gsm8k-test': 'numeric',
  'gsm8k-aug-test': 'numeric',
  'gsm8k-aug-valid': 'numeric',
  svamp: 'numeric',
  multiarith: 'numeric',
  'gsm-hard': 'numeric',
  math500: 'latex',
  aime24: 'integer',
  multiplication: 'integer',
};

/** The answer kind of a dataset: latex for MATH-500, integer for AIME24 and multiplication, else numeric. */
export function datasetAnswerKind(name: DatasetName): AnswerKind {
  const kind = KIND_OF[name];
  if (kind === undefined) throw new Error(`unknown dataset '${String(name)}'`);
  return kind;
}

/** Which rule decided a comparison (for verdict files and debugging). */
export type MatchMethod = 'string' | 'number' | 'choice' | 'structure' | 'symbolic' | 'none';

export interface Comparison {
  equal: boolean;
  method: MatchMethod;
}

/** Compares a predicted answer with the gold one under the dataset's answer kind. */
export function compareAnswers(pred: string | null, gold: string, kind: AnswerKind): Comparison {
  if (pred === null || pred.trim() === '') return { equal: false, method: 'none' };
  switch (kind) {
    case 'numeric':
      return compareNumeric(pred, gold);
    case 'integer':
      return compareInteger(pred, gold);
    case 'latex':
      return compareLatex(pred, gold);
  }
}

/** True when pred and gold are the same answer under `kind` (see compareAnswers). */
export function isEquivalent(pred: string | null, gold: string, kind: AnswerKind): boolean {
  return compareAnswers(pred, gold, kind).equal;
}

function compareNumeric(pred: string, gold: string): Comparison {
  const p = parseNumber(pred);
  const g = parseNumber(gold);
  if (p && g) return { equal: numbersClose(p.value, g.value), method: 'number' };
  // Non-numeric gold (never in the shipped data): fall back to normalised text.
  return { equal: !g && normText(pred) === normText(gold), method: 'string' };
}

function compareInteger(pred: string, gold: string): Comparison {
  const p = parseNumber(pred);
  const g = parseNumber(gold);
  const pi = p && exactInteger(p);
  const gi = g && exactInteger(g);
  if (gi === null || gi === undefined) return { equal: normText(pred) === normText(gold), method: 'string' };
  return { equal: pi !== null && pi !== undefined && pi === gi, method: 'number' };
}

function normText(s: string): string {
  return s
    .replace(/\\text\{([^{}]*)\}/g, '$1')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

// ---------------------------------------------------------------------------------------------------
// LaTeX

function compareLatex(pred: string, gold: string): Comparison {
  const a = normalizeLatex(pred);
  const b = normalizeLatex(gold);
  return latexEqual(a, b, 0);
}

const THOUSANDS = /^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;

/** A plain decimal of a normalised answer ('58,500', '-3.21', '.5'); null otherwise. */
function plainNumber(s: string): number | null {
  if (THOUSANDS.test(s)) return Number(s.replace(/,/g, ''));
  return /^-?(?:\d+(?:\.\d*)?|\.\d+)$/.test(s) ? Number(s) : null;
}

/** Elements of a list-like answer: set items, bare comma lists and `\pm` expansions; null if scalar. */
function listItems(s: string): { items: string[]; ordered: boolean; brackets: string } | null {
  const br = parseBracketed(s);
  if (br && br.open === '\\{') return { items: br.items.flatMap(expandPlusMinus), ordered: false, brackets: 'set' };
  if (br) return null; // tuples and intervals are handled with their brackets
  if (THOUSANDS.test(s)) return null;
  const parts = splitTopLevel(s, ',');
  const items = parts.flatMap(expandPlusMinus);
  return items.length > 1 ? { items, ordered: false, brackets: '' } : null;
}

function latexEqual(a: string, b: string, depth: number): Comparison {
  if (a === b) return { equal: true, method: 'string' };
  if (a.toLowerCase() === b.toLowerCase() && !/\d/.test(a) && /^[A-Za-z ]+$/.test(a)) {
    return { equal: true, method: 'string' }; // words: 'Even' = 'even'
  }
  if (a === '' || b === '' || depth > 4) return { equal: false, method: 'none' };

  const ca = choiceLetter(a);
  const cb = choiceLetter(b);
  if (ca !== null || cb !== null) return { equal: ca === cb, method: 'choice' };

  const na = plainNumber(a);
  const nb = plainNumber(b);
  if (na !== null && nb !== null) {
    return { equal: complexClose({ re: na, im: 0 }, { re: nb, im: 0 }), method: 'number' };
  }

  const structural = compareStructure(a, b, depth);
  if (structural) return structural;

  // Equations that survived the short-lhs rule: compare as equations, never against a bare expression.
  const ea = splitTopLevel(a, '=');
  const eb = splitTopLevel(b, '=');
  if (ea.length > 1 || eb.length > 1) {
    if (ea.length !== 2 || eb.length !== 2) return { equal: false, method: 'structure' };
    const v = equationsEquivalent([ea[0] as string, ea[1] as string], [eb[0] as string, eb[1] as string]);
    return { equal: v === 'equal', method: 'symbolic' };
  }
  if (isWordy(a) || isWordy(b)) return { equal: false, method: 'string' };
  const v = symbolicCompare(a, b);
  return { equal: v === 'equal', method: v === 'unknown' ? 'none' : 'symbolic' };
}

/** Plain words (a text answer such as 'east' or 'ellipse'), which the engine would read as products. */
function isWordy(s: string): boolean {
  return /^[A-Za-z]{2,}$/.test(s) && !/^(?:pi|infty|e|i)$/.test(s);
}

function allPairsEqual(xs: string[], ys: string[], depth: number): boolean {
  return xs.length === ys.length && xs.every((x, k) => latexEqual(x, ys[k] as string, depth + 1).equal);
}

/** Multiset equality under latexEqual (greedy matching; answers are short). */
function unorderedEqual(xs: string[], ys: string[], depth: number): boolean {
  if (xs.length !== ys.length) return false;
  const used = new Array<boolean>(ys.length).fill(false);
  return xs.every((x) => {
    const k = ys.findIndex((y, j) => !used[j] && latexEqual(x, y, depth + 1).equal);
    if (k < 0) return false;
    used[k] = true;
    return true;
  });
}

/** Matrices, unions, tuples/intervals and lists element-wise; null when neither side has structure. */
function compareStructure(a: string, b: string, depth: number): Comparison | null {
  const ma = parseMatrix(a);
  const mb = parseMatrix(b);
  if (ma || mb) {
    const flat = (m: string[][] | null, s: string): string[] | null => {
      if (m) return m.length === 1 || m.every((r) => r.length === 1) ? m.flat() : null;
      const br = parseBracketed(s);
      return br && br.open !== '\\{' ? br.items : null;
    };
    if (ma && mb) {
      const same = ma.length === mb.length && ma.every((r, i) => allPairsEqual(r, mb[i] as string[], depth));
      return { equal: same, method: 'structure' };
    }
    // A vector against a tuple: (1, 2) = \begin{pmatrix} 1 \\ 2 \end{pmatrix}.
    const fa = flat(ma, a);
    const fb = flat(mb, b);
    return { equal: fa !== null && fb !== null && allPairsEqual(fa, fb, depth), method: 'structure' };
  }

  const ua = splitTopLevel(a, '\\cup');
  const ub = splitTopLevel(b, '\\cup');
  if (ua.length > 1 || ub.length > 1) return { equal: allPairsEqual(ua, ub, depth), method: 'structure' };

  const ba = parseBracketed(a);
  const bb = parseBracketed(b);
  const tupleA = ba && ba.open !== '\\{' ? ba : null;
  const tupleB = bb && bb.open !== '\\{' ? bb : null;
  if (tupleA || tupleB) {
    const same =
      tupleA !== null && tupleB !== null && tupleA.open === tupleB.open && tupleA.close === tupleB.close && allPairsEqual(tupleA.items, tupleB.items, depth);
    return { equal: same, method: 'structure' };
  }

  const la = listItems(a);
  const lb = listItems(b);
  if (la || lb) {
    const xs = la ? la.items : [a];
    const ys = lb ? lb.items : [b];
    return { equal: unorderedEqual(xs, ys, depth), method: 'structure' };
  }
  return null;
}
