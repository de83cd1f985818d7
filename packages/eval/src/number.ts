// Plain-number answers (GSM8K family, AIME): strip dollar signs, thousands separators, percent signs,
// unit words and trailing periods, then read a decimal (or a simple fraction) without losing digits, so
// that integers compare exactly as BigInt and decimals as doubles with the tolerance of `numbersClose`.

/** A number read from an answer string; digits are kept as text so integers compare exactly. */
export interface ParsedNumber {
  negative: boolean;
  /** Integer digits without separators or leading zeros ('0' for none). */
  intDigits: string;
  /** Decimal digits without trailing zeros ('' for none). */
  fracDigits: string;
  /** The denominator of `a/b` or `\frac{a}{b}` (null for a plain decimal). */
  denominator: number | null;
  /** The value as a double. */
  value: number;
}

/** Absolute tolerance of numeric answers, as the reference grader (`isclose(abs_tol=1e-4)`). */
export const NUMERIC_ATOL = 1e-4;
/**
 * Relative tolerance of numeric answers. It only matters above |gold| = 1e9 and absorbs the few-ulp float
 * error in GSM-Hard's Python-computed targets (up to 9.3e12), while an off-by-one on the largest target
 * still fails (tolerance 0.93 there). A relative 1e-6 would accept 9867631 for 9867630.
 */
export const NUMERIC_RTOL = 1e-13;

/** True when |pred - gold| <= max(NUMERIC_ATOL, NUMERIC_RTOL * |gold|); NaN and infinities never match. */
export function numbersClose(pred: number, gold: number): boolean {
  if (!Number.isFinite(pred) || !Number.isFinite(gold)) return false;
  return Math.abs(pred - gold) <= Math.max(NUMERIC_ATOL, NUMERIC_RTOL * Math.abs(gold));
}

const WRAPPERS = /\\(?:text|textbf|textrm|textnormal|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}/g;

/** Removes LaTeX and prose decoration around a number; leaves the core, e.g. '\$1,000.' → '1,000'. */
export function cleanNumberText(s: string): string {
  let t = s.trim();
  for (let prev = ''; prev !== t; ) {
    prev = t;
    t = t.replace(WRAPPERS, '$1');
  }
  t = t
    .replace(/\u2212/g, '-') // unicode minus
    .replace(/\\[$%]/g, (m) => m.slice(1))
    .replace(/\\[!,;: ]/g, '')
    .replace(/\\(?:left|right)\b/g, '')
    .replace(/[$~]/g, '')
    .replace(/\^\s*\{?\\circ\}?|°/g, '')
    .trim();
  // 'x = 5' and 'The answer is: 5' keep what follows the last '=' or ':'.
  const eq = Math.max(t.lastIndexOf('='), t.lastIndexOf(':'));
  if (eq >= 0) t = t.slice(eq + 1).trim();
  while (t.endsWith('.')) t = t.slice(0, -1).trimEnd();
  return t;
}

const FRAC = /^([+-])?\s*\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$/;
const NUMBER = /^([+-])?\s*(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d+))?(?:\s*\/\s*(\d+))?\s*(?:%|percent\b|[A-Za-z][\w .'/^()-]*)?$/;

/**
 * Reads a plain number: sign, digits with optional thousands commas, decimals, an optional `/b` or
 * `\frac{a}{b}`, then an optional percent sign or unit words ('5 apples', '3.5 hours'), which are dropped.
 * Null when the text is not such a number.
 */
export function parseNumber(text: string): ParsedNumber | null {
  const t = cleanNumberText(text);
  const f = FRAC.exec(t);
  if (f) {
    const den = Number(f[3]);
    return build(f[1] === '-', f[2] ?? '0', '', den);
  }
  const m = NUMBER.exec(t);
  if (!m || (m[2] === undefined && m[3] === undefined)) return null;
  const den = m[4] === undefined ? null : Number(m[4]);
  return build(m[1] === '-', (m[2] ?? '0').replace(/,/g, ''), m[3] ?? '', den);
}

function build(negative: boolean, intRaw: string, fracRaw: string, denominator: number | null): ParsedNumber | null {
  if (denominator === 0) return null;
  const intDigits = intRaw.replace(/^0+(?=\d)/, '');
  const fracDigits = fracRaw.replace(/0+$/, '');
  const magnitude = Number(`${intDigits}.${fracDigits || '0'}`) / (denominator ?? 1);
  return { negative, intDigits, fracDigits, denominator, value: negative ? -magnitude : magnitude };
}

/** The exact integer of a parsed number, or null when it has decimals or a denominator. */
export function exactInteger(n: ParsedNumber): bigint | null {
  if (n.denominator !== null || n.fracDigits !== '') return null;
  const v = BigInt(n.intDigits);
  return n.negative ? -v : v;
}
