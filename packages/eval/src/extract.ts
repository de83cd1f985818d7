// Answer extraction from model output. `official` is Latent-SFT's parser (eval_utils/parser.py
// `extract_answer`, spec §5.3) as it behaves: the text after the last `boxed`, nothing else. The other
// sources — the last `\boxed{…}` (brace-balanced, escapes honoured), GSM8K's `#### x` line and the last
// number — are tried in an explicit, configurable order (the fallback chain); `lenient` = boxed → #### →
// last number, for models that forget the box. Reported numbers use `official`; lenient is shown beside it.

/** One way of finding the answer in a completion. */
export type AnswerSource = 'official' | 'boxed' | 'hashes' | 'lastNumber';

/**
 * Named chains: `official` = Latent-SFT's parser exactly (extractOfficial), `reference` = our brace-aware
 * `\boxed{}` only, `lenient` = boxed → #### → last number.
 */
export type ExtractionMode = 'official' | 'reference' | 'lenient';

export const EXTRACTION_MODES: readonly ExtractionMode[] = ['official', 'reference', 'lenient'];

/** The fallback chain of each mode, tried in order; the first source that finds something wins. */
export const EXTRACTION_CHAINS: Readonly<Record<ExtractionMode, readonly AnswerSource[]>> = {
  official: ['official'],
  reference: ['boxed'],
  lenient: ['boxed', 'hashes', 'lastNumber'],
};

/** The mode used when none is given: `official` (the reported numbers). */
export const DEFAULT_EXTRACTION_MODE: ExtractionMode = 'official';

export interface ExtractOptions {
  /** A named chain (default `official`); ignored when `chain` is given. */
  mode?: ExtractionMode;
  /** An explicit chain, e.g. `['hashes', 'boxed']`. */
  chain?: readonly AnswerSource[];
}

/** The extracted answer (null when no source found one) and which source produced it. */
export interface Extraction {
  answer: string | null;
  source: AnswerSource | null;
}

const BOX_COMMANDS = ['\\boxed', '\\fbox'] as const;

/** The reference's clean-up of an extracted answer: no newlines, no leading ':', no trailing '.' or '/'. */
function tidy(s: string): string {
  let t = s.replace(/\n/g, '').trim();
  if (t.startsWith(':')) t = t.slice(1).trim();
  while (t.endsWith('.') || t.endsWith('/')) t = t.slice(0, -1).trimEnd();
  return t;
}

/**
 * Index just past the brace group that opens at `open` (s[open] === '{'), or -1 when it never closes.
 * Escaped braces `\{` `\}` do not count, so `\boxed{\{1,2\}}` yields `\{1,2\}`.
 */
function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i += 1; // skip the escaped character (covers \{ \} \\)
      continue;
    }
    if (c === '{') depth += 1;
    else if (c === '}') {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * The content of the last `\boxed{…}` or `\fbox{…}` in text (nested braces balanced), or of a brace-less
 * `\boxed 5` (cut at the next `$`, as the reference does). Null when there is no box or its braces never
 * close (a truncated completion).
 */
export function extractBoxed(text: string): string | null {
  let at = -1;
  let cmd = '';
  for (const c of BOX_COMMANDS) {
    // The last occurrence that is a whole command (not e.g. `\boxedx`).
    let i = text.lastIndexOf(c);
    while (i >= 0 && /[A-Za-z]/.test(text[i + c.length] ?? '')) i = i > 0 ? text.lastIndexOf(c, i - 1) : -1;
    if (i > at) {
      at = i;
      cmd = c;
    }
  }
  if (at < 0) return null;
  let j = at + cmd.length;
  while (text[j] === ' ') j += 1;
  if (text[j] === '{') {
    const end = matchBrace(text, j);
    if (end < 0) return null;
    return tidy(text.slice(j + 1, end - 1));
  }
  const dollar = text.indexOf('$', j);
  return tidy(text.slice(j, dollar < 0 ? undefined : dollar));
}

/** The text after the last `####` up to the end of that line (GSM8K's answer line), or null. */
export function extractHashes(text: string): string | null {
  const i = text.lastIndexOf('####');
  if (i < 0) return null;
  const rest = text.slice(i + 4).split('\n')[0] ?? '';
  const t = tidy(rest);
  return t === '' ? null : t;
}

/**
 * The last number in the text: optional minus (only when not a binary minus after a digit, letter or
 * `)`), digits with optional thousands commas, optional decimals. Null when the text has no digits.
 */
export function extractLastNumber(text: string): string | null {
  const re = /-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+/g;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) last = m;
  if (last === null) return null;
  let s = last[0];
  if (s.startsWith('-') && /[\w)\]]/.test(text[last.index - 1] ?? '')) s = s.slice(1);
  return s;
}

/**
 * Latent-SFT's `extract_answer` as it behaves (read from eval_utils/parser.py): drop every 'ки'; with no
 * 'boxed' anywhere (the bare word counts, no backslash needed) the answer is empty (null here). Else take
 * the text after the LAST 'boxed': empty → ''; starting with '{' → the characters up to the brace that
 * closes it (every '{' and '}' counts, escaped or not; an unclosed box keeps the whole rest); otherwise
 * the text before the first '$', trimmed. Then newlines and the whitespace after them are removed, one
 * leading ':' and one trailing '.' then one trailing '/' are cut. No trimming inside braces, no fallback.
 */
export function extractOfficial(text: string): string | null {
  const t = text.replaceAll('\u043a\u0438', '');
  const at = t.lastIndexOf('boxed');
  if (at < 0) return null;
  const ans = t.slice(at + 'boxed'.length);
  let pred: string;
  if (ans.length === 0) return '';
  if (ans[0] === '{') {
    let depth = 1;
    let end = ans.length;
    for (let i = 1; i < ans.length; i++) {
      if (ans[i] === '{') depth += 1;
      else if (ans[i] === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
    pred = ans.slice(1, end);
  } else {
    pred = (ans.split('$')[0] as string).trim();
  }
  pred = pred.replace(/\n\s*/g, '');
  if (pred.startsWith(':')) pred = pred.slice(1);
  if (pred.endsWith('.')) pred = pred.slice(0, -1);
  if (pred.endsWith('/')) pred = pred.slice(0, -1);
  return pred;
}

const EXTRACTORS: Record<AnswerSource, (text: string) => string | null> = {
  official: extractOfficial,
  boxed: extractBoxed,
  hashes: extractHashes,
  lastNumber: extractLastNumber,
};

/** Resolves options to the chain that extractAnswer will try. */
export function extractionChain(opts: ExtractOptions = {}): readonly AnswerSource[] {
  return opts.chain ?? EXTRACTION_CHAINS[opts.mode ?? DEFAULT_EXTRACTION_MODE];
}

/**
 * Extracts the final answer from a completion by trying each source of the chain in order (default
 * `official`: Latent-SFT's parser; `lenient`: boxed → #### → last number; `reference`: `\boxed{}` only).
 */
export function extractAnswer(text: string, opts: ExtractOptions = {}): Extraction {
  for (const source of extractionChain(opts)) {
    const answer = EXTRACTORS[source](text);
    if (answer !== null) return { answer, source };
  }
  return { answer: null, source: null };
}
