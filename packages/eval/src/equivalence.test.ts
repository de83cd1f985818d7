import { describe, expect, it } from 'vitest';
import { compareAnswers, datasetAnswerKind, isEquivalent, type AnswerKind } from './equivalence.js';
import { normalizeLatex } from './latex.js';
import { numbersClose, parseNumber } from './number.js';

type Case = [pred: string, gold: string, equal: boolean];

function check(kind: AnswerKind, cases: Case[]): void {
  const wrong = cases.filter(([p, g, eq]) => isEquivalent(p, g, kind) !== eq);
  expect(wrong).toEqual([]);
}

describe('datasetAnswerKind', () => {
  it('maps every dataset to its kind', () => {
    expect(datasetAnswerKind('math500')).toBe('latex');
    expect(datasetAnswerKind('aime24')).toBe('integer');
    expect(datasetAnswerKind('multiplication')).toBe('integer');
    for (const d of ['gsm8k-train', 'gsm8k-test', 'gsm8k-aug-test', 'gsm8k-aug-valid', 'svamp', 'multiarith', 'gsm-hard'] as const) {
      expect(datasetAnswerKind(d)).toBe('numeric');
    }
  });
});

describe('numeric answers (GSM8K family)', () => {
  it('reads separators, dollar signs, units, percent and trailing periods', () => {
    expect(parseNumber('\\$1,000.')?.value).toBe(1000);
    expect(parseNumber('-9,867,630')?.value).toBe(-9867630);
    expect(parseNumber('3.5 hours')?.value).toBe(3.5);
    expect(parseNumber('\\frac{7}{2}')?.value).toBe(3.5);
    expect(parseNumber('x = 18')?.value).toBe(18);
    expect(parseNumber('2,12')).toBeNull();
    expect(parseNumber('abc')).toBeNull();
  });

  it('uses abs 1e-4 or rel 1e-13, whichever is larger', () => {
    expect(numbersClose(0.00009, 0)).toBe(true);
    expect(numbersClose(0.00011, 0)).toBe(false);
    expect(numbersClose(14053029.6666667, 14053029.666666666)).toBe(true);
    expect(numbersClose(14053029.67, 14053029.666666666)).toBe(false); // rounding fails, as in the reference
    expect(numbersClose(9284017268534.4 + 0.01, 9284017268534.4)).toBe(true); // float noise: tol 0.93
    expect(numbersClose(9284017268535.4, 9284017268534.4)).toBe(false);
    expect(numbersClose(NaN, NaN)).toBe(false);
  });

  it('judges GSM8K, SVAMP and GSM-Hard edge cases', () => {
    check('numeric', [
      ['2125', '2,125', true],
      ['2,125', '2125', true],
      ['$2,125.00', '2,125', true],
      ['2,126', '2,125', false],
      ['3.50', '3.5', true],
      ['3.5', '3.50', true],
      ['3.05', '3.5', false],
      ['7/2', '3.5', true],
      ['-9,867,630', '-9867630', true],
      ['-9867630.0', '-9867630', true],
      ['9867630', '-9867630', false],
      ['-9867631', '-9867630', false],
      ['-9867640', '-9867630', false],
      ['3244047.1', '3244047.0999999996', true],
      ['9284017268534.4', '9284017268534.4', true],
      ['9284017268535.4', '9284017268534.4', false],
      ['0.0016791648', '0.0016791648', true],
      ['18 dollars', '18', true],
      ['18.', '18', true],
      ['50%', '50', true],
      ['51', '51', true],
      ['fifty-one', '51', false],
      ['', '51', false],
    ]);
    expect(isEquivalent(null, '18', 'numeric')).toBe(false);
  });
});

describe('integer answers (AIME)', () => {
  it('ignores zero padding and rejects non-integers', () => {
    check('integer', [
      ['25', '025', true],
      ['025', '25', true],
      ['0025', '025', true],
      ['25.0', '025', true],
      ['\\text{25}', '025', true],
      ['25.5', '025', false],
      ['26', '025', false],
      ['-25', '025', false],
      ['\\frac{50}{2}', '025', false],
      ['1,000', '1000', true],
      ['abc', '025', false],
      ['123456789012345678901', '123456789012345678901', true],
      ['123456789012345678902', '123456789012345678901', false],
    ]);
  });
});

describe('normalizeLatex', () => {
  it('follows Hendrycks strip_string', () => {
    expect(normalizeLatex('\\left( 3, \\dfrac{\\pi}{2} \\right)')).toBe('(3,\\frac{\\pi}{2})');
    expect(normalizeLatex('\\frac12')).toBe('\\frac{1}{2}');
    expect(normalizeLatex('\\frac{270}7\\text{ degrees}')).toBe('\\frac{270}{7}');
    expect(normalizeLatex('\\tfrac 59')).toBe('\\frac{5}{9}');
    expect(normalizeLatex('30^\\circ')).toBe('30');
    expect(normalizeLatex('\\$32,\\!348')).toBe('32,348');
    expect(normalizeLatex('864 \\mbox{ inches}^2')).toBe('864');
    expect(normalizeLatex('y = 2x + 3')).toBe('2x+3');
    expect(normalizeLatex('x \\in [-2,7]')).toBe('[-2,7]');
    expect(normalizeLatex('11\\sqrt2')).toBe('11\\sqrt{2}');
    expect(normalizeLatex('\\cot x')).toBe('\\cot x');
    expect(normalizeLatex('.35625')).toBe('0.35625');
    expect(normalizeLatex('5\\%.')).toBe('5');
    expect(normalizeLatex('4210_{5}')).toBe('4210_5');
    expect(normalizeLatex('3/4')).toBe('\\frac{3}{4}');
    expect(normalizeLatex('\\text{(C)}')).toBe('(C)');
    expect(normalizeLatex('\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}')).toBe('\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}');
  });
});

describe('LaTeX answers (MATH-500)', () => {
  it('compares numbers, fractions, roots and constants exactly', () => {
    check('latex', [
      ['0.5', '\\frac{1}{2}', true],
      ['\\dfrac{1}{2}', '\\frac12', true],
      ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt{3}}', true],
      ['2\\sqrt{5}', '\\sqrt{20}', true],
      ['\\sqrt{2}/2', '\\frac{\\sqrt2}{2}', true],
      ['1.8', '1\\frac{4}{5}', true],
      ['137.5', '137 \\frac{1}{2}', true],
      ['0.35625', '.35625', true],
      ['6.72\\times10^{-5}', '.0000672', true],
      ['8\\pi', '8 \\pi', true],
      ['25.13', '8\\pi', false],
      ['\\pi', '3.14159', false],
      ['0.3333', '\\frac{1}{3}', false],
      ['\\frac{20000}{\\pi}', '\\frac{20000}{\\pi}', true],
      ['\\frac{2}{0}', '\\frac{1}{0}', false],
      ['2^{10000}', '2^{10001}', false],
      ['9i+6', '6+9i', true],
      ['6-9i', '6+9i', false],
      ['36', '\\$36', true],
      ['32348', '\\$32,\\!348', true],
      ['11111111100', '11,\\! 111,\\! 111,\\! 100', true],
      ['10080', '10,\\!080', true],
      ['10081', '10,\\!080', false],
    ]);
  });

  it('drops units, degrees and short variable prefixes', () => {
    check('latex', [
      ['30', '30^\\circ', true],
      ['30^{\\circ}', '30^\\circ', true],
      ['\\frac{270}{7}', '\\frac{270}7\\text{ degrees}', true],
      ['864', '864 \\mbox{ inches}^2', true],
      ['15', '15\\mbox{ cm}^2', true],
      ['5.4', '5.4 \\text{ cents}', true],
      ['5', 'x=5', true],
      ['x = 6', 'x=5', false],
      ['[-2,7]', 'x \\in [-2,7]', true],
      ['x \\in (5, \\infty)', '(5,\\infty)', true],
    ]);
  });

  it('compares tuples, intervals, unions, sets, lists and matrices element-wise', () => {
    check('latex', [
      ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})', true],
      ['(3,\\pi/2)', '\\left( 3, \\frac{\\pi}{2} \\right)', true],
      ['(3,\\pi)', '\\left( 3, \\frac{\\pi}{2} \\right)', false],
      ['(3,4]', '(3,4]', true],
      ['[3,4]', '(3,4]', false],
      ['(3,4)', '(3,4]', false],
      ['(-\\infty,0]', '(-\\infty, 0]', true],
      ['(-\\infty,0)', '(-\\infty, 0]', false],
      ['(2,12) \\cup (12,102)', '(2,12)\\cup(12,102)', true],
      ['(2,12) \\cup (12,101)', '(2,12)\\cup(12,102)', false],
      ['(2,12)', '(2,12)\\cup(12,102)', false],
      ['(1,-16,-4)', '(1,-16,-4,43)', false],
      ['(1,2)', '(2,1)', false],
      ['\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}', '\\{1\\pm\\sqrt{5},-2\\}', true],
      ['\\{-2, 1+\\sqrt5\\}', '\\{1\\pm\\sqrt{5},-2\\}', false],
      ['1+\\sqrt{19}, 1-\\sqrt{19}', '1 \\pm \\sqrt{19}', true],
      ['1+\\sqrt{19}', '1 \\pm \\sqrt{19}', false],
      ['3, 7, 5', '3, 5, 7', true],
      ['3, 5', '3, 5, 7', false],
      ['1,-2', '-2,1', true],
      ['\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}', '\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}', true],
      ['\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}', '\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}', true],
      ['\\begin{pmatrix} 1/5 \\\\ 18/5 \\end{pmatrix}', '\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}', false],
      ['\\begin{pmatrix} 1/5 & -18/5 \\end{pmatrix}', '\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}', false],
      ['(1/5, -18/5)', '\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}', true],
    ]);
  });

  it('compares expressions and equations symbolically', () => {
    check('latex', [
      ['x^3-6+3x', 'x^3+3x-6', true],
      ['ab+2a+5b+10', '(a+5)(b+2)', true],
      ['ab+2a+5b+11', '(a+5)(b+2)', false],
      ['\\frac{\\cos x}{\\sin x}', '\\cot x', true],
      ['\\tan x', '\\cot x', false],
      ['\\frac{11}{20}+\\frac{9a}{20}', '\\frac{11+9a}{20}', true],
      ['3r^2', '3R^2', false],
      ['-q+p', 'p - q', true],
      ['2x+3', 'y = 2x + 3', true],
      ['y=3+2x', 'y = 2x + 3', true],
      ['2x+4', 'y = 2x + 3', false],
      ['10x-14y+22z+8=0', '5x - 7y + 11z + 4 = 0', true],
      ['5x-7y+11z+5=0', '5x - 7y + 11z + 4 = 0', false],
      ['5x-7y+11z', '5x - 7y + 11z + 4 = 0', false],
    ]);
  });

  it('compares text and multiple-choice answers normalised', () => {
    check('latex', [
      ['C', '\\text{(C)}', true],
      ['(C)', '\\text{(C)}', true],
      ['\\text{(D)}', '\\text{(C)}', false],
      ['Even', '\\text{even}', true],
      ['odd', '\\text{even}', false],
      ['\\text{East}', '\\text{east}', true],
      ['e', '\\text{east}', false],
      ['52_8', '52_8', true],
      ['52', '52_8', false],
      ['4210_5', '4210_{5}', true],
    ]);
    expect(compareAnswers('', '3', 'latex')).toEqual({ equal: false, method: 'none' });
  });
});
