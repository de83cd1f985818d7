// The official Latent-SFT grader (`eval_utils/grader.py` `check_is_correct` = `math_equal(strip_string(pred),
// strip_string(gt))`, spec §5.3), mapped onto this package's rules. Read from the reference, rule by rule:
//   strip_string          → normalizeLatex (the same Hendrycks clean-up: \left/\right, dfrac, $, %, units,
//                           `k =` prefixes, \frac12, a/b → \frac{a}{b}, spaces). Not mapped: its English word
//                           numbers ("five" → 5) and month names, which never occur in our numeric answers.
//   1. case-insensitive string equality                        → officialEqual step 1
//   2. multiple-choice letters (gold A–E)                      → choiceLetter via the latex comparison
//   3. both contain ',': parts compared sorted, pairwise       → step 2
//   4. both parse as Python floats (commas removed, `x%` = x/100): pred isclose to gold/100, gold or gold·100
//      (math.isclose: rel_tol 1e-9, abs_tol 1e-4); when both are numbers this decides, nothing else runs → step 3
//   5.–7. brackets, pmatrix, equations, sympy `simplify(a − b) == 0` with a 3 s timeout
//                           → the latex comparison (structure, then the compute engine, SYMBOLIC_BUDGET_MS)
// An empty prediction (the reference's extraction gives '' when there is no `boxed`) is never correct.
import { compareAnswers, type Comparison } from './equivalence.js';
import { normalizeLatex } from './latex.js';

/** math.isclose's defaults as the grader calls it: rel_tol 1e-9 (Python's default), abs_tol 1e-4. */
export const OFFICIAL_REL_TOL = 1e-9;
export const OFFICIAL_ABS_TOL = 1e-4;

const PY_FLOAT = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;
const PY_SPECIAL = /^\s*([+-]?)(inf|infinity|nan)\s*$/i;

/** Python's float(s) for the strings it accepts (decimals, exponents, `_` separators, inf/nan); null otherwise. */
export function pythonFloat(s: string): number | null {
  if (PY_FLOAT.test(s)) return Number(s.replace(/_/g, '').trim());
  const m = PY_SPECIAL.exec(s);
  if (!m) return null;
  const sign = m[1] === '-' ? -1 : 1;
  return (m[2] as string).toLowerCase() === 'nan' ? Number.NaN : sign * Number.POSITIVE_INFINITY;
}

/** The grader's parse_digits: commas removed, then float(); else a trailing `%` (or `\%`) gives x/100. */
export function parseDigits(s: string): number | null {
  const t = s.replace(/,/g, '');
  const v = pythonFloat(t);
  if (v !== null) return v;
  if (!t.endsWith('%')) return null;
  let u = t.slice(0, -1);
  if (u.endsWith('\\')) u = u.slice(0, -1);
  const w = pythonFloat(u);
  return w === null ? null : w / 100;
}

/** Python's math.isclose(a, b, rel_tol, abs_tol). */
export function pyIsClose(a: number, b: number, relTol = OFFICIAL_REL_TOL, absTol = OFFICIAL_ABS_TOL): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  const diff = Math.abs(a - b);
  return diff <= Math.abs(relTol * b) || diff <= Math.abs(relTol * a) || diff <= absTol;
}

const MAX_DEPTH = 5;

function equalStripped(pred: string, gold: string, depth: number): Comparison {
  if (depth > MAX_DEPTH) return { equal: false, method: 'none' };
  if (pred.trim().toLowerCase() === gold.trim().toLowerCase()) return { equal: true, method: 'string' };
  if (pred.includes(',') && gold.includes(',')) {
    const ps = pred
      .split(',')
      .map((x) => x.trim())
      .sort();
    const gs = gold
      .split(',')
      .map((x) => x.trim())
      .sort();
    if (ps.length === gs.length && ps.every((p, i) => equalStripped(p, gs[i] as string, depth + 1).equal)) {
      return { equal: true, method: 'structure' };
    }
  }
  const p = parseDigits(pred);
  const g = parseDigits(gold);
  if (p !== null && g !== null) {
    return { equal: [g / 100, g, g * 100].some((x) => pyIsClose(p, x)), method: 'number' };
  }
  if (pred === '') return { equal: false, method: 'none' };
  return compareAnswers(pred, gold, 'latex');
}

/**
 * The official verdict for an extracted answer (see the file header): both sides go through the
 * strip_string mapping, then the grader's rules in its order. null or '' never matches.
 */
export function officialCompare(pred: string | null, gold: string): Comparison {
  if (pred === null) return { equal: false, method: 'none' };
  return equalStripped(normalizeLatex(pred), normalizeLatex(gold), 0);
}
