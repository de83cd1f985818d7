import { describe, expect, it } from 'vitest';
import { EXTRACTION_CHAINS, extractAnswer, extractBoxed, extractHashes, extractLastNumber, extractionChain } from './extract.js';

describe('extractBoxed', () => {
  it('takes the last box, balancing nested braces', () => {
    expect(extractBoxed('first \\boxed{1} then \\boxed{\\frac{\\sqrt{3}}{2}} done')).toBe('\\frac{\\sqrt{3}}{2}');
    expect(extractBoxed('$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.')).toBe('\\left( 3, \\frac{\\pi}{2} \\right)');
    expect(extractBoxed('\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}')).toBe('\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}');
  });

  it('ignores escaped braces when balancing', () => {
    expect(extractBoxed('so $\\boxed{\\{1\\pm\\sqrt{5},-2\\}}$')).toBe('\\{1\\pm\\sqrt{5},-2\\}');
    expect(extractBoxed('\\boxed{\\}}')).toBe('\\}');
  });

  it('reads \\fbox and the brace-less form cut at $', () => {
    expect(extractBoxed('answer \\fbox{42} ok')).toBe('42');
    expect(extractBoxed('$\\boxed 5$ apples')).toBe('5');
    expect(extractBoxed('\\boxed{1} and later \\fbox{2}')).toBe('2');
    expect(extractBoxed('\\fbox{2} and later \\boxed{1}')).toBe('1');
  });

  it('applies the reference clean-up and rejects truncated or missing boxes', () => {
    expect(extractBoxed('\\boxed{: 18.}')).toBe('18');
    expect(extractBoxed('\\boxed{}')).toBe('');
    expect(extractBoxed('\\boxed{\\frac{1}{2}')).toBeNull();
    expect(extractBoxed('no box here: 18')).toBeNull();
    expect(extractBoxed('\\boxedx{3}')).toBeNull();
  });
});

describe('extractHashes and extractLastNumber', () => {
  it('reads the #### line', () => {
    expect(extractHashes('She makes $18.\n#### 18')).toBe('18');
    expect(extractHashes('#### 2,125\nextra')).toBe('2,125');
    expect(extractHashes('#### \n')).toBeNull();
    expect(extractHashes('no marker')).toBeNull();
  });

  it('finds the last number, with separators, decimals and a unary minus only', () => {
    expect(extractLastNumber('16 - 3 - 4 = 9 eggs, so $18.')).toBe('18');
    expect(extractLastNumber('total 1,234,567.5 dollars')).toBe('1,234,567.5');
    expect(extractLastNumber('it drops to -9867630.')).toBe('-9867630');
    expect(extractLastNumber('5-3')).toBe('3');
    expect(extractLastNumber('x is .5')).toBe('.5');
    expect(extractLastNumber('none')).toBeNull();
  });
});

describe('extractAnswer', () => {
  const text = 'so 3 + 4 = 7\n#### 7\n';
  it('follows the official parser by default and the lenient chain (boxed, ####, last number) on request', () => {
    expect(extractionChain()).toEqual(['official']);
    expect(extractAnswer('\\boxed{5} #### 6')).toEqual({ answer: '5', source: 'official' });
    expect(extractAnswer(text)).toEqual({ answer: null, source: null });
    const lenient = { mode: 'lenient' } as const;
    expect(extractionChain(lenient)).toEqual(['boxed', 'hashes', 'lastNumber']);
    expect(extractAnswer('\\boxed{5} #### 6', lenient)).toEqual({ answer: '5', source: 'boxed' });
    expect(extractAnswer(text, lenient)).toEqual({ answer: '7', source: 'hashes' });
    expect(extractAnswer('the answer is 12 apples', lenient)).toEqual({ answer: '12', source: 'lastNumber' });
    expect(extractAnswer('no answer', lenient)).toEqual({ answer: null, source: null });
  });

  it('uses only the box in reference mode, and any explicit chain', () => {
    expect(EXTRACTION_CHAINS.reference).toEqual(['boxed']);
    expect(extractAnswer(text, { mode: 'reference' })).toEqual({ answer: null, source: null });
    expect(extractAnswer('\\boxed{5} #### 6', { chain: ['hashes', 'boxed'] })).toEqual({ answer: '6', source: 'hashes' });
    expect(extractAnswer('12 apples', { chain: ['boxed', 'hashes'] }).answer).toBeNull();
  });
});
