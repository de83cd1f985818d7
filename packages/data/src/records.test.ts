import { describe, expect, it } from 'vitest';
import { jsonArrayRecords, lineRecords } from './records.js';

describe('record splitting', () => {
  it('lineRecords skips blank lines, strips \\r and keeps 1-based line numbers', () => {
    expect(lineRecords('a\r\n\n  \nb\nc')).toEqual([
      { line: 1, text: 'a' },
      { line: 4, text: 'b' },
      { line: 5, text: 'c' },
    ]);
    expect(lineRecords('')).toEqual([]);
  });

  it('jsonArrayRecords splits only at top-level commas, past strings, escapes and nesting', () => {
    const text = '[\n  {"a": "x, ]} \\" [", "b": [1, {"c": 2}]},\n  "s,t",\n\n  [3, 4]\n]\n';
    const recs = jsonArrayRecords(text, 'f.json');
    expect(recs.map((r) => r.line)).toEqual([2, 3, 5]);
    expect(recs.map((r) => JSON.parse(r.text) as unknown)).toEqual([{ a: 'x, ]} " [', b: [1, { c: 2 }] }, 's,t', [3, 4]]);
    expect(jsonArrayRecords(' [ ] ', 'f.json')).toEqual([]);
  });

  it('jsonArrayRecords leaves a bad element to the parser but rejects a broken array', () => {
    expect(jsonArrayRecords('[1,,2]', 'f.json').map((r) => r.text)).toEqual(['1', '', '2']);
    expect(() => jsonArrayRecords('[1, 2', 'f.json')).toThrow('f.json:1: JSON array is not closed (missing "]")');
    expect(() => jsonArrayRecords('[1]\nx', 'f.json')).toThrow('f.json:2: unexpected text after the closing "]"');
  });
});
