// LaTeX answer normalisation in the manner of Hendrycks' MATH `strip_string` (as used by the Latent-SFT
// SGLang scorer, spec §5.3), plus the top-level structure splitting (tuples, intervals, sets, unions,
// matrices, ±) that the equivalence checker compares element by element.

const ROW = '\u0001';
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0001 is our private row separator
const ROW_RE = /\u0001/g;

/** Removes `\cmd{…}` wrappers whose argument is plain text, repeatedly: `\text{(C)}` → `(C)`. */
function unwrapText(s: string): string {
  const re = /\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}/g;
  for (let prev = ''; prev !== s; ) {
    prev = s;
    s = s.replace(re, '$1');
  }
  return s;
}

/** Reads one argument of a macro at i: a brace group or a single character. */
function readArg(s: string, i: number): { arg: string; end: number } | null {
  if (i >= s.length) return null;
  if (s[i] === '{') {
    const end = closingIndex(s, i);
    if (end < 0) return null;
    return { arg: s.slice(i + 1, end), end: end + 1 };
  }
  if (s[i] === '\\') {
    const m = /^\\[A-Za-z]+/.exec(s.slice(i));
    if (m) return { arg: m[0], end: i + m[0].length };
  }
  return { arg: s[i] as string, end: i + 1 };
}

/** Index of the `}` closing the `{` at `open`, or -1. Escaped braces do not count. */
export function closingIndex(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i += 1;
      continue;
    }
    if (c === '{') depth += 1;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** `\frac12` → `\frac{1}{2}`, `\frac{270}7` → `\frac{270}{7}` (Hendrycks `_fix_fracs`). */
function fixFracs(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const j = s.indexOf('\\frac', i);
    if (j < 0 || /[A-Za-z]/.test(s[j + 5] ?? '')) {
      if (j < 0) return out + s.slice(i);
      out += s.slice(i, j + 5);
      i = j + 5;
      continue;
    }
    out += `${s.slice(i, j)}\\frac`;
    const a = readArg(s, j + 5);
    const b = a ? readArg(s, a.end) : null;
    if (!a || !b) return out + s.slice(j + 5);
    out += `{${fixFracs(a.arg)}}{${fixFracs(b.arg)}}`;
    i = b.end;
  }
}

/** `\sqrt3` → `\sqrt{3}` (Hendrycks `_fix_sqrt`). */
function fixSqrt(s: string): string {
  return s.replace(/\\sqrt(?![A-Za-z{[])\s*(\\[A-Za-z]+|[^\s{[])/g, '\\sqrt{$1}');
}

/** Removes a trailing unit in `\text{…}`/`\mbox{…}` (with an optional power) after a value: `5.4 \text{ cents}`. */
function removeUnits(s: string): string {
  const m = /^(.*\S)\s*\\(?:text|mbox|textnormal|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}\s*(?:\^\s*\{?\d\}?)?$/.exec(s);
  return m && !/\\(?:text|mbox)\s*\{[^}]*$/.test(m[1] as string) ? (m[1] as string) : s;
}

/**
 * Normalises a LaTeX answer for comparison: drops `\left`/`\right`, thin spaces, `\$`, degrees, percent,
 * trailing units in `\text{…}`, a short `x =` / `x \in` prefix and all spaces; maps `dfrac`/`tfrac` to
 * `frac`, fixes `\frac12` and `\sqrt3`, reads `a/b` of integers as `\frac{a}{b}`, unwraps `\text{…}`,
 * removes a trailing period. Row separators `\\` of matrices are kept.
 */
export function normalizeLatex(answer: string): string {
  // Matrix row separators `\\` are parked so that `\ ` (a LaTeX space) cannot eat half of one.
  let s = answer.replace(/\n/g, ' ').replace(/\\\\/g, ROW).trim();
  s = s
    .replace(/\\[!,;:>]|\\ |~|\\quad|\\qquad/g, ' ')
    .replace(/\\displaystyle/g, '')
    .replace(/\\lbrack(?![A-Za-z])/g, '[')
    .replace(/\\rbrack(?![A-Za-z])/g, ']')
    .replace(/\\lbrace(?![A-Za-z])/g, '\\{')
    .replace(/\\rbrace(?![A-Za-z])/g, '\\}')
    .replace(/\\[dt]frac/g, '\\frac')
    .replace(/\\(?:left|right)\s*\.(?!\d)/g, '') // null delimiters
    .replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])/g, '')
    .replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°/g, '')
    .replace(/\\\$|\$/g, '')
    .trim();
  while (s.endsWith('.')) s = s.slice(0, -1).trimEnd();
  s = removeUnits(s);
  s = s
    .replace(/\\%|%/g, '')
    .replace(/\\(?:mathrm|text)\s*\{\s*(?:degrees?|units?)\s*\}/g, '')
    .trim();
  s = unwrapText(s).trim();
  while (s.endsWith('.')) s = s.slice(0, -1).trimEnd();
  s = s.replace(/ \./g, ' 0.').replace(/\{\./g, '{0.');
  if (s.startsWith('.')) s = `0${s}`;
  if (s.startsWith('-.')) s = `-0${s.slice(1)}`;
  // 'k = 5' → '5' when the left side is at most two characters (as Hendrycks); 'x \in [a,b]' → '[a,b]'.
  const parts = s.split('=');
  if (parts.length === 2 && (parts[0] as string).trim().length <= 2) s = (parts[1] as string).trim();
  s = s.replace(/^[A-Za-z]\s*\\in\s*/, '');
  s = fixSqrt(s);
  // Spaces go, except one after a command name before a letter: `\cot x` must not become `\cotx`.
  s = s.replace(/(\\[A-Za-z]+)\s+(?=[A-Za-z])|\s+/g, (_m, cmd: string | undefined) => (cmd ? `${cmd} ` : ''));
  s = fixFracs(s);
  s = s.replace(/_\{(\w+)\}/g, '_$1').replace(/\^\{(\w)\}/g, '^$1');
  if (/^-?\d+\/\d+$/.test(s)) {
    const [a, b] = s.split('/');
    s = a!.startsWith('-') ? `-\\frac{${a!.slice(1)}}{${b}}` : `\\frac{${a}}{${b}}`;
  }
  return s.replace(ROW_RE, '\\\\');
}

/** Splits s on `sep` where not nested inside (), [], {} (escaped braces `\{ \}` count as nesting too). */
export function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      depth += s[i + 1] === '{' ? 1 : -1;
      i += 1;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') depth += 1;
    else if (c === ')' || c === ']' || c === '}') depth -= 1;
    else if (depth === 0 && s.startsWith(sep, i)) {
      out.push(s.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** True when the bracket opening at 0 closes only at the end (escaped braces `\{ \}` count as brackets). */
function wrapsWhole(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      depth += s[i + 1] === '{' ? 1 : -1;
      i += 1;
    } else if (c === '(' || c === '[' || c === '{') depth += 1;
    else if (c === ')' || c === ']' || c === '}') depth -= 1;
    if (depth === 0) return i === s.length - 1;
  }
  return false;
}

/** A bracketed, comma-separated answer: tuple `(a,b)`, interval `(a,b]`, or set `\{a,b\}`. */
export interface Bracketed {
  open: string;
  close: string;
  items: string[];
}

/**
 * Reads `(a,b)`, `[a,b)`, `(a,b,c)` (needs a top-level comma) and `\{a,b\}` (any count); null otherwise.
 * The bracket types are kept, so `(3,4]` and `(3,4)` differ.
 */
export function parseBracketed(s: string): Bracketed | null {
  if (s.startsWith('\\{') && s.endsWith('\\}') && wrapsWhole(s)) {
    const inner = s.slice(2, -2);
    return { open: '\\{', close: '\\}', items: inner === '' ? [] : splitTopLevel(inner, ',') };
  }
  const open = s[0];
  const close = s[s.length - 1];
  if (s.length < 2 || (open !== '(' && open !== '[') || (close !== ')' && close !== ']')) return null;
  if (!wrapsWhole(s)) return null;
  const items = splitTopLevel(s.slice(1, -1), ',');
  if (items.length < 2) return null;
  return { open, close, items };
}

/** Reads `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix, matrix…) as rows of cells. */
export function parseMatrix(s: string): string[][] | null {
  const m = /^\\begin\{([pbBvV]?matrix)\}(.*)\\end\{\1\}$/s.exec(s.trim());
  if (!m) return null;
  const body = (m[2] as string).trim().replace(/\\\\\s*$/, '');
  return body.split(/\\\\/).map((row) => row.split('&').map((c) => c.trim()));
}

/** Expands one `\pm`/`\mp` into its two values: `3\pm2` → ['3+2', '3-2']; unchanged otherwise. */
export function expandPlusMinus(s: string): string[] {
  const m = /\\(pm|mp)(?![A-Za-z])/.exec(s);
  if (!m || /\\(?:pm|mp)(?![A-Za-z])/.test(s.slice(m.index + 3))) return [s];
  const before = s.slice(0, m.index);
  const after = s.slice(m.index + m[0].length);
  const [first, second] = m[1] === 'pm' ? ['+', '-'] : ['-', '+'];
  return [`${before}${first}${after}`, `${before}${second}${after}`];
}

/** A multiple-choice letter such as `(C)`, `C`, `\text{(C)}` → 'C'; null otherwise. */
export function choiceLetter(s: string): string | null {
  const m = /^\(([A-Ea-e])\)$|^([A-E])$/.exec(unwrapText(s).replace(/\s+/g, ''));
  return m ? (m[1] ?? (m[2] as string)).toUpperCase() : null;
}
