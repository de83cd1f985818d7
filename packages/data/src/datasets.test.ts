import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUserError } from '@latent-sft/core';
import { DATASET_NAMES, datasetInfo, loadDataset, loadDatasetFile, type DatasetName, type Problem } from './datasets.js';

// Row counts from data/MANIFEST.md (parsed records, not `wc -l`).
const ROWS: Record<(typeof DATASET_NAMES)[number], number> = {
  'gsm8k-train': 7473,
  'gsm8k-test': 1319,
  'gsm8k-aug-test': 1319,
  'gsm8k-aug-valid': 500,
  svamp: 1000,
  multiarith: 600,
  'gsm-hard': 1319,
  math500: 500,
  aime24: 30,
};

const loaded = new Map<string, Problem[]>();
function rows(name: DatasetName): Problem[] {
  let p = loaded.get(name);
  if (!p) {
    const res = loadDataset(name);
    expect(res.skipped).toEqual([]);
    p = res.problems;
    loaded.set(name, p);
  }
  return p;
}
function byId(name: DatasetName, id: string): Problem {
  const p = rows(name).find((x) => x.id === id);
  if (!p) throw new Error(`${name} has no id ${id}`);
  return p;
}

describe('loadDataset on the real files', () => {
  it.each(DATASET_NAMES.map((n) => [n, ROWS[n]] as const))('%s has %i rows with 0-based indices', (name, count) => {
    const ps = rows(name);
    expect(ps.length).toBe(count);
    expect(ps.every((p, i) => p.index === i && p.dataset === name)).toBe(true);
    expect(new Set(ps.map((p) => p.id)).size).toBe(count);
  });

  it('GSM8K: gold after ####, commas kept, cot without the #### line, solution = full text', () => {
    const p = rows('gsm8k-test')[0] as Problem;
    expect(p.id).toBe('0');
    expect(p.answer).toBe('18');
    expect(p.problem.startsWith('Janet’s ducks lay 16 eggs per day.')).toBe(true);
    expect(p.cot).toBe('Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n' + 'She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.');
    expect(p.solution).toBe(`${p.cot}\n#### 18`);
    expect(rows('gsm8k-test')[146]?.answer).toBe('2,125');
    // MANIFEST: 14 test and 79 train gold strings carry thousands separators.
    expect(rows('gsm8k-test').filter((x) => x.answer.includes(',')).length).toBe(14);
    expect(rows('gsm8k-train').filter((x) => x.answer.includes(',')).length).toBe(79);
    expect(rows('gsm8k-train')[0]?.answer).toBe('72');
  });

  it('GSM8k-Aug: question before ||, equation cot, answer after ####; 18 empty test CoTs', () => {
    const p = rows('gsm8k-aug-test')[0] as Problem;
    expect(p.cot).toBe('<<16-3-4=9>> <<9*2=18>>');
    expect(p.answer).toBe('18');
    expect(p.solution).toBeNull();
    // MANIFEST: the test questions and answers equal gsm8k/test.jsonl row for row.
    const orig = rows('gsm8k-test');
    expect(rows('gsm8k-aug-test').every((q, i) => q.problem === orig[i]?.problem && q.answer === orig[i]?.answer)).toBe(true);
    expect(rows('gsm8k-aug-test').filter((q) => q.cot === '').length).toBe(18);
    expect(rows('gsm8k-aug-test')[24]?.cot).toBe('');
    expect(rows('gsm8k-aug-test')[24]?.answer).toBe('26');
  });

  it('SVAMP: id = ID, problem = Body + ". " + Question (one space after a Body ending in "."), answer String(float)', () => {
    const p = byId('svamp', 'chal-1');
    expect(p.index).toBe(0);
    expect(p.answer).toBe('51');
    expect(p.problem).toBe(
      'Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack. ' + 'How much do you have to pay to buy each pack?',
    );
    expect(byId('svamp', 'chal-3').problem).toBe(
      'Paco had 26 salty cookies and 17 sweet cookies. He ate 14 sweet ' + 'cookies and 9 salty cookies. How many salty cookies did Paco have left?',
    );
    // No joined prompt reads "..", except chal-410 whose Body itself ends in "..".
    expect(
      rows('svamp')
        .filter((x) => x.problem.includes('..'))
        .map((x) => x.id),
    ).toEqual(['chal-410']);
    expect(byId('svamp', 'chal-1000').answer).toBe('11');
  });

  it('MultiArith, GSM-Hard, MATH-500 and AIME gold answers', () => {
    expect(rows('multiarith')[0]?.answer).toBe('39');
    expect(rows('multiarith')[599]?.answer).toBe('2');
    const h = rows('gsm-hard')[0] as Problem;
    expect(h.answer).toBe('-9867630');
    expect(h.problem).toContain('with 4933828');
    expect(h.solution?.trimStart().startsWith('def solution():')).toBe(true);
    expect(rows('gsm-hard')[7]?.answer).toBe('3244047.0999999996');
    const m = rows('math500')[0] as Problem;
    expect(m.id).toBe('test/precalculus/807.json');
    expect(m.answer).toBe('\\left( 3, \\frac{\\pi}{2} \\right)');
    expect(m.solution).toContain('\\boxed');
    expect(byId('math500', 'test/geometry/615.json').answer).toBe('106^\\circ');
    expect(byId('aime24', '60').answer).toBe('204');
    expect(byId('aime24', '60').index).toBe(0);
    expect(byId('aime24', '67').answer).toBe('025');
    expect(rows('aime24').map((p) => p.id)).toEqual(Array.from({ length: 30 }, (_, i) => String(60 + i)));
  });

  it('datasetInfo names the file, the id and the answer kind', () => {
    expect(datasetInfo('svamp')).toEqual({ file: 'svamp/SVAMP.json', idField: 'ID, e.g. "chal-1"', numeric: true });
    expect(datasetInfo('math500').numeric).toBe(false);
    expect(datasetInfo('gsm8k-aug-valid').file).toBe('gsm8k_aug/valid.txt');
    expect(datasetInfo('multiplication').file).toBe('');
    expect(() => loadDataset('multiplication')).toThrow(/generateMultiplication/);
  });
});

function fixture(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'latent-sft-data-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isUserError(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('bad rows', () => {
  const good = JSON.stringify({ question: 'Q1?', answer: 'a <<1+1=2>>2\n#### 2' });
  const cases: Array<[string, DatasetName, string, string, RegExp]> = [
    ['malformed JSON', 'gsm8k-test', `${good}\n{"question": "Q2", \n`, 'x.jsonl', /x\.jsonl:2: malformed JSON/],
    ['missing field', 'gsm8k-test', `${good}\n\n{"question": "Q3"}\n`, 'x.jsonl', /x\.jsonl:3: field 'answer': missing$/],
    ['ill-typed field', 'multiarith', '{"input": "Q", "target": "39"}', 'm.jsonl', /m\.jsonl:1: field 'target': expected a finite number, got "39"/],
    [
      'non-numeric GSM8K gold',
      'gsm8k-test',
      '{"question": "Q", "answer": "x\\n#### eighteen"}',
      'g.jsonl',
      /g\.jsonl:1: field 'answer': gold answer "eighteen" is not a number/,
    ],
    ['GSM8K without ####', 'gsm8k-train', '{"question": "Q", "answer": "x\\n18"}', 'g.jsonl', /field 'answer': last line does not start with '####'/],
    [
      'two || separators',
      'gsm8k-aug-test',
      'Q1||<<1+1=2>> #### 2\nQ||2||<<1=1>> #### 1\n',
      'a.txt',
      /a\.txt:2: field '\|\|': expected exactly one '\|\|' separator, found 2/,
    ],
    ['no #### separator', 'gsm8k-aug-valid', 'Q||<<1+1=2>> 2\n', 'a.txt', /a\.txt:1: field ' #### ': expected exactly one ' #### ' separator, found 0/],
    ['non-numeric Aug gold', 'gsm8k-aug-test', 'Q||<<1+1=2>> #### two\n', 'a.txt', /field 'answer': gold answer "two" is not a number/],
    [
      'non-integer AIME answer',
      'aime24',
      '{"id": 1, "problem": "P", "solution": "S", "answer": "2.5"}\n',
      'a.jsonl',
      /a\.jsonl:1: field 'answer': AIME answer "2.5" is not an integer/,
    ],
    [
      'duplicate MATH id',
      'math500',
      '{"problem":"p","solution":"s","answer":"1","unique_id":"u"}\n{"problem":"p","solution":"s","answer":"2","unique_id":"u"}\n',
      'm.jsonl',
      /m\.jsonl:2: field 'id': duplicate id 'u' \(first on line 1\)/,
    ],
    [
      'SVAMP element not an object',
      'svamp',
      '[\n  {"ID": "a", "Body": "B", "Question": "Q?", "Answer": 1.0},\n  3\n]',
      'S.json',
      /S\.json:3: expected a JSON object, got number/,
    ],
  ];

  it.each(cases)('%s throws one located line', (_label, name, text, file, re) => {
    const path = fixture(file, text);
    const msg = errorOf(() => loadDatasetFile(name, path));
    expect(msg).toMatch(re);
    expect(msg).not.toContain('\n');
  });

  it('skipBadRows records bad rows and keeps the file index of the good ones', () => {
    const path = fixture('mixed.jsonl', [good, '{oops', '{"question": "Q", "answer": "x\\n#### 1,000"}', '[1]'].join('\n'));
    const { problems, skipped } = loadDatasetFile('gsm8k-test', path, { skipBadRows: true });
    expect(problems.map((p) => [p.index, p.id, p.answer])).toEqual([
      [0, '0', '2'],
      [2, '2', '1,000'],
    ]);
    expect(skipped.map((s) => [s.file, s.line])).toEqual([
      [path, 2],
      [path, 4],
    ]);
    expect(skipped[0]?.reason).toMatch(/^.*mixed\.jsonl:2: malformed JSON/);
    expect(skipped[1]?.reason).toMatch(/mixed\.jsonl:4: expected a JSON object, got an array/);
  });

  it('SVAMP elements carry the line they start on, and a bad element can be skipped', () => {
    const text =
      '[\n {"ID": "a", "Body": "Tom has 3 apples.", "Question": "How many?", "Answer": 3.0},\n' +
      ' {"ID": "b", "Body": "x, y [z]", "Question": "Q?"},\n {"ID": "c", "Body": "He had 5", "Question": "How many?", "Answer": 5.5}\n]\n';
    const path = fixture('SVAMP.json', text);
    const { problems, skipped } = loadDatasetFile('svamp', path, { skipBadRows: true });
    expect(problems.map((p) => [p.id, p.index, p.problem, p.answer])).toEqual([
      ['a', 0, 'Tom has 3 apples. How many?', '3'],
      ['c', 2, 'He had 5. How many?', '5.5'],
    ]);
    expect(skipped).toEqual([{ file: path, line: 3, reason: `${path}:3: field 'Answer': missing` }]);
    expect(errorOf(() => loadDatasetFile('svamp', fixture('S.json', '[{"ID": "a"},')))).toMatch(/not closed/);
    expect(errorOf(() => loadDatasetFile('svamp', fixture('S.json', '{"ID": "a"}')))).toMatch(/S\.json:1: expected a JSON array/);
  });

  it('a missing file is a one-line error even with skipBadRows', () => {
    expect(errorOf(() => loadDataset('gsm8k-test', { dataDir: join(tmpdir(), 'no-such-dir-xyz'), skipBadRows: true }))).toMatch(
      /gsm8k\/test\.jsonl: file not found/,
    );
  });
});
