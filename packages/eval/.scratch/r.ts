import { readFileSync } from 'node:fs';
import { ComputeEngine } from '@cortex-js/compute-engine';
import { compareAnswers } from '../src/equivalence.js';
import { normalizeLatex } from '../src/latex.js';
const ce = new ComputeEngine();
const rows = readFileSync('../../data/math500/test.jsonl','utf8').split('\n').filter(Boolean).map((l)=>JSON.parse(l));
let n=0, ok=0, same=0; const t0=performance.now();
for (const r of rows) { const e = ce.parse(r.answer); if (!e.isValid) continue; const l = e.latex; n++; if (l===r.answer) { same++; } const c=compareAnswers(l, r.answer,'latex'); if (c.equal) ok++; else console.log('DIFF', JSON.stringify(r.answer), '->', JSON.stringify(l), c.method, '|', normalizeLatex(l)); }
console.log(n, ok, same, (performance.now()-t0).toFixed(0));
