// The message of the one-line error a call must throw (the project's rule for bad input).

/** Calls `f` and returns the message it throws; fails when it does not throw or the message spans lines. */
export function oneLineError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    const m = (e as Error).message;
    if (m.includes('\n')) throw new Error(`expected a one-line error, got:\n${m}`);
    return m;
  }
  throw new Error('did not throw');
}
