// Splitting a data file into raw records with their 1-based line numbers, so that every later error
// can name file:line. Three layouts: JSON lines, one JSON array of objects (SVAMP), and plain text lines
// (GSM8k-Aug). Blank lines are not records. Parsing the record text is the caller's job; this file
// only finds record boundaries (and throws for a JSON array whose structure is broken).
import { readFileSync, statSync } from 'node:fs';
import { inputError } from '@latent-sft/core';

/** One record: its text and the line on which it starts (1-based). */
export interface RawRecord {
  line: number;
  text: string;
}

/** Reads a UTF-8 file, dropping a leading byte-order mark; a missing file is a one-line UserError. */
export function readTextFile(path: string): string {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) throw inputError({ file: path }, 'file not found (see data/MANIFEST.md for where each file comes from)');
  const text = readFileSync(path, 'utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Non-blank lines (a trailing `\r` removed), each a record; used for JSONL and for plain text lines. */
export function lineRecords(text: string): RawRecord[] {
  const out: RawRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    out.push({ line: i + 1, text: line });
  }
  return out;
}

/**
 * The elements of a top-level JSON array, as text slices with the line each starts on. Strings and
 * nesting are tracked so that commas inside values do not split; a malformed element is returned as
 * is (its JSON.parse fails later, with its own line), but a file that is not an array, or an array
 * that never closes, throws here.
 */
export function jsonArrayRecords(text: string, file: string): RawRecord[] {
  let i = 0;
  let line = 1;
  const n = text.length;
  const skipWs = () => {
    while (i < n && /\s/.test(text[i] as string)) {
      if (text[i] === '\n') line += 1;
      i += 1;
    }
  };
  skipWs();
  if (text[i] !== '[') throw inputError({ file, line }, 'expected a JSON array of objects');
  i += 1;
  const out: RawRecord[] = [];
  skipWs();
  if (text[i] === ']') i += 1;
  else {
    for (;;) {
      skipWs();
      const start = i;
      const startLine = line;
      let depth = 0;
      let inString = false;
      while (i < n) {
        const c = text[i] as string;
        if (inString) {
          if (c === '\\') i += 1;
          else if (c === '"') inString = false;
          else if (c === '\n') line += 1;
        } else if (c === '"') inString = true;
        else if (c === '{' || c === '[') depth += 1;
        else if (c === '}' || (c === ']' && depth > 0)) depth -= 1;
        else if (depth <= 0 && (c === ',' || c === ']')) break;
        else if (c === '\n') line += 1;
        i += 1;
      }
      if (i >= n) throw inputError({ file, line }, 'JSON array is not closed (missing "]")');
      out.push({ line: startLine, text: text.slice(start, i).trim() });
      const sep = text[i];
      i += 1;
      if (sep === ']') break;
    }
  }
  skipWs();
  if (i < n) throw inputError({ file, line }, 'unexpected text after the closing "]" of the JSON array');
  return out;
}
