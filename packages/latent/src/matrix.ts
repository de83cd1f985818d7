// Row-major matrices with their shape attached, and the entry checks every latent-math function
// runs. Leaves out any arithmetic beyond shape bookkeeping (softmax.ts and the op files do that).
//
// Shape legend used across @latent-sft/latent: m = number of latents (rows), V = vocabulary size,
// d = hidden size, k = top-k width, T = number of generated latents (parallelism), M = paths.

/** Float storage accepted as input; outputs are always Float64Array (the math runs in fp64). */
export type FloatArray = Float32Array | Float64Array;

/** A row-major [rows, cols] matrix: entry (i, j) is data[i * cols + j]. */
export interface Matrix<A extends ArrayLike<number> = FloatArray> {
  readonly data: A;
  readonly rows: number;
  readonly cols: number;
}

/** Wraps flat data as a [rows, cols] matrix; throws if the length does not match. */
export function matrix<A extends ArrayLike<number>>(data: A, rows: number, cols: number): Matrix<A> {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`matrix: shape [${rows},${cols}] must be non-negative integers`);
  }
  if (data.length !== rows * cols) {
    throw new Error(`matrix: data of length ${data.length} does not fit shape [${rows},${cols}]`);
  }
  return { data, rows, cols };
}

/** "[rows,cols]" for error messages. */
export function shapeOf(x: Matrix<ArrayLike<number>>): string {
  return `[${x.rows},${x.cols}]`;
}

/** Throws unless x is a consistent matrix; `name` and `fn` go into the message. */
export function checkMatrix(fn: string, name: string, x: Matrix<ArrayLike<number>>): void {
  if (!Number.isInteger(x.rows) || !Number.isInteger(x.cols) || x.rows < 0 || x.cols < 0 || x.data.length !== x.rows * x.cols) {
    throw new Error(`${fn}: ${name} has shape [${x.rows},${x.cols}] but ${x.data.length} values`);
  }
}

/** Throws unless two matrices have the same shape. */
export function checkSameShape(fn: string, a: [string, Matrix<ArrayLike<number>>], b: [string, Matrix<ArrayLike<number>>]): void {
  checkMatrix(fn, a[0], a[1]);
  checkMatrix(fn, b[0], b[1]);
  if (a[1].rows !== b[1].rows || a[1].cols !== b[1].cols) {
    throw new Error(`${fn}: ${a[0]} has shape ${shapeOf(a[1])} but ${b[0]} has shape ${shapeOf(b[1])}`);
  }
}

/** Throws unless every entry is a finite number >= 0 (probabilities, before any renormalisation). */
export function checkProbabilities(fn: string, name: string, x: Matrix<ArrayLike<number>>): void {
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i] as number;
    if (!(v >= 0 && v < Infinity)) {
      throw new Error(`${fn}: ${name}[${Math.floor(i / x.cols)},${i % x.cols}] = ${v} is not a finite probability (shape ${shapeOf(x)})`);
    }
  }
}

/** Throws unless every index is an integer in [0, V). */
export function checkIndices(fn: string, name: string, x: Matrix<ArrayLike<number>>, V: number): void {
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i] as number;
    if (!Number.isInteger(v) || v < 0 || v >= V) {
      throw new Error(`${fn}: ${name}[${Math.floor(i / x.cols)},${i % x.cols}] = ${v} is not a token id in [0, V=${V}) (shape ${shapeOf(x)})`);
    }
  }
}
