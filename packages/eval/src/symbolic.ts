// Numeric and symbolic equality of two LaTeX expressions through @cortex-js/compute-engine (the role of
// sympy/latex2sympy in the reference grader). Closed forms are evaluated to complex numbers and compared
// with a relative tolerance; expressions with free variables are evaluated at fixed sample points (a
// deterministic identity test: polynomials and rational functions that agree at all of them are equal).
// Every comparison has a soft time budget, checked between engine calls, and results are cached.
import { ComputeEngine } from '@cortex-js/compute-engine';

// The package's type barrel uses extensionless re-exports that NodeNext cannot follow; derive the type.
type BoxedExpression = ReturnType<ComputeEngine['parse']>;

/**
 * Relative tolerance of LaTeX numeric comparisons: an exact form and its full-precision decimal agree,
 * a rounded decimal (3.14159 for \pi, 0.3333 for 1/3) does not.
 */
export const LATEX_RTOL = 1e-8;
/** Default time budget of one symbolic comparison, like the reference's 3 s sympy timeout. */
export const SYMBOLIC_BUDGET_MS = 2000;
/** Inputs longer than this are not handed to the engine. */
const MAX_LENGTH = 400;
/** Fixed sample values for free variables (irrational-looking, mixed signs, away from 0 and ±1). */
const SAMPLES = [0.7390851, 1.6180339, -1.3247179, 2.5029078, 0.3183098];
const POINTS = 3;

let engine: ComputeEngine | undefined;
const parsed = new Map<string, BoxedExpression | null>();
const results = new Map<string, boolean>();

function ce(): ComputeEngine {
  engine ??= new ComputeEngine();
  return engine;
}

/** Parses LaTeX (cached); null when the engine reports a syntax error or the input is too long. */
function parse(latex: string): BoxedExpression | null {
  const hit = parsed.get(latex);
  if (hit !== undefined) return hit;
  let e: BoxedExpression | null = null;
  if (latex.length <= MAX_LENGTH && !/\d{3,}\s*!/.test(latex)) {
    try {
      const x = ce().parse(latex);
      e = x.isValid ? x : null;
    } catch {
      e = null;
    }
  }
  if (parsed.size > 20_000) parsed.clear();
  parsed.set(latex, e);
  return e;
}

interface Complex {
  re: number;
  im: number;
}

/** Numeric value of an expression with no free variables, or null when it is not a finite number. */
function numericValue(e: BoxedExpression): Complex | null {
  try {
    const n = e.N();
    if (!n.isNumberLiteral) return null;
    const re = n.re;
    const im = n.im;
    if (!Number.isFinite(re) || !Number.isFinite(im)) return null;
    return { re, im };
  } catch {
    return null;
  }
}

function isNaNValue(e: BoxedExpression): boolean {
  try {
    return e.N().isNaN === true;
  } catch {
    return false;
  }
}

/** |a - b| <= rtol * max(|a|, |b|), with exact zero matching only values below 1e-12. */
export function complexClose(a: Complex, b: Complex, rtol = LATEX_RTOL): boolean {
  const d = Math.hypot(a.re - b.re, a.im - b.im);
  const scale = Math.max(Math.hypot(a.re, a.im), Math.hypot(b.re, b.im));
  return d <= Math.max(rtol * scale, 1e-12);
}

/** Values at the sample points (null entries where undefined); null when evaluation is not numeric. */
function sampleValues(e: BoxedExpression, vars: string[], deadline: number): Array<Complex | null> | null {
  const out: Array<Complex | null> = [];
  for (let p = 0; p < POINTS; p++) {
    if (performance.now() > deadline) return null;
    const subs: Record<string, BoxedExpression> = {};
    vars.forEach((v, k) => {
      subs[v] = ce().number(SAMPLES[(p + 2 * k) % SAMPLES.length] as number);
    });
    let x: BoxedExpression;
    try {
      x = e.subs(subs).N();
    } catch {
      return null;
    }
    if (!x.isNumberLiteral) {
      if (x.unknowns.length > 0) return null; // an unknown function or operator survived
      out.push(null);
      continue;
    }
    out.push(Number.isFinite(x.re) && Number.isFinite(x.im) ? { re: x.re, im: x.im } : null);
  }
  return out;
}

/** What the engine concluded: equal, different, or unable to tell (parse failure, timeout, non-numeric). */
export type SymbolicVerdict = 'equal' | 'different' | 'unknown';

function compare(a: string, b: string, mode: 'value' | 'proportional', budgetMs: number): SymbolicVerdict {
  const deadline = performance.now() + budgetMs;
  const ea = parse(a);
  const eb = parse(b);
  if (!ea || !eb) return 'unknown';
  const vars = [...new Set([...ea.unknowns, ...eb.unknowns])].sort();
  if (vars.length === 0 && mode === 'value') {
    const va = numericValue(ea);
    const vb = numericValue(eb);
    if (va && vb) return complexClose(va, vb) ? 'equal' : 'different';
    if (isNaNValue(ea) || isNaNValue(eb)) return 'different'; // 1/0 is no answer
    return ea.isSame(eb) ? 'equal' : 'unknown';
  }
  if (vars.length > SAMPLES.length) return ea.isSame(eb) ? 'equal' : 'unknown';
  const sa = sampleValues(ea, vars, deadline);
  const sb = sa && sampleValues(eb, vars, deadline);
  if (!sa || !sb) return ea.isSame(eb) ? 'equal' : 'unknown';
  let ratio: Complex | null = null;
  let compared = 0;
  for (let p = 0; p < sa.length; p++) {
    const x = sa[p];
    const y = sb[p];
    if (!x || !y) {
      if (!x !== !y) return 'different'; // defined for one, undefined for the other
      continue;
    }
    compared += 1;
    if (mode === 'value') {
      if (!complexClose(x, y)) return 'different';
    } else {
      // f and g describe the same equation when f = c·g for one constant c ≠ 0.
      const den = y.re * y.re + y.im * y.im;
      if (den < 1e-24) {
        if (Math.hypot(x.re, x.im) > 1e-12) return 'different';
        continue;
      }
      const r = { re: (x.re * y.re + x.im * y.im) / den, im: (x.im * y.re - x.re * y.im) / den };
      if (Math.hypot(r.re, r.im) < 1e-12) return 'different';
      if (ratio === null) ratio = r;
      else if (!complexClose(r, ratio)) return 'different';
    }
  }
  return compared > 0 ? 'equal' : 'unknown';
}

/**
 * Compares two normalised LaTeX expressions: numerically when both are closed forms (relative 1e-6),
 * else at fixed sample points of their free variables. `unknown` when the engine cannot decide.
 */
export function symbolicCompare(a: string, b: string, budgetMs = SYMBOLIC_BUDGET_MS): SymbolicVerdict {
  const key = `v\u0000${a}\u0000${b}`;
  const hit = results.get(key);
  if (hit !== undefined) return hit ? 'equal' : 'different';
  const v = compare(a, b, 'value', budgetMs);
  if (v !== 'unknown') cacheResult(key, v === 'equal');
  return v;
}

/** Compares two equations `l1 = r1`, `l2 = r2` by testing l1 - r1 = c·(l2 - r2) at the sample points. */
export function equationsEquivalent([l1, r1]: readonly [string, string], [l2, r2]: readonly [string, string], budgetMs = SYMBOLIC_BUDGET_MS): SymbolicVerdict {
  const f = `(${l1})-(${r1})`;
  const g = `(${l2})-(${r2})`;
  const key = `e\u0000${f}\u0000${g}`;
  const hit = results.get(key);
  if (hit !== undefined) return hit ? 'equal' : 'different';
  const v = compare(f, g, 'proportional', budgetMs);
  if (v !== 'unknown') cacheResult(key, v === 'equal');
  return v;
}

function cacheResult(key: string, equal: boolean): void {
  if (results.size > 20_000) results.clear();
  results.set(key, equal);
}
