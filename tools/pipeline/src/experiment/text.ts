// Text the experiment driver writes for people to read or paste: rerun commands (POSIX shell words)
// and table.md cells (Markdown).

/** One POSIX shell word that the shell reads back as exactly `s` (single-quoted unless plainly safe). */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A command line of shell words, each quoted as needed. */
export function shellCommand(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/** Text shown literally in Markdown (and inside a table cell): markup characters backslash-escaped, line breaks as spaces. */
export function markdownText(s: string): string {
  return s.replace(/\r?\n|\r/g, ' ').replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`);
}

/** Code inside a Markdown table cell: a backtick fence longer than any backtick run in it, `|` escaped. */
export function markdownCode(s: string): string {
  const longest = Math.max(0, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const body = s.replace(/\r?\n|\r/g, ' ').replaceAll('|', '\\|');
  return `${fence}${body.startsWith('`') || body.endsWith('`') ? ` ${body} ` : body}${fence}`;
}
