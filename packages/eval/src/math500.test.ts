// The scorer against the MATH-500 gold data: every gold `answer` must be judged equal to the last box of
// its own `solution` (self-consistency), to a re-typeset variant of itself, and unequal to perturbed
// copies of itself. Exception counts are asserted exactly, so any regression fails.
import { loadDataset, type Problem } from '@latent-sft/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareAnswers } from './equivalence.js';
import { extractBoxed } from './extract.js';
import { normalizeLatex, parseBracketed, splitTopLevel } from './latex.js';

let problems: Problem[] = [];
beforeAll(() => {
  problems = loadDataset('math500').problems;
});

describe('MATH-500 self-consistency', () => {
  it('judges every gold answer equal to the last \\boxed{} of its solution', () => {
    expect(problems).toHaveLength(500);
    // Measured: 500/500 (100%); no exceptions. All 500 boxes are byte-identical to `answer`.
    const exceptions = problems.filter((p) => !compareAnswers(extractBoxed(p.solution ?? ''), p.answer, 'latex').equal);
    expect(exceptions.map((p) => p.id)).toEqual([]);
  });

  it('judges every gold answer equal to a re-typeset copy (dfrac, \\left( \\right), spaces, final period)', () => {
    const retype = (a: string) =>
      `${a
        .replace(/\\frac/g, '\\dfrac')
        .replace(/,(?!\\!)/g, ', ')
        .replace(/^\(/, '\\left(')
        .replace(/\)$/, '\\right)')} .`;
    const exceptions = problems.filter((p) => !compareAnswers(retype(p.answer), p.answer, 'latex').equal);
    expect(exceptions.map((p) => [p.id, p.answer])).toEqual([]);
  });
});

/** Replaces the first digit d by (d + 1) mod 10; null when there is no digit. */
function changeDigit(s: string): string | null {
  const i = s.search(/\d/);
  return i < 0 ? null : `${s.slice(0, i)}${(Number(s[i]) + 1) % 10}${s.slice(i + 1)}`;
}

/** Negates the value: the right side of an equation, the first item of a tuple, or the whole answer. */
function flipSign(s: string): string {
  const n = normalizeLatex(s);
  const eq = splitTopLevel(n, '=');
  if (eq.length === 2) return `${eq[0]}=-(${eq[1]})`;
  const br = parseBracketed(n);
  if (br) return `${br.open}-(${br.items[0]}),${br.items.slice(1).join(',')}${br.close}`;
  return n.startsWith('-') ? n.slice(1) : `-${n}`;
}

/** Swaps the opening bracket of a tuple or interval: ( ↔ [. */
function swapBrackets(s: string): string | null {
  const br = parseBracketed(normalizeLatex(s));
  if (!br || br.open === '\\{') return null;
  return `${br.open === '(' ? '[' : '('}${br.items.join(',')}${br.close}`;
}

/** Drops the last element of a tuple, interval, set or list. */
function dropElement(s: string): string | null {
  const n = normalizeLatex(s);
  const br = parseBracketed(n);
  if (br) return `${br.open}${br.items.slice(0, -1).join(',')}${br.close}`;
  const items = splitTopLevel(n, ',');
  return items.length > 1 && !/^-?\d{1,3}(,\d{3})+$/.test(n) ? items.slice(0, -1).join(',') : null;
}

describe('MATH-500 perturbations', () => {
  it('judges >= 99% of perturbed gold answers unequal', () => {
    // Problem i gets: i%4 = 0 change a digit, 1 flip the sign, 2 swap interval brackets, 3 drop a tuple
    // element; where a perturbation does not apply, a digit change, else a sign flip.
    const results = problems.map((p, i) => {
      let how = ['digit', 'sign', 'swap', 'drop'][i % 4] as string;
      let q: string | null = null;
      if (how === 'swap') q = swapBrackets(p.answer);
      if (how === 'drop') q = dropElement(p.answer);
      if (how === 'sign') q = flipSign(p.answer);
      if (q === null) [how, q] = ['digit', changeDigit(p.answer)];
      if (q === null) [how, q] = ['sign', flipSign(p.answer)];
      return { id: p.id, how, perturbed: q, gold: p.answer, equal: compareAnswers(q, p.answer, 'latex').equal };
    });
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.how] = (counts[r.how] ?? 0) + 1;
    // Every kind of perturbation is exercised.
    expect(Object.keys(counts).sort()).toEqual(['digit', 'drop', 'sign', 'swap']);
    const exceptions = results.filter((r) => r.equal).map((r) => `${r.id}: ${r.perturbed} vs ${r.gold}`);
    // Measured: 498/500 judged unequal (99.6%). The 2 exceptions are sign flips of the gold answer "0"
    // ("-0" = "0"), which are correct judgements: negating zero does not change the answer.
    expect(exceptions).toEqual(['test/intermediate_algebra/2152.json: -0 vs 0', 'test/number_theory/342.json: -0 vs 0']);
    expect(1 - exceptions.length / results.length).toBeGreaterThanOrEqual(0.99);
  });
});
