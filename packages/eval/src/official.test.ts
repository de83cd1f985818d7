// The official rule (Latent-SFT's eval_utils/parser.py extract_answer + grader.py check_is_correct) against
// the lenient rule, one raw output per row. Expected extractions and verdicts were worked out by reading
// the reference code (the comment of each row names the rule it exercises).
import { describe, expect, it } from 'vitest';
import type { AnswerKind } from './equivalence.js';
import { extractOfficial } from './extract.js';
import { OFFICIAL_ABS_TOL, officialCompare, parseDigits, pyIsClose, pythonFloat } from './official.js';
import { judgeBoth } from './score.js';

interface Row {
  rule: string;
  kind: AnswerKind;
  output: string;
  gold: string;
  official: [string | null, boolean];
  lenient: [string | null, boolean];
}

const ROWS: Row[] = [
  { rule: 'last boxed, trailing text', kind: 'numeric', output: 'so \\boxed{42}.', gold: '42', official: ['42', true], lenient: ['42', true] },
  { rule: 'no boxed: empty, no fallback', kind: 'numeric', output: 'The answer is 42', gold: '42', official: [null, false], lenient: ['42', true] },
  { rule: 'no boxed: #### is not read', kind: 'numeric', output: 'x\n#### 42', gold: '42', official: [null, false], lenient: ['42', true] },
  { rule: 'the LAST box wins', kind: 'numeric', output: '\\boxed{41} no, \\boxed{42}', gold: '42', official: ['42', true], lenient: ['42', true] },
  {
    rule: "bare word 'boxed' counts; cut at $",
    kind: 'numeric',
    output: 'the unboxed value 42$ ok',
    gold: '42',
    official: ['value 42', false],
    lenient: ['42', true],
  },
  { rule: 'gold/100 accepted', kind: 'integer', output: '\\boxed{42}', gold: '4200', official: ['42', true], lenient: ['42', false] },
  { rule: 'gold*100 accepted', kind: 'integer', output: '\\boxed{4200}', gold: '42', official: ['4200', true], lenient: ['4200', false] },
  { rule: 'percent stripped, then x100', kind: 'numeric', output: '\\boxed{50\\%}', gold: '0.5', official: ['50\\%', true], lenient: ['50\\%', false] },
  { rule: 'unclosed box keeps the rest', kind: 'numeric', output: 'so \\boxed{12', gold: '12', official: ['12', true], lenient: ['12', true] },
  { rule: 'newline + indent removed', kind: 'numeric', output: '\\boxed{1\n  2}', gold: '12', official: ['12', true], lenient: ['1  2', false] },
  { rule: "':' and '.' cut", kind: 'numeric', output: '\\boxed{:42.}', gold: '42', official: ['42', true], lenient: ['42', true] },
  { rule: "'ки' dropped", kind: 'numeric', output: '\\boxed{4ки2}', gold: '42', official: ['42', true], lenient: ['4ки2', false] },
  { rule: 'abs_tol 1e-4 inside', kind: 'numeric', output: '\\boxed{3.00005}', gold: '3', official: ['3.00005', true], lenient: ['3.00005', true] },
  { rule: 'abs_tol 1e-4 outside', kind: 'numeric', output: '\\boxed{3.001}', gold: '3', official: ['3.001', false], lenient: ['3.001', false] },
  { rule: 'commas removed by parse_digits', kind: 'numeric', output: '\\boxed{1,000}', gold: '1000', official: ['1,000', true], lenient: ['1,000', true] },
  { rule: 'comma parts compared sorted', kind: 'latex', output: '\\boxed{2, 1}', gold: '1,2', official: ['2, 1', true], lenient: ['2, 1', true] },
  { rule: '\\fbox is not boxed', kind: 'numeric', output: '\\fbox{7}', gold: '7', official: [null, false], lenient: ['7', true] },
  { rule: 'symbolic (sympy) equality', kind: 'latex', output: '\\boxed{2(x+1)}', gold: '2x+2', official: ['2(x+1)', true], lenient: ['2(x+1)', true] },
  { rule: 'number vs fraction via symbolic', kind: 'latex', output: '\\boxed{0.5}', gold: '\\frac{1}{2}', official: ['0.5', true], lenient: ['0.5', true] },
  { rule: 'case-insensitive strings', kind: 'latex', output: '\\boxed{Even}', gold: 'even', official: ['Even', true], lenient: ['Even', true] },
];

describe('official vs lenient rule', () => {
  it.each(ROWS)('$rule: $output', (row) => {
    const j = judgeBoth(row.output, row.gold, row.kind);
    expect([j.official.extracted, j.official.correct]).toEqual(row.official);
    expect([j.lenient.extracted, j.lenient.correct]).toEqual(row.lenient);
  });
});

describe('extractOfficial', () => {
  it('follows parser.py on edge cases', () => {
    expect(extractOfficial('ends with boxed')).toBe(''); // nothing after the last 'boxed'
    expect(extractOfficial('\\boxed{}')).toBe('');
    expect(extractOfficial('\\boxed{\\{1}')).toBe('\\{1}'); // escaped braces count: the box never closes
    expect(extractOfficial('\\boxed{\\frac{1}{2}} and $x$')).toBe('\\frac{1}{2}');
    expect(extractOfficial('\\boxed{ 7 }')).toBe(' 7 '); // no trimming inside braces
    expect(extractOfficial('\\boxed{5/}')).toBe('5'); // trailing '/' cut
    expect(extractOfficial('\\boxed{5./}')).toBe('5.'); // '.' is checked before '/', once each
  });
});

describe('grader primitives', () => {
  it('reads numbers as Python float() and parse_digits do', () => {
    expect(pythonFloat(' 1e3 ')).toBe(1000);
    expect(pythonFloat('1_000.5')).toBe(1000.5);
    expect(pythonFloat('-.5')).toBe(-0.5);
    expect(pythonFloat('5.')).toBe(5);
    expect(pythonFloat('-inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(pythonFloat('')).toBeNull();
    expect(pythonFloat('0x10')).toBeNull();
    expect(parseDigits('12,345')).toBe(12345);
    expect(parseDigits('50%')).toBe(0.5);
    expect(parseDigits('50\\%')).toBe(0.5);
    expect(parseDigits('abc')).toBeNull();
  });

  it('is math.isclose with rel_tol 1e-9 and abs_tol 1e-4', () => {
    expect(pyIsClose(1, 1 + OFFICIAL_ABS_TOL)).toBe(true);
    expect(pyIsClose(1, 1 + 2 * OFFICIAL_ABS_TOL)).toBe(false);
    expect(pyIsClose(1e9, 1e9 + 0.9)).toBe(true); // rel: 1e-9 · 1e9 = 1
    expect(pyIsClose(1e9, 1e9 + 1.1)).toBe(false);
    expect(pyIsClose(Number.NaN, Number.NaN)).toBe(false);
  });

  it('decides on numbers alone when both sides are numbers', () => {
    expect(officialCompare('2', '4')).toEqual({ equal: false, method: 'number' });
    expect(officialCompare(null, '4')).toEqual({ equal: false, method: 'none' });
    expect(officialCompare('', '4').equal).toBe(false);
  });
});
