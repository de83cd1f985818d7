// Numeric comparison with numpy's rule |actual - expected| <= atol + rtol * |expected|, over numbers,
// typed arrays and nested arrays of any depth. Shapes must agree; NaN equals NaN only when both are NaN.

/** A number, a flat typed/plain array, or arbitrarily nested arrays of numbers. */
export type Numeric = number | bigint | ArrayLike<number> | ArrayLike<bigint> | readonly Numeric[];

export interface AllcloseOptions {
  /** Absolute tolerance (default 1e-8, as numpy). */
  atol?: number;
  /** Relative tolerance (default 1e-5, as numpy). */
  rtol?: number;
}

export interface AllcloseReport {
  pass: boolean;
  /** Why it failed when the values were not compared (shape mismatch); empty otherwise. */
  reason: string;
  count: number;
  mismatches: number;
  maxAbsError: number;
  maxRelError: number;
  /** Up to five failing positions: flat index, actual, expected. */
  worst: Array<{ index: number; actual: number; expected: number }>;
}

/** Flattens a numeric value into values and a shape (typed arrays count as rank 1). */
export function flattenNumeric(x: Numeric): { values: number[]; shape: number[] } {
  if (typeof x === 'number' || typeof x === 'bigint') return { values: [Number(x)], shape: [] };
  const len = x.length;
  const first = len > 0 ? (x as ArrayLike<unknown>)[0] : undefined;
  if (len > 0 && (Array.isArray(first) || ArrayBuffer.isView(first))) {
    const values: number[] = [];
    let inner: number[] | undefined;
    for (let i = 0; i < len; i++) {
      const sub = flattenNumeric((x as ArrayLike<Numeric>)[i] as Numeric);
      if (inner && sub.shape.join(',') !== inner.join(',')) {
        throw new Error(`ragged array: row ${i} has shape [${sub.shape}] but row 0 has [${inner}]`);
      }
      inner = sub.shape;
      for (const v of sub.values) values.push(v);
    }
    return { values, shape: [len, ...(inner ?? [])] };
  }
  const values = new Array<number>(len);
  for (let i = 0; i < len; i++) values[i] = Number((x as ArrayLike<number | bigint>)[i]);
  return { values, shape: [len] };
}

/** Compares actual with expected element-wise; never throws for a value mismatch. */
export function allclose(actual: Numeric, expected: Numeric, opts: AllcloseOptions = {}): AllcloseReport {
  const atol = opts.atol ?? 1e-8;
  const rtol = opts.rtol ?? 1e-5;
  const a = flattenNumeric(actual);
  const e = flattenNumeric(expected);
  const report: AllcloseReport = {
    pass: true,
    reason: '',
    count: a.values.length,
    mismatches: 0,
    maxAbsError: 0,
    maxRelError: 0,
    worst: [],
  };
  // Typed arrays are flat: accept a flat actual against a nested expected of the same size.
  const shapesAgree = a.shape.join(',') === e.shape.join(',') || ((a.shape.length === 1 || e.shape.length === 1) && a.values.length === e.values.length);
  if (!shapesAgree) {
    return { ...report, pass: false, reason: `shape [${a.shape}] != expected shape [${e.shape}]` };
  }
  const bad: Array<{ index: number; actual: number; expected: number; err: number }> = [];
  for (let i = 0; i < a.values.length; i++) {
    const x = a.values[i] as number;
    const y = e.values[i] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      bad.push({ index: i, actual: x, expected: y, err: Infinity });
      continue;
    }
    if (x === y) continue; // also equal infinities
    const abs = Math.abs(x - y);
    const rel = abs / Math.max(Math.abs(y), Number.MIN_VALUE);
    if (abs > report.maxAbsError) report.maxAbsError = abs;
    if (rel > report.maxRelError) report.maxRelError = rel;
    if (!(abs <= atol + rtol * Math.abs(y))) bad.push({ index: i, actual: x, expected: y, err: abs });
  }
  report.mismatches = bad.length;
  report.pass = bad.length === 0;
  bad.sort((p, q) => q.err - p.err);
  report.worst = bad.slice(0, 5).map(({ index, actual: av, expected: ev }) => ({ index, actual: av, expected: ev }));
  return report;
}

/** A readable one-paragraph description of a failed comparison. */
export function describeAllclose(r: AllcloseReport, opts: AllcloseOptions = {}): string {
  if (r.reason) return r.reason;
  const tol = `atol=${opts.atol ?? 1e-8}, rtol=${opts.rtol ?? 1e-5}`;
  const rows = r.worst.map((w) => `  [${w.index}] actual ${w.actual} expected ${w.expected}`).join('\n');
  return `${r.mismatches}/${r.count} values differ (${tol}); max abs error ${r.maxAbsError}, ` + `max rel error ${r.maxRelError}; worst:\n${rows}`;
}
