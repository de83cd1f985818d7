// Text pictures of boolean masks, as drawn in the spec (§3.3, §3.4): one line per query row, one
// character per key, 'x' = attend and '.' = blocked. For tests and debugging output; leaves out labels.
//
// Shape legend: T = sequence length; masks are row-major Uint8Array [T*T].

/**
 * Parses T lines of T characters ('x' = 1, '.' = 0; spaces are ignored) into a [T*T] mask. A line may
 * be shorter than T: the missing trailing characters are '.', so the spec's lower-triangular drawings
 * can be pasted as they are.
 */
export function parseMask(lines: readonly string[]): Uint8Array {
  const T = lines.length;
  const out = new Uint8Array(T * T);
  lines.forEach((line, q) => {
    const cells = line.replace(/\s+/g, '');
    if (cells.length > T) throw new Error(`parseMask: row ${q} has ${cells.length} cells but the mask is [${T},${T}]`);
    for (let k = 0; k < cells.length; k++) {
      const c = cells[k];
      if (c === 'x') out[q * T + k] = 1;
      else if (c !== '.') throw new Error(`parseMask: row ${q} column ${k} is '${c}', expected 'x' or '.'`);
    }
  });
  return out;
}

/** Formats a [T*T] mask as T lines of 'x'/'.' (the inverse of parseMask on full-width lines). */
export function formatMask(mask: Uint8Array, T: number): string[] {
  if (mask.length !== T * T) throw new Error(`formatMask: mask has length ${mask.length}, expected T*T = ${T}*${T}`);
  const lines: string[] = [];
  for (let q = 0; q < T; q++) {
    let line = '';
    for (let k = 0; k < T; k++) line += mask[q * T + k] ? 'x' : '.';
    lines.push(line);
  }
  return lines;
}
